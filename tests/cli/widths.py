"""Run CLI tests at a narrow and a wide terminal: output must not depend on the width.

Use it with ``pytestmark = pytest.mark.usefixtures("terminal_width")`` (after
importing the fixture) or as a test argument.
"""

from __future__ import annotations

import pytest

#: a narrow terminal (result lines longer than it must stay whole) and a wide one
WIDTHS = (40, 200)


@pytest.fixture(params=WIDTHS, ids=[f"cols{w}" for w in WIDTHS])
def terminal_width(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """The terminal width (``COLUMNS``) the commands of this test run at, both widths in turn."""
    from auditlens.cli import output

    width: int = request.param
    monkeypatch.setenv("COLUMNS", str(width))  # CliRunner keeps os.environ; rich reads it
    # rich fixes a console's width for good when COLUMNS is set as it is created, which
    # happens here if this test is the first to import the CLI: size both consoles alike
    for console in (output.console, output.err_console):
        monkeypatch.setattr(console, "_width", width)
    return width
