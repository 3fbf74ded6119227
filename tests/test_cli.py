"""The auditlens command end to end (in-process through typer's runner)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from auditlens.cli import app
from auditlens.cli.output import entries_table, render_entry
from tests.cli.widths import terminal_width  # noqa: F401 - the fixture
from tests.helpers import make_entry

pytestmark = pytest.mark.usefixtures("terminal_width")  # every test at 40 and 200 columns
runner = CliRunner()


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args), input=input)
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def db(store_url: str) -> str:
    return store_url


def test_init_ingest_search_show_stats(db: str, tmp_path: Path) -> None:
    code, out, _ = run("init", "--db", db)
    assert code == 0 and "store ready" in out
    entries = [make_entry(), make_entry(action="auth.failed", result="failure", resource=None)]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in entries) + b"\n")
    code, out, _ = run("ingest", str(path), "--db", db)
    assert code == 0 and "appended 2" in out

    code, out, _ = run("search", "failed", "--db", db, "--format", "jsonl", "--no-record")
    assert code == 0
    [line] = out.splitlines()
    assert orjson.loads(line)["audit_id"] == entries[1]["audit_id"]

    code, out, _ = run("search", "action:webhook.*", "--db", db, "--format", "json", "--no-record")
    assert [e["action"] for e in orjson.loads(out)] == ["webhook.created"]

    code, out, _ = run("search", "", "--db", db, "--format", "csv", "--no-record")
    rows = out.splitlines()
    assert rows[0].startswith("timestamp,audit_id,")
    assert len(rows) == 3

    code, out, _ = run("search", "jane@company.com", "--db", db, "--no-record")
    assert code == 0 and "webhook.created" in out and "2 entries" in out

    code, out, _ = run("show", entries[0]["audit_id"], "--db", db, "--format", "json")
    assert orjson.loads(out)["seq"] == 1
    code, out, _ = run("show", entries[0]["audit_id"], "--db", db)
    assert "Production Webhook" in out and "entry_hash" in out

    code, out, _ = run("stats", "--db", db, "--format", "json")
    assert orjson.loads(out)["total"] == 2
    code, out, _ = run("stats", "--db", db)
    assert "authentication" in out and "webhooks" in out


def test_exit_codes_scripts_can_rely_on(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(orjson.dumps(make_entry()) + b"\nnot json\n")
    code, _, err = run("ingest", str(bad), "--db", db, "--rejects", str(tmp_path / "r.jsonl"))
    assert code == 1
    assert "bad.jsonl:2: not valid JSON" in err
    assert (tmp_path / "r.jsonl").read_text() == "not json\n"
    code, _, err = run("ingest", str(bad), "--db", db, "--strict")
    assert code == 1
    code, _, err = run("search", "acton:x", "--db", db)
    assert code == 2 and "unknown qualifier" in err
    code, _, err = run("show", "00000000-0000-4000-8000-000000000000", "--db", db)
    assert code == 1 and "no entry" in err
    code, _, err = run("search", "x", "--db", "mysql://nope")
    assert code == 3 and "unsupported store URL" in err
    code, _, err = run("search", "x", "--db", db, "--format", "xml")
    assert code == 2


def test_ingest_from_stdin(db: str) -> None:
    data = orjson.dumps(make_entry()) + b"\n"
    code, out, _ = run("ingest", "-", "--db", db, input=data)
    assert code == 0 and "appended 1" in out


def test_markup_in_user_text_is_shown_literally() -> None:
    name = "[bold red]pwned[/] <script>"
    entry = make_entry(resource={"type": "webhook", "id": "w", "name": name})
    console = Console(record=True, width=200)
    console.print(entries_table([entry], width=200))
    console.print(render_entry(entry))
    text = console.export_text()
    assert text.count("[bold red]pwned[/] <script>") == 2


def test_tail_with_count_and_since(db: str, tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"".join(orjson.dumps(make_entry()) + b"\n" for _ in range(3)))
    run("ingest", str(path), "--db", db)
    code, out, _ = run(
        "tail",
        "--db",
        db,
        "--since",
        "beginning",
        "--count",
        "3",
        "--format",
        "jsonl",
        "--interval",
        "0.05",
    )
    assert code == 0
    assert [orjson.loads(x)["seq"] for x in out.splitlines()] == [1, 2, 3]


def test_demo_command_writes_store_and_ground_truth(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    truth = tmp_path / "incidents.json"
    code, out, _ = run(
        "demo",
        "--db",
        db,
        "--orgs",
        "1",
        "--days",
        "10",
        "--end",
        "2025-01-31",
        "--incidents",
        str(truth),
    )
    assert code == 0 and "12 injected incidents" in out
    data = orjson.loads(truth.read_bytes())
    assert len(data["incidents"]) == 12
    code, out, _ = run("stats", "--db", db, "--format", "json")
    assert orjson.loads(out)["total"] > 100


def test_searches_are_recorded_as_reviews(db: str, monkeypatch) -> None:
    import auditlens as al

    with al.open_store(db) as s:
        s.append([make_entry(), make_entry(result="failure")])
    monkeypatch.setenv("AUDITLENS_ACTOR", "auditor@company.com")
    code, out, _ = run("search", "result:failure", "--db", db, "--format", "json")
    assert code == 0 and len(orjson.loads(out)) == 1
    with al.open_store(db) as s:
        [seen] = s.entries("action:audit_log.viewed")
        assert seen["actor"]["email"] == "auditor@company.com"
        assert seen["details"]["query"] == "result:failure" and seen["details"]["rows"] == 1
        assert s.count("auditor@company.com") == 1  # who looked at what: an ordinary search
