"""Running the shipped notebooks with papermill, as scheduled jobs and the CLI do.

The kernel is named explicitly (``python3``: the interpreter papermill runs in, with
its ipykernel) and every cell has an execution timeout. The executed notebook is kept
beside the outputs, so an auditor (or you, when a cell fails) can read exactly what
ran. Store URLs are handed to the kernel through ``$AUDITLENS_URL``, never as a
parameter, so a password never lands in the executed notebook.

Example:
    >>> notebook_parameters("compliance_report")["framework"]
    'soc2'
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from auditlens.errors import ConfigError, NotebookError
from auditlens.resources import notebook_path

__all__ = ["NotebookError", "notebook_parameters", "run_notebook"]

KERNEL = "python3"
TIMEOUT = 1800


def notebook_parameters(name: str | Path) -> dict[str, Any]:
    """The defaults of a notebook's ``parameters`` cell."""
    import nbformat

    path = Path(name) if str(name).endswith(".ipynb") else notebook_path(str(name))
    nb = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            scope: dict[str, Any] = {}
            exec(cell.source, {}, scope)  # noqa: S102 - our own shipped notebook's literals
            return {k: v for k, v in scope.items() if not k.startswith("_")}
    raise ConfigError(f"{path} has no cell tagged 'parameters'")


def run_notebook(
    name: str | Path,
    output: str | Path,
    parameters: dict[str, Any],
    *,
    store_url: str | None = None,
    timeout: int = TIMEOUT,
    kernel_name: str = KERNEL,
    cwd: str | Path | None = None,
) -> Path:
    """Execute a shipped notebook (by name) or a notebook file with papermill.

    Raises:
        NotebookError: a cell failed — with its number, the error and the executed notebook.
    """
    try:
        import papermill as pm
        from nbclient.exceptions import DeadKernelError
        from papermill.exceptions import PapermillExecutionError
    except ImportError:
        raise ConfigError(
            "running notebooks needs papermill: pip install 'auditlens[notebooks]'"
        ) from None
    source = Path(name) if str(name).endswith(".ipynb") else notebook_path(str(name))
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    known = notebook_parameters(source)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ConfigError(
            f"{source.name} has no parameter(s) {', '.join(unknown)}; it takes {', '.join(known)}"
        )
    saved = os.environ.get("AUDITLENS_URL")
    if store_url is not None:
        os.environ["AUDITLENS_URL"] = store_url
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jupyter's own deprecation notices
            pm.execute_notebook(
                str(source),
                str(out),
                parameters=parameters,
                kernel_name=kernel_name,
                execution_timeout=timeout,
                cwd=str(cwd or out.parent),
                progress_bar=False,
                log_output=False,
                # the kernel is ours, on loopback, for one run: keep its startup notices quiet
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
    except PapermillExecutionError as exc:
        raise NotebookError(
            f"{source.name}: cell {exc.exec_count} (index {exc.cell_index}) failed: "
            f"{exc.ename}: {exc.evalue}. The executed notebook is {out}"
        ) from None
    except DeadKernelError:
        raise NotebookError(
            f"{source.name}: the kernel died while running (out of memory?). "
            f"The executed notebook so far is {out}"
        ) from None
    finally:
        if store_url is not None:
            if saved is None:
                os.environ.pop("AUDITLENS_URL", None)
            else:
                os.environ["AUDITLENS_URL"] = saved
    return out
