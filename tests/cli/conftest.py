"""Every test here can ask for ``terminal_width`` (both widths in turn)."""

from tests.cli.widths import terminal_width  # noqa: F401 - the fixture, for this folder
