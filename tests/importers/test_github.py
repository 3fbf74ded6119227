"""GitHub audit log import: CSV with quoted JSON, gzipped streaming JSON Lines, rejects."""

from __future__ import annotations

import json
from pathlib import Path

import auditlens as al
from auditlens.importers import github, import_files
from auditlens.importers.entries import organization_for, stable_id
from auditlens.resources import samples_dir

DATA = Path(__file__).parent / "data" / "github"
ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"


def test_csv_cells_holding_json_and_quotes_are_read_back() -> None:
    recs = list(github.records(DATA / "export.csv"))
    first = recs[0].value
    assert first["details"]["data"] == {"permission": "admin, write", "user": "hubot"}
    assert first["user_agent"] == 'Mozilla/5.0, "quoted"'
    assert first["audit_id"] == stable_id("github", "csv-1")
    assert first["organization_id"] == organization_for("github-org", "4242")
    assert (recs[1].line, "holds broken JSON") == (3, "holds broken JSON")
    assert "column 'data' holds broken JSON" in str(recs[1].value)
    failed = recs[2].value
    assert (failed["action"], failed["result"]) == ("auth.failed", "failure")


def test_streaming_gzip_and_the_json_export() -> None:
    recs = list(github.records(DATA / "stream.json.gz"))
    assert [r.value["action"] for r in recs[:3]] == [
        "repo.destroy",
        "git.clone",
        "org.disable_two_factor_requirement",
    ]
    assert recs[0].value["ip_address"] == "192.0.2.77"
    assert "pass --org" in str(recs[3].value)
    # with --org, a record without _document_id gets an id from its content
    [rec] = list(github.records(DATA / "stream.json.gz", organization_id=ORG))[3:]
    assert rec.value["organization_id"] == ORG
    bots = [
        e
        for e in github.read(samples_dir() / "github" / "export.json")
        if "[bot]" in str(e["actor"])
    ]
    assert bots and all(e["actor"]["type"] == "service_account" for e in bots)


def test_import_rejects_and_reimport(store: al.AuditStore, tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    report = import_files(store, "github", [DATA], rejects=rejects)
    assert report.appended == 5
    assert [(Path(r.file or "").name, r.line) for r in report.rejected] == [
        ("export.csv", 3),
        ("stream.json.gz", 4),
    ]
    # the rejects are JSON Lines of native records: fixed, they import with the same format
    native = json.loads(rejects.read_text().splitlines()[1])
    (tmp_path / "fixed.jsonl").write_text(json.dumps({**native, "org_id": 4242}) + "\n")
    assert import_files(store, "github", [tmp_path / "fixed.jsonl"]).appended == 1
    again = import_files(store, "github", [DATA])
    assert (again.appended, again.duplicates) == (0, 5)
