"""Running the shipped notebooks with papermill, as scheduled jobs and the CLI do.

The kernel is named explicitly (``python3``: the interpreter papermill runs in, with
its ipykernel) and every cell has an execution timeout. The executed notebook is kept
beside the outputs, so an auditor (or you, when a cell fails) can read exactly what
ran. Store URLs are handed to the kernel through ``$AUDITLENS_URL`` in the kernel's own
environment (the caller's ``os.environ`` is not changed), never as a parameter, so a
password never lands in the executed notebook. Parameters are read with papermill's
``inspect_notebook``: the parameters cell is parsed, not executed.

Example:
    >>> notebook_parameters("compliance_report")["framework"]
    'soc2'
"""

from __future__ import annotations

import ast
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
    """The defaults of a notebook's ``parameters`` cell, read by papermill's own
    ``inspect_notebook`` (the cell is parsed, never executed).

    Raises:
        ConfigError: the notebook has no parameters cell, or a default is not a literal.
    """
    pm = _papermill()
    path = Path(name) if str(name).endswith(".ipynb") else notebook_path(str(name))
    found: dict[str, dict[str, Any]] = pm.inspect_notebook(str(path))
    if not found:
        raise ConfigError(f"{path} has no cell tagged 'parameters'")
    out: dict[str, Any] = {}
    for key, spec in found.items():
        try:
            out[key] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            raise ConfigError(
                f"{path}: parameter {key} = {spec['default']} is not a literal value"
            ) from None
    return out


def _papermill() -> Any:
    try:
        import papermill as pm  # lazy: the notebook stack only for `auditlens report`
    except ImportError:
        raise ConfigError(
            "running notebooks needs papermill: pip install 'auditlens[notebooks]'"
        ) from None
    return pm


def _kernel_manager(env: dict[str, str]) -> type:
    """A kernel manager class whose kernels get ``env`` on top of this process's
    environment — which itself stays untouched (other threads may be reading it)."""
    from jupyter_client.manager import AsyncKernelManager  # lazy: the notebook stack only

    class _EnvKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = {**kw.get("env", os.environ), **env}
            return await super()._async_pre_start_kernel(**kw)

    return _EnvKernelManager


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
    pm = _papermill()
    from nbclient.exceptions import DeadKernelError  # lazy: the notebook stack only for reports
    from papermill.exceptions import PapermillExecutionError  # lazy: as papermill

    source = Path(name) if str(name).endswith(".ipynb") else notebook_path(str(name))
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    known = notebook_parameters(source)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ConfigError(
            f"{source.name} has no parameter(s) {', '.join(unknown)}; it takes {', '.join(known)}"
        )
    engine: dict[str, Any] = {}
    if store_url is not None:  # to the kernel only: this process's environment is left alone
        engine["kernel_manager_class"] = _kernel_manager({"AUDITLENS_URL": store_url})
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
                # the kernel is ours, on loopback, for one run: keep its startup notices quiet,
                # and the "KeyboardInterrupt caught in kernel" it logs as ERROR when the run's
                # end interrupts it on shutdown (a failed cell reaches us through papermill, a
                # dead kernel as DeadKernelError: nothing the kernel's log alone would tell)
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                **engine,
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
    return out
