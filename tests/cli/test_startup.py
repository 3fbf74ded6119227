"""`auditlens --help` and `--version` start fast: they never import the data stack.

Nor rich: help is click's plain help (``rich_markup_mode=None``), since typer's rich help
imports rich, markdown-it, pygments and attrs, which cost more than the rest of the CLI.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import version

from typer.testing import CliRunner

from auditlens.cli import app

DATA_STACK = ("polars", "sqlalchemy", "pyarrow", "pandas")
#: what `--help` and `--version` must not load either: the terminal rendering stack
RENDERING = ("rich", "pygments", "markdown_it", "attr")
HEAVY = DATA_STACK + RENDERING

#: runs the command in a fresh interpreter, then prints which heavy modules got loaded
_PROBE = """
import sys
from auditlens.cli import main
sys.argv = ["auditlens", *{args!r}]
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
else:
    code = 0
print("LOADED", code, sorted(m for m in {stack!r} if m in sys.modules))
"""


def _loaded_after(*args: str) -> tuple[int, list[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=list(args), stack=HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    *shown, last = proc.stdout.splitlines()
    tag, code, loaded = last.split(" ", 2)
    assert tag == "LOADED"
    return int(code), ast.literal_eval(loaded), "\n".join(shown)


def test_help_does_not_import_the_data_or_rendering_stack() -> None:
    code, loaded, shown = _loaded_after("--help")
    assert code == 0 and "export-bundle" in shown
    assert loaded == []


def test_version_does_not_import_the_data_or_rendering_stack() -> None:
    code, loaded, shown = _loaded_after("--version")
    assert code == 0 and shown == f"auditlens {version('auditlens')}"
    assert loaded == []


def test_command_help_does_not_import_the_data_or_rendering_stack() -> None:
    code, loaded, shown = _loaded_after("export", "--help")
    assert code == 0 and "--format" in shown
    assert loaded == []


def test_importing_the_package_is_light() -> None:
    probe = f"import sys, auditlens; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert out.strip() == "[]"


def test_importing_the_cli_is_light() -> None:
    """Every command is registered, and none of them imported rich or the data stack."""
    probe = (
        "import sys; from auditlens.cli import app; import typer; "
        "print(len(typer.main.get_command(app).commands), "
        f"sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    count, loaded = out.strip().split(" ", 1)
    assert int(count) > 20
    assert loaded == "[]"


def test_output_still_uses_rich() -> None:
    """The console is made on first use, and it is a real rich Console behind the name."""
    from rich.console import Console

    from auditlens.cli import output

    assert isinstance(output._real(output.console), Console)
    assert output._real(output.err_console).stderr
    assert output.console.width > 0


def test_version_option() -> None:
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.stdout == f"auditlens {version('auditlens')}\n"
