"""Bulk ingest: good lines land, bad lines are reported by number, strict mode, rejects file."""

from __future__ import annotations

import gc
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

import auditlens as al
from auditlens.errors import IngestAbortedError
from auditlens.ingest import BULK_GC_THRESHOLD, ingest
from tests.helpers import make_entry


def _jsonl(lines: Sequence[object]) -> bytes:
    out = []
    for line in lines:
        out.append(line if isinstance(line, bytes) else orjson.dumps(line))
    return b"\n".join(out) + b"\n"


def _file(tmp_path: Path, lines: Sequence[object]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(_jsonl(lines))
    return path


BAD = [
    make_entry(),
    b'{"broken json',
    make_entry(),
    b"",
    make_entry(result="maybe"),
    make_entry(timestamp="2025-01-20 10:30"),
    make_entry(),
]


def test_good_lines_land_and_bad_lines_are_reported_by_number(
    store: al.AuditStore, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.jsonl"
    report = ingest(store, _file(tmp_path, BAD), batch_size=2, rejects=rejects)
    assert report.appended == 3
    assert not report.ok
    assert [r.line for r in report.rejected] == [2, 5, 6]
    assert "not valid JSON" in report.rejected[0].reason
    assert "result" in report.rejected[1].reason
    assert "no time zone" in report.rejected[2].reason
    assert store.count() == 3
    written = rejects.read_bytes().splitlines()
    assert written[0] == b'{"broken json'
    assert orjson.loads(written[1])["result"] == "maybe"


def test_strict_appends_nothing_when_any_line_is_bad(store: al.AuditStore, tmp_path: Path) -> None:
    report = ingest(store, _file(tmp_path, BAD), strict=True)
    assert [r.line for r in report.rejected] == [2, 5, 6]
    assert report.appended == 0
    assert store.count() == 0
    good = ingest(store, _file(tmp_path, [make_entry(), make_entry()]), strict=True)
    assert good.ok and good.appended == 2


def test_json_array_input_and_reingest_is_idempotent(store: al.AuditStore, tmp_path: Path) -> None:
    entries = [make_entry(), make_entry(), make_entry(result=7)]
    path = tmp_path / "events.json"
    path.write_bytes(orjson.dumps(entries, option=orjson.OPT_INDENT_2))
    report = ingest(store, path)
    assert report.appended == 2
    assert len(report.rejected) == 1
    assert report.rejected[0].line > 1  # the line where the third element starts
    again = ingest(store, path)
    assert again.appended == 0 and again.duplicates == 2
    assert store.count() == 2


def test_conflicting_duplicate_line_is_rejected_and_the_rest_lands(store: al.AuditStore) -> None:
    first = make_entry()
    data = _jsonl([first, make_entry(), {**first, "result": "failure"}, make_entry()])
    report = ingest(store, io.BytesIO(data))
    assert report.appended == 3
    assert [r.line for r in report.rejected] == [3]
    assert "already exists with different content" in report.rejected[0].reason


def test_unreadable_inputs(store: al.AuditStore, tmp_path: Path) -> None:
    with pytest.raises(al.IngestError, match="no such file"):
        ingest(store, tmp_path / "missing.jsonl")
    with pytest.raises(al.IngestError, match="not a valid JSON array"):
        ingest(store, io.BytesIO(b"[{"))
    assert ingest(store, io.BytesIO(b"\n\n")).read == 0


def test_nul_in_any_text_field_is_rejected_per_line_on_every_backend(
    store: al.AuditStore, tmp_path: Path
) -> None:
    lines = [
        make_entry(),
        make_entry(user_agent="curl\x00"),
        make_entry(),
        make_entry(details={"note": {"k": "a\x00"}}),
        make_entry(),
    ]
    rejects = tmp_path / "rejects.jsonl"
    report = ingest(store, _file(tmp_path, lines), batch_size=2, rejects=rejects)
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (2, "user_agent"),
        (4, "details.note.k"),
    ]
    assert all("NUL" in r.reason for r in report.rejected)
    assert report.appended == 3 and store.count() == 3
    assert [orjson.loads(x) for x in rejects.read_bytes().splitlines()] == [lines[1], lines[3]]


def test_out_of_range_timestamp_line_is_rejected_and_the_store_stays_readable(
    store: al.AuditStore, tmp_path: Path
) -> None:
    lines = [make_entry(), make_entry(timestamp="9999-12-31T23:59:59-05:00"), make_entry()]
    report = ingest(store, _file(tmp_path, lines))
    assert [r.line for r in report.rejected] == [2]
    assert "timestamp: " in report.rejected[0].reason
    assert "outside the supported range" in report.rejected[0].reason
    assert len(store.entries()) == 2
    assert store.stats().total == 2


def _unwrapped(text: str) -> str:
    """Text without whitespace: the console may wrap long lines anywhere."""
    return "".join(text.split())


def _refuse_resource_id(store: al.AuditStore, value: str) -> None:
    """Make the database itself refuse rows with this resource id (a stand-in for any
    failure auditlens cannot foresee: a constraint added by an administrator, an outage)."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_it BEFORE INSERT ON audit_entries "
                f"WHEN NEW.resource_id = '{value}' BEGIN SELECT RAISE(ABORT, 'refused {value}'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_it() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.resource_id = '{value}' THEN RAISE EXCEPTION 'refused {value}'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_it BEFORE INSERT ON audit_entries "
                "FOR EACH ROW EXECUTE FUNCTION refuse_it()"
            )


def test_a_batch_the_database_refuses_stops_ingest_with_lines_counts_and_rejects(
    store: al.AuditStore, tmp_path: Path
) -> None:
    _refuse_resource_id(store, "boom")
    lines: list[object] = [
        make_entry(),  # 1  ┐
        make_entry(result="maybe"),  # 2  rejected
        make_entry(),  # 3  │ batch 1: committed
        make_entry(),  # 4  ┘
        make_entry(),  # 5  ┐
        make_entry(resource={"type": "webhook", "id": "boom"}),  # 6  │ batch 2: refused
        b"{not json",  # 7  rejected
        make_entry(),  # 8  ┘
        make_entry(),  # 9
        make_entry(),  # 10
    ]
    rejects = tmp_path / "rejects.jsonl"
    with pytest.raises(IngestAbortedError) as err:
        ingest(store, _file(tmp_path, lines), batch_size=3, rejects=rejects)
    exc = err.value
    assert isinstance(exc, al.StoreError)
    assert (exc.first_line, exc.last_line, exc.appended, exc.rejected) == (5, 8, 3, 2)
    message = str(exc)
    assert f"{tmp_path / 'events.jsonl'}:5-8:" in message
    assert "refused boom" in message
    assert "3 entries of earlier lines were appended" in message
    assert "nothing from line 5 on was appended" in message
    assert f"written to {rejects}" in message
    assert store.count() == 3  # batch 1 stays, batch 2 was rolled back whole
    assert rejects.read_bytes().splitlines() == [orjson.dumps(lines[1]), b"{not json"]


def test_strict_refuses_a_resent_audit_id_with_different_content(
    store: al.AuditStore, tmp_path: Path
) -> None:
    stored = make_entry()
    store.append(stored)
    changed = {**stored, "result": "failure"}
    lines = [make_entry() for _ in range(50)]
    lines.insert(20, changed)
    rejects = tmp_path / "rejects.jsonl"
    report = ingest(store, _file(tmp_path, lines), strict=True, batch_size=10, rejects=rejects)
    assert report.appended == 0
    assert [r.line for r in report.rejected] == [21]
    assert report.rejected[0].reason.startswith(
        f"audit_id: {stored['audit_id']} already exists with different content "
        "(fields differ: result)"
    )
    assert store.count() == 1  # nothing of the file was appended
    assert orjson.loads(rejects.read_bytes()) == changed
    # the same id with the same content is fine: counted as already stored
    lines[20] = stored
    report = ingest(store, _file(tmp_path, lines), strict=True, batch_size=10)
    assert report.ok and report.appended == 50 and report.duplicates == 1


def test_strict_refuses_one_audit_id_twice_in_the_file_with_different_content(
    store: al.AuditStore, tmp_path: Path
) -> None:
    first = make_entry()
    lines = [first, make_entry(), make_entry(), {**first, "action": "webhook.deleted"}, first]
    report = ingest(store, _file(tmp_path, lines), strict=True, batch_size=2)
    assert [r.line for r in report.rejected] == [4]
    assert f"audit_id: {first['audit_id']} is also on line 1" in report.rejected[0].reason
    assert store.count() == 0


def test_resent_changed_entries_are_rejected_per_line_with_one_retry_per_batch(
    store: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = [make_entry() for _ in range(40)]
    store.append(stored)
    lines = [{**e, "result": "failure"} for e in stored] + [make_entry() for _ in range(10)]
    lines[5] = stored[5]  # unchanged re-send: already stored
    calls: list[int] = []
    append_rows = store.append_rows

    def counting(rows: list[dict[str, Any]]) -> list[al.AppendedEntry]:
        calls.append(len(rows))
        return append_rows(rows)

    monkeypatch.setattr(store, "append_rows", counting)
    report = ingest(store, _file(tmp_path, lines))
    assert [r.line for r in report.rejected] == [n for n in range(1, 41) if n != 6]
    assert report.appended == 10 and report.duplicates == 1
    assert calls == [50, 11]  # all 39 conflicts found at once, not one round trip each
    assert store.count() == 50


def test_cli_strict_with_a_changed_resend_appends_nothing_and_says_so(
    store_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from auditlens.cli import app

    stored = make_entry()
    with al.open_store(store_url) as s:
        s.append(stored)
    lines = [make_entry() for _ in range(50)] + [{**stored, "result": "failure"}]
    path = _file(tmp_path, lines)
    res = CliRunner().invoke(app, ["ingest", str(path), "--db", store_url, "--strict"])
    assert res.exit_code == 1
    assert _unwrapped(f"{path}:51: audit_id: {stored['audit_id']} already exists") in _unwrapped(
        res.stderr
    )
    assert "appendednothing" in _unwrapped(res.stdout)
    with al.open_store(store_url) as s:
        assert s.count() == 1


def test_cli_reports_a_refused_batch_with_lines_counts_and_earlier_rejects(
    store_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from auditlens.cli import app

    with al.open_store(store_url) as s:
        _refuse_resource_id(s, "boom")
    lines = [make_entry() for _ in range(30)]
    lines[2] = make_entry(result="maybe")
    lines[24] = make_entry(resource={"type": "webhook", "id": "boom"})
    path = _file(tmp_path, lines)
    res = CliRunner().invoke(app, ["ingest", str(path), "--db", store_url, "--batch-size", "10"])
    assert res.exit_code == 3
    err = _unwrapped(res.stderr)
    assert _unwrapped(f"{path}:3: result: must be one of") in err
    assert _unwrapped(f"{path}:22-30: the database refused the batch of lines 22-30") in err
    assert _unwrapped("20 entries of earlier lines were appended and stay") in err
    with al.open_store(store_url) as s:
        assert s.count() == 20


def test_ingest_leaves_the_garbage_collector_as_it_found_it(
    store: al.AuditStore, tmp_path: Path
) -> None:
    # a bulk load runs the collector less often, and gives the caller's settings back,
    # also when the load stops with an error
    before = gc.get_threshold()
    seen: list[int] = []
    try:
        gc.set_threshold(700, 10, 10)
        ingest(store, _file(tmp_path, BAD), progress=lambda _: seen.append(gc.get_threshold()[0]))
        assert gc.get_threshold() == (700, 10, 10)
        assert seen and max(seen) == BULK_GC_THRESHOLD
        with pytest.raises(RuntimeError):
            ingest(store, _file(tmp_path, BAD), progress=lambda _: _raise())
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(200_000, 10, 10)  # a caller's own, less eager setting is kept
        ingest(store, _file(tmp_path, BAD), progress=lambda _: seen.append(gc.get_threshold()[0]))
        assert seen[-1] == 200_000 and gc.get_threshold() == (200_000, 10, 10)
    finally:
        gc.set_threshold(*before)


def _raise() -> None:
    raise RuntimeError("stop")
