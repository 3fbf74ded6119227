"""Exports: every format round-trips, fields and order, formula neutralisation, gzip,
streaming in many batches, the manifest, and the audit entry the export leaves."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from auditlens.export import export
from tests.helpers import ORG, ORG2, make_entry


@pytest.fixture
def filled(store: al.AuditStore) -> al.AuditStore:
    store.append(
        [
            make_entry(
                timestamp=f"2025-01-0{1 + i % 5}T10:00:00.{i:03d}Z",
                details={"i": i, "nested": {"ok": True}},
            )
            for i in range(25)
        ]
    )
    store.append(
        [
            make_entry(
                organization_id=ORG2,
                resource={"type": "webhook", "id": "w", "name": "=cmd|' /C calc'!A0"},
                actor={"user_id": None, "email": "+evil@x.io", "type": "user"},
                details={"note": 'ünïcode ✓, "quotes"\nnew line'},
            )
        ]
    )
    return store


def test_jsonl_and_json_are_the_interchange_shape(filled: al.AuditStore, tmp_path: Path) -> None:
    expected = [
        {k: v for k, v in e.items() if k not in ("seq", "prev_hash", "entry_hash")}
        for e in filled.entries(order="asc")
    ]
    res = export(filled, tmp_path / "a.jsonl", format="jsonl", record=False, batch_size=7)
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert res.rows == 26 and lines == expected
    export(filled, tmp_path / "a.json", format="json", record=False, batch_size=7)
    assert json.loads((tmp_path / "a.json").read_text()) == expected


def test_csv_fields_in_order_nested_json_and_formulas_neutralised(
    filled: al.AuditStore, tmp_path: Path
) -> None:
    out = tmp_path / "a.csv"
    export(
        filled,
        out,
        format="csv",
        fields="timestamp,actor.email,resource.name,details.nested,result",
        record=False,
        batch_size=4,
    )
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == ["timestamp", "actor.email", "resource.name", "details.nested", "result"]
    assert len(rows) == 27
    assert rows[1][0] == "2025-01-01T10:00:00.000Z"
    assert json.loads(rows[1][3]) == {"ok": True}
    evil = rows[-1]
    assert evil[1] == "'+evil@x.io" and evil[2] == "'=cmd|' /C calc'!A0"


def test_parquet_has_typed_columns(filled: al.AuditStore, tmp_path: Path) -> None:
    export(
        filled,
        tmp_path / "a.parquet",
        format="parquet",
        fields=["timestamp", "actor.email", "seq"],
        record=False,
    )
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.num_rows == 26
    assert str(table.schema.field("timestamp").type) == "timestamp[ms, tz=UTC]"
    assert str(table.schema.field("seq").type) == "int64"


def test_gzip_manifest_and_checksum(filled: al.AuditStore, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl.gz"
    res = export(
        filled, out, format="jsonl", where="result:success", organization_id=ORG, record=False
    )
    data = out.read_bytes()
    assert hashlib.sha256(data).hexdigest() == res.sha256
    assert len(gzip.decompress(data).splitlines()) == 25
    manifest = json.loads(res.manifest.read_text())  # type: ignore[union-attr]
    assert manifest["rows"] == 25 and manifest["sha256"] == res.sha256 and manifest["gzip"] is True
    assert manifest["query"] == "result:success" and manifest["organizations"] == {ORG: 25}
    assert manifest["first"] == "2025-01-01T10:00:00.000Z"


def test_an_export_leaves_an_audit_entry_per_organization(
    filled: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITLENS_ACTOR", "auditor@company.com")
    export(filled, tmp_path / "a.csv", where="jane@company.com")
    trail = filled.entries("action:audit_log.exported")
    assert len(trail) == 1
    assert (
        trail[0]["actor"]["email"] == "auditor@company.com" and trail[0]["organization_id"] == ORG
    )
    assert trail[0]["details"]["rows"] == 25 and trail[0]["details"]["query"] == "jane@company.com"
    assert filled.count("auditor@company.com") == 1  # who looked at what is an ordinary search


def test_empty_exports_and_bad_arguments(filled: al.AuditStore, tmp_path: Path) -> None:
    res = export(filled, tmp_path / "none.csv", where="actor:nobody@x.io", fields=["action"])
    assert res.rows == 0 and (tmp_path / "none.csv").read_text() == "action\n"
    assert filled.count("action:audit_log.exported") == 0
    export(filled, tmp_path / "none.json", format="json", where="actor:nobody@x.io", record=False)
    assert json.loads((tmp_path / "none.json").read_text()) == []
    with pytest.raises(al.FilterError, match="unknown field 'colour'"):
        export(filled, tmp_path / "x.csv", fields=["colour"])
    with pytest.raises(al.FilterError, match="format must be one of"):
        export(filled, tmp_path / "x.xlsx", format="xlsx")
    with pytest.raises(al.ConfigError, match="does not exist"):
        export(filled, tmp_path / "missing" / "x.csv")
    buf = io.BytesIO()
    export(filled, buf, format="jsonl", record=False)
    assert len(buf.getvalue().splitlines()) == 26


def test_cli_export(filled: al.AuditStore, store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "cli.csv"
    res = CliRunner().invoke(
        app,
        [
            "export",
            "result:success",
            "--db",
            store_url,
            "--format",
            "csv",
            "--fields",
            "timestamp,actor.email,action,result",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "26 entries" in res.stdout
    df = pl.read_csv(out)
    assert df.columns == ["timestamp", "actor.email", "action", "result"] and df.height == 26
    res = CliRunner().invoke(
        app, ["export", "", "--db", store_url, "--fields", "nope", "--out", str(out)]
    )
    assert res.exit_code == 2 and "unknown field" in res.stderr


def test_pdf_export_is_readable_escaped_and_numbered(filled: al.AuditStore, tmp_path: Path) -> None:
    import pypdf

    out = tmp_path / "report.pdf"
    filled.append(
        [make_entry(resource={"type": "webhook", "id": "x", "name": "<script>alert(1)</script>"})]
    )
    filled.append(
        [
            make_entry(
                resource={"type": "webhook", "id": "y", "name": "<img src=file:///etc/passwd>"}
            )
        ]
    )
    res = export(
        filled,
        out,
        format="pdf",
        fields="timestamp,actor.email,action,resource.name,result",
        where="action:webhook.*",
        record=False,
    )
    reader = pypdf.PdfReader(out)
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert res.rows == 28 and "Entries" in text and "28" in text
    assert "<script>alert(1)</script>" in text  # shown as text, not run
    assert "<img src=file:///etc/passwd>" in text and "root:" not in text
    assert f"Page 1 of {len(reader.pages)}" in text
    assert reader.metadata is not None and reader.metadata.title == "Audit log export"


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_an_unusable_actor_is_refused_before_anything_is_written(
    filled: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("AUDITLENS_ACTOR", "auditor@localhost")  # an @, but no email
    for fmt in ("csv", "pdf"):
        with pytest.raises(al.ConfigError, match="AUDITLENS_ACTOR='auditor@localhost'"):
            export(filled, out / f"a.{fmt}", format=fmt)
    assert _listing(out) == []  # no file, no manifest, no temporary file
    assert filled.count("action:audit_log.exported") == 0
    # a name without @ is the documented system actor: the file and its record, together
    monkeypatch.setenv("AUDITLENS_ACTOR", "nightly-backup")
    res = export(filled, out / "a.csv")
    assert _listing(out) == ["a.csv", "a.csv.manifest.json"] and res.path == out / "a.csv"
    [entry] = filled.entries("action:audit_log.exported", organization_id=ORG)
    assert entry["actor"]["type"] == "system" and entry["details"]["sha256"] == res.sha256


def test_a_query_longer_than_the_details_limit_is_recorded_cut_with_its_digest(
    filled: al.AuditStore, tmp_path: Path
) -> None:
    # 70 excluded phrases of 990 characters: a legitimate query of ~70 KB (> 64 KiB)
    query = " ".join(f'-"{chr(97 + i % 26) * 980}{i:010d}"' for i in range(70))
    assert len(query.encode()) > 64 * 1024
    res = export(filled, tmp_path / "long.jsonl", format="jsonl", where=query)
    assert res.rows == 26 and (tmp_path / "long.jsonl").exists()
    trail = filled.entries("action:audit_log.exported", order="asc")
    assert sorted(e["organization_id"] for e in trail) == sorted([ORG, ORG2])
    details = trail[0]["details"]
    assert details["query"] == query[: len(details["query"])] and len(details["query"]) < 8192
    assert details["query_length"] == len(query)
    assert details["query_sha256"] == hashlib.sha256(query.encode()).hexdigest()
    assert json.loads(res.manifest.read_text())["query"] == query  # type: ignore[union-attr]


def test_an_export_whose_record_fails_leaves_no_file(
    filled: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.csv").write_text("the previous export\n")

    def refuse(entries: object) -> None:
        raise al.StoreError("the database refused the write: disk full")

    monkeypatch.setattr(filled, "append", refuse)
    with pytest.raises(al.StoreError, match="disk full"):
        export(filled, out / "a.csv")
    assert _listing(out) == ["a.csv"]  # no manifest, no temporary file
    assert (out / "a.csv").read_text() == "the previous export\n"  # not replaced
    monkeypatch.undo()
    assert filled.count("action:audit_log.exported") == 0
    export(filled, out / "a.csv")
    assert _listing(out) == ["a.csv", "a.csv.manifest.json"]
    assert filled.count("action:audit_log.exported") == 2
