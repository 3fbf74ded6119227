"""Bulk ingest: good lines land, bad lines are reported by number, strict mode, rejects file."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

import auditlens as al
from auditlens.ingest import ingest
from tests.helpers import make_entry


def _jsonl(lines: list[object]) -> bytes:
    out = []
    for line in lines:
        out.append(line if isinstance(line, bytes) else orjson.dumps(line))
    return b"\n".join(out) + b"\n"


def _file(tmp_path: Path, lines: list[object]) -> Path:
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
