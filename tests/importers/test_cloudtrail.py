"""CloudTrail import: mapping, round trip, idempotent re-import, rejects, gzip and folders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import orjson

import auditlens as al
from auditlens.importers import cloudtrail, import_files
from auditlens.importers.entries import organization_for, stable_id
from auditlens.schema import normalize_entry

DATA = Path(__file__).parent / "data" / "cloudtrail"
ACCOUNT_ORG = organization_for("aws-account", "111122223333")
ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
MALLORY = "arn:aws:iam::111122223333:user/mallory"
SESSION = "arn:aws:sts::111122223333:assumed-role/AuditRole/pacu-session"


def _entries(path: Path) -> dict[str, dict[str, Any]]:
    return {
        r.value["action"]: r.value for r in cloudtrail.records(path) if isinstance(r.value, dict)
    }


def test_each_documented_case_maps_as_the_table_says() -> None:
    e = _entries(DATA / "pretty.json")
    listed = e["iam.list_users"]
    assert listed["actor"] == {"user_id": MALLORY, "email": None, "type": "user"}
    assert listed["audit_id"] == stable_id("cloudtrail", "0b5b6c2e-1111-4aaa-8bbb-000000000001")
    assert listed["organization_id"] == ACCOUNT_ORG
    assert listed["user_agent"].startswith("pacu_")  # the attack tool's tag kept as written
    assert listed["details"]["eventName"] == "ListUsers"
    assert listed["details"]["eventSource"] == "iam.amazonaws.com"

    denied = e["iam.attach_user_policy"]
    assert denied["result"] == "failure"
    assert denied["details"]["errorCode"] == "AccessDenied"
    assert denied["resource"] == {"type": "iam_user", "id": "mallory", "name": "mallory"}

    role = e["s3.put_bucket_policy"]
    assert role["actor"] == {"user_id": SESSION, "email": None, "type": "role"}
    issuer = role["details"]["userIdentity"]["sessionContext"]["sessionIssuer"]
    assert issuer["arn"] == "arn:aws:iam::111122223333:role/AuditRole"
    assert role["user_agent"] == "[aws-sdk-go/1.44.0 (go1.20; linux; amd64)]"

    service = e["config.put_evaluations"]
    assert service["actor"] == {"user_id": "config.amazonaws.com", "email": None, "type": "system"}
    assert service["ip_address"] is None
    assert service["details"]["sourceIPAddress"] == "AWS Internal"


def test_details_over_the_limit_drop_bulky_parts_and_say_so() -> None:
    recs = [r for r in cloudtrail.records(DATA / "pretty.json") if isinstance(r.value, dict)]
    big = next(r for r in recs if r.value["action"] == "ec2.describe_instances")
    assert len(big.raw) > 64 * 1024
    details = big.value["details"]
    assert "responseElements" not in details
    assert details["truncated"]["dropped"] == ["responseElements"]
    assert details["truncated"]["record_sha256"] == hashlib.sha256(big.raw).hexdigest()
    assert details["eventID"] and details["userIdentity"]["arn"] == SESSION  # identity kept
    assert big.value["ip_address"] is None
    assert details["sourceIPAddress"] == "ssm.amazonaws.com"
    normalize_entry(big.value)  # fits the store's limit
    # a store opened with a higher limit keeps everything
    whole = next(
        r.value
        for r in cloudtrail.records(DATA / "pretty.json", max_details_bytes=1 << 20)
        if isinstance(r.value, dict) and r.value["action"] == "ec2.describe_instances"
    )
    assert "truncated" not in whole["details"] and "responseElements" in whole["details"]


def test_a_failed_console_login_names_the_same_user_as_the_successful_one() -> None:
    e = _entries(DATA / "lake.jsonl")
    assert e["auth.failed"]["result"] == "failure"
    assert e["auth.login"]["result"] == "success"
    assert e["auth.failed"]["actor"]["user_id"] == e["auth.login"]["actor"]["user_id"] == MALLORY


def test_import_round_trip_rejects_and_idempotent_reimport(
    store: al.AuditStore, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.jsonl"
    report = import_files(store, "cloudtrail", [DATA], rejects=rejects)
    # 3 gzipped files in a folder (the digest folder skipped), the Lake export, the document
    assert report.files == 5
    assert report.appended == 20
    assert [(Path(r.file or "").name, r.line) for r in report.rejected] == [
        ("lake.jsonl", 2),
        ("pretty.json", 60),
        ("pretty.json", 114),
    ]
    reasons = [r.reason for r in report.rejected]
    assert "not valid JSON" in reasons[0]
    assert "eventID is missing" in reasons[1]
    assert "must be a JSON object" in reasons[2]
    assert len(rejects.read_bytes().splitlines()) == 3
    assert report.organizations == (ACCOUNT_ORG,)

    expected = {
        r.value["audit_id"]: r.value
        for r in cloudtrail.records([DATA])
        if isinstance(r.value, dict)
    }
    for audit_id, entry in expected.items():
        stored = store.get(audit_id)
        assert stored is not None
        for key in ("seq", "prev_hash", "entry_hash"):
            stored.pop(key)
        assert stored == normalize_and_back(entry)

    again = import_files(store, "cloudtrail", [DATA])
    assert (again.appended, again.duplicates, len(again.rejected)) == (0, 20, 3)
    assert store.count() == 20
    assert al.verify(store).ok


def normalize_and_back(entry: dict[str, Any]) -> dict[str, Any]:
    from auditlens.schema import row_to_entry

    return row_to_entry(normalize_entry(entry))


def test_a_record_changed_at_the_source_is_refused_not_stored_twice(
    store: al.AuditStore, tmp_path: Path
) -> None:
    doc = json.loads((DATA / "pretty.json").read_text())
    first = {"Records": [doc["Records"][0]]}
    (tmp_path / "a.json").write_text(json.dumps(first))
    assert import_files(store, "cloudtrail", [tmp_path / "a.json"]).appended == 1
    changed = dict(doc["Records"][0], errorCode="AccessDenied")
    (tmp_path / "b.json").write_text(json.dumps({"Records": [changed]}))
    report = import_files(store, "cloudtrail", [tmp_path / "b.json"])
    assert report.appended == 0
    [rej] = report.rejected
    assert (Path(rej.file or "").name, rej.line) == ("b.json", 1)
    assert "already exists with different content" in rej.reason
    assert orjson.loads(rej.raw)["errorCode"] == "AccessDenied"
    assert store.count() == 1


def test_org_and_since_options(store: al.AuditStore) -> None:
    report = import_files(
        store,
        "cloudtrail",
        [DATA / "folder", DATA / "lake.jsonl"],
        organization=ORG,
        since="2024-03-02T13:01:00Z",
    )
    assert (report.appended, report.skipped, len(report.rejected)) == (8, 6, 1)
    assert report.organizations == (ORG,)
    assert store.count(organization_id=ORG) == 8
