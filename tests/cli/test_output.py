"""What the commands print: result lines whole at any width, user text never markup."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from tests.helpers import ORG, make_entry

pytestmark = pytest.mark.usefixtures("terminal_width")


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def _long_dir(tmp_path: Path) -> Path:
    """A folder whose path is longer than the widest terminal the tests use."""
    folder = tmp_path / ("a" * 70) / ("b" * 70) / ("c" * 70)
    folder.mkdir(parents=True)
    assert len(str(folder)) > 210
    return folder


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, list[dict[str, object]]]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    entries = [make_entry(), make_entry(action="auth.failed", result="failure")]
    with al.open_store(url) as store:
        store.append(entries)
    return url, entries


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_export_prints_path_and_checksum_whole(
    db: tuple[str, list[dict[str, object]]], tmp_path: Path
) -> None:
    url, _ = db
    out = _long_dir(tmp_path) / "export.csv"
    code, stdout, stderr = run("export", "", "--out", str(out), "--db", url, "--no-record")
    assert code == 0, stderr
    [wrote] = [line for line in _lines(stderr) if line.startswith("wrote ")]
    assert re.fullmatch(
        rf"wrote 2 entries to {re.escape(str(out))} \([\d,]+ bytes, sha256 [0-9a-f]{{64}}\)", wrote
    )
    [done] = _lines(stdout)
    assert done.startswith("2 entries exported; manifest ")
    assert Path(done.removeprefix("2 entries exported; manifest ")).is_file()


def test_export_bundle_prints_path_and_checksum_whole(
    db: tuple[str, list[dict[str, object]]], tmp_path: Path
) -> None:
    url, _ = db
    keys = _long_dir(tmp_path) / "keys"
    code, stdout, _ = run("keys", "generate", "--out", str(keys))
    assert code == 0
    assert f"private key: {keys / 'signing.key'} (keep it secret;" in stdout
    code, stdout, _ = run("checkpoint", "--db", url, "--key", str(keys / "signing.key"))
    assert code == 0 and re.fullmatch(rf"{ORG}: tree size 2, root [0-9a-f]{{16}}…", stdout.strip())
    out = keys.parent / "bundle.zip"
    code, stdout, stderr = run("export-bundle", "", "--out", str(out), "--db", url)
    assert code == 0, stderr
    assert re.fullmatch(
        rf"wrote {re.escape(str(out))}: 2 entries from 1 organization\(s\), sha256 [0-9a-f]{{64}}",
        _lines(stdout)[-1],
    )


def test_verify_prints_one_line_per_organization(db: tuple[str, list[dict[str, object]]]) -> None:
    url, _ = db
    code, stdout, stderr = run("verify", "--db", url)
    assert code == 0, stderr
    assert f"  {ORG}: seq 1..2, no checkpoint: valid" in _lines(stdout)


def test_show_prints_ids_and_hashes_whole(db: tuple[str, list[dict[str, object]]]) -> None:
    url, entries = db
    code, stdout, stderr = run("show", str(entries[0]["audit_id"]), "--db", url)
    assert code == 0, stderr
    fields = dict(line.split(maxsplit=1) for line in _lines(stdout) if line[:1].isalpha())
    assert fields["audit_id"] == entries[0]["audit_id"]
    assert fields["organization_id"] == ORG
    assert re.fullmatch("[0-9a-f]{64}", fields["entry_hash"])
    assert fields["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64)"


def test_user_text_is_printed_literally_never_as_markup(
    tmp_path: Path, terminal_width: int
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    name = "[bold]x[/bold] [link]"
    entry = make_entry(resource={"type": "webhook", "id": "w", "name": name})
    with al.open_store(url) as store:
        store.append([entry])
    code, stdout, _ = run("show", entry["audit_id"], "--db", url)
    assert code == 0 and name in stdout
    if terminal_width >= 110:  # narrower terminals shorten the resource column
        code, stdout, _ = run("search", "", "--db", url, "--no-record")
        assert code == 0 and "[bold]x[/bold]" in stdout
    # user text echoed back in messages is literal too (and never breaks rich's parser)
    code, _, stderr = run("show", "[link]nope[/link]", "--db", url)
    assert code == 1 and "no entry with audit_id [link]nope[/link]" in stderr
    code, _, stderr = run("search", "", "--db", url, "--format", "[bold]x[/bold]")
    assert code == 2 and "got '[bold]x[/bold]'" in stderr


def test_search_csv_neutralises_formulas_and_quotes_like_exports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    entry = make_entry(resource={"type": "webhook", "id": "w", "name": '=cmd|" /C calc"!A0, x'})
    with al.open_store(url) as store:
        store.append([entry])
    code, stdout, stderr = run("search", "", "--db", url, "--format", "csv", "--no-record")
    assert code == 0, stderr
    code, _, stderr = run(
        "export",
        "",
        "--out",
        str(tmp_path / "e.csv"),
        "--db",
        url,
        "--no-record",
        "--fields",
        "resource.name",
    )
    assert code == 0, stderr
    import csv
    import io

    [header, row] = list(csv.reader(io.StringIO(stdout, newline="")))
    assert row[header.index("resource.name")] == '\'=cmd|" /C calc"!A0, x'
    exported = (tmp_path / "e.csv").read_text().splitlines()[1]
    assert exported in stdout  # the same cell, quoted the same way: one CSV writer
