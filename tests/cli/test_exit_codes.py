"""A store that cannot be opened is exit code 3 with one line naming it, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app


def test_unreachable_postgresql_is_exit_3_with_the_redacted_url() -> None:
    url = "postgresql+psycopg://auditor:s3cret@127.0.0.1:1/audit"
    res = CliRunner().invoke(app, ["search", "x", "--db", url])
    assert res.exit_code == 3
    [line] = res.stderr.splitlines()
    assert line.startswith(
        "error: cannot open the store postgresql+psycopg://auditor:***@127.0.0.1:1/audit: "
    )
    assert "s3cret" not in res.stderr
    assert isinstance(res.exception, SystemExit)  # a clean exit, not a traceback


def test_a_file_that_is_not_a_database_is_exit_3_naming_it(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, just some notes\n" * 100)
    res = CliRunner().invoke(app, ["stats", "--db", str(notes)])
    assert res.exit_code == 3
    assert isinstance(res.exception, SystemExit)
    [line] = res.stderr.splitlines()
    assert line == f"error: cannot open the store sqlite:///{notes}: file is not a database"
    assert notes.read_text().startswith("not a database")  # left as it was


def test_the_library_raises_store_error_too(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n" * 100)
    with pytest.raises(al.StoreError, match="file is not a database"):
        al.open_store(str(notes))
