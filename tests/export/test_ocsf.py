"""OCSF export: every class validates against the pinned OCSF 1.5 JSON schema, the
type_uid rule, time in ms, metadata, the CLI round trip (JSONL and a Parquet folder with
one file per class), and detector findings as Detection Findings through py-ocsf-models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from auditlens.export import export
from auditlens.export.ocsf import CLASSES, findings_to_ocsf, ocsf_json_lines
from tests.helpers import JANE_ID, ORG, ORG2, make_entry

SCHEMA = json.loads((Path(__file__).parent / "ocsf_schema" / "ocsf_1.5.0.json").read_text())

#: action → (class_uid, activity_id) the mapping must give
EXPECTED = {
    "auth.login": (3002, 1),
    "auth.failed": (3002, 1),
    "auth.logout": (3002, 2),
    "auth.sessions_revoked": (3002, 2),
    "auth.password_reset": (3001, 4),
    "auth.mfa_enabled": (3001, 10),
    "auth.mfa_disabled": (3001, 11),
    "user.invited": (3001, 1),
    "user.suspended": (3001, 5),
    "user.removed": (3001, 6),
    "user.role_changed": (3001, 99),
    "application.member_added": (3001, 99),
    "webhook.created": (3004, 1),
    "webhook.updated": (3004, 3),
    "webhook.deleted": (3004, 4),
    "organization.settings_updated": (3004, 3),
    "audit_log.exported": (6003, 2),
    "organization.profile_changed": (6003, 3),
    "webhook.tested": (6003, 99),
    "billing.payment_failed": (6003, 99),
}


def _entries() -> list[dict[str, Any]]:
    out = []
    for i, action in enumerate(EXPECTED):
        resource: dict[str, Any] | None = {"type": "webhook", "id": f"wh-{i}", "name": "Hook"}
        if action.startswith("user."):
            resource = {"type": "user", "id": "u-9", "name": "bob@company.com"}
        elif action.startswith(("auth.", "billing.", "audit_log.")):
            resource = None
        out.append(
            make_entry(
                timestamp=f"2025-01-20T10:{i:02d}:00.123Z",
                action=action,
                resource=resource,
                result="failure" if action == "auth.failed" else "success",
                details={"reason": "bad password"} if action == "auth.failed" else {"i": i},
                ip_address=None if action == "webhook.tested" else "192.168.1.100",
            )
        )
    # no user id, no email: a system actor still names someone
    out.append(
        make_entry(
            action="billing.payment_succeeded",
            actor={"type": "system"},
            result="partial",
            resource=None,
            user_agent=None,
        )
    )
    return out


def _validate(event: dict[str, Any]) -> None:
    name = CLASSES[event["class_uid"]][3]
    schema = {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{name}"}
    jsonschema.Draft202012Validator(schema).validate(event)


@pytest.fixture
def events(store: al.AuditStore) -> list[dict[str, Any]]:
    store.append(_entries())
    return [orjson.loads(line) for line in ocsf_json_lines(store.query(backend="polars"))]


def test_every_class_validates_against_the_pinned_schema(events: list[dict[str, Any]]) -> None:
    assert {e["class_uid"] for e in events} == set(CLASSES)
    for event in events:
        _validate(event)


def test_pinned_schema_rejects_what_ocsf_does_not_define(events: list[dict[str, Any]]) -> None:
    login = next(e for e in events if e["message"] == "auth.login")
    for broken in (
        {**login, "type_uid": 300208},  # not class_uid*100 + a 1.5 activity
        {**login, "user_name": "jane"},  # no such attribute
        {k: v for k, v in login.items() if k != "user"},  # user is required
        {**login, "metadata": {**login["metadata"], "version": "1.1.0"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            _validate(broken)


def test_classes_activities_and_type_uid(events: list[dict[str, Any]]) -> None:
    got = {e["message"]: (e["class_uid"], e["activity_id"]) for e in events}
    assert {a: got[a] for a in EXPECTED} == EXPECTED
    for e in events:
        assert e["type_uid"] == e["class_uid"] * 100 + e["activity_id"]
        assert e["category_uid"] == e["class_uid"] // 1000


def test_time_metadata_actor_and_unmapped(
    events: list[dict[str, Any]], store: al.AuditStore
) -> None:
    rows = {r["audit_id"]: r for r in store.entries()}
    for e in events:
        entry = rows[e["metadata"]["uid"]]
        assert e["time"] == al.schema.parse_timestamp(entry["timestamp"])
        assert e["metadata"]["tenant_uid"] == entry["organization_id"]
        assert e["metadata"]["version"] == "1.5.0"
        assert e["metadata"]["product"]["name"] == "auditlens"
        assert e["metadata"]["log_name"] == "audit_trail"
        assert e["unmapped"]["details"] == entry["details"]
    login = next(e for e in events if e["message"] == "auth.login")
    assert login["actor"]["user"] == {
        "uid": JANE_ID,
        "name": "jane@company.com",
        "email_addr": "jane@company.com",
        "type_id": 1,
        "type": "User",
    }
    assert login["src_endpoint"] == {"ip": "192.168.1.100"}
    assert login["http_request"] == {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    failed = next(e for e in events if e["message"] == "auth.failed")
    assert (failed["status_id"], failed["status"], failed["status_detail"]) == (
        2,
        "Failure",
        "bad password",
    )
    suspended = next(e for e in events if e["message"] == "user.suspended")
    assert suspended["user"]["email_addr"] == "bob@company.com"  # the target, not the actor
    tested = next(e for e in events if e["message"] == "webhook.tested")
    assert tested["src_endpoint"] == {"name": "unknown"}  # required in API Activity
    system = next(e for e in events if e["message"] == "billing.payment_succeeded")
    assert system["actor"]["user"] == {"name": "system", "type_id": 3, "type": "System"}
    assert (system["status_id"], system["status"]) == (99, "Partial")
    assert "http_request" not in system  # absent values are left out, never null


def test_cli_jsonl_round_trip(store: al.AuditStore, store_url: str, tmp_path: Path) -> None:
    store.append(_entries())
    out = tmp_path / "ocsf.jsonl"
    res = CliRunner().invoke(
        app, ["export", "", "--format", "ocsf", "--out", str(out), "--db", store_url]
    )
    assert res.exit_code == 0, res.output
    events = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert len(events) == len(EXPECTED) + 1
    assert [e["metadata"]["sequence"] for e in events] == sorted(
        e["metadata"]["sequence"] for e in events
    )
    for e in events:
        _validate(e)
    manifest = json.loads((tmp_path / "ocsf.jsonl.manifest.json").read_text())
    assert (manifest["format"], manifest["rows"]) == ("ocsf", len(events))
    assert store.count(action="audit_log.exported") == 2  # the one in _entries, and this one


def test_parquet_is_one_file_per_class(
    store: al.AuditStore, store_url: str, tmp_path: Path
) -> None:
    store.append(_entries())
    store.append([make_entry(organization_id=ORG2, action="auth.login", resource=None)])
    out = tmp_path / "ocsf"
    res = CliRunner().invoke(
        app,
        ["export", "", "--format", "ocsf", "--parquet", "--out", str(out), "--db", store_url],
    )
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert names == {f"{c[3]}.parquet" for c in CLASSES.values()} | {"manifest.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    total = 0
    for cls, (_, _, _, stem) in CLASSES.items():
        table = pq.read_table(out / f"{stem}.parquet")
        assert set(table["class_uid"].to_pylist()) == {cls}
        assert manifest["files"][f"{stem}.parquet"]["rows"] == table.num_rows
        for event in table.to_pylist()[:3]:  # nested structs: the same shape, nulls aside
            _validate(_drop_nulls(event))
        total += table.num_rows
    assert total == len(EXPECTED) + 2
    assert manifest["organizations"] == {ORG: len(EXPECTED) + 1, ORG2: 1}
    assert store.count(action="audit_log.exported") == 3  # _entries has one; one per organization


def test_parquet_by_suffix_through_export(store: al.AuditStore, tmp_path: Path) -> None:
    store.append([make_entry(action="auth.login", resource=None)])
    res = export(store, tmp_path / "x.parquet", format="ocsf", record=False)
    assert res.path is not None and res.path.is_dir()
    assert (res.rows, res.fields) == (1, ["authentication.parquet"])
    table = pl.read_parquet(res.path / "authentication.parquet")
    assert table["type_uid"].to_list() == [300201]
    assert table["metadata"].struct.field("uid").to_list() == [store.entries()[0]["audit_id"]]


def test_fields_do_not_apply(store: al.AuditStore, tmp_path: Path) -> None:
    with pytest.raises(al.ExportFormatError, match="fields do not apply"):
        export(store, tmp_path / "x.jsonl", format="ocsf", fields="action", record=False)


def test_parquet_refuses_a_folder_with_files(store: al.AuditStore, tmp_path: Path) -> None:
    (tmp_path / "x.parquet").mkdir()
    (tmp_path / "x.parquet" / "keep.txt").write_text("mine")
    with pytest.raises(al.ExportFormatError, match="not an empty folder"):
        export(store, tmp_path / "x.parquet", format="ocsf", record=False)
    assert (tmp_path / "x.parquet" / "keep.txt").read_text() == "mine"


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _drop_nulls(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def test_findings_are_detection_findings(store: al.AuditStore) -> None:
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding

    store.append(
        [
            make_entry(
                action="auth.failed",
                result="failure",
                resource=None,
                timestamp=f"2025-01-20T10:00:{i:02d}.000Z",
            )
            for i in range(12)
        ]
    )
    findings = store.detect("failed_login_spikes")
    assert findings.height == 1
    (event,) = findings_to_ocsf(findings)
    DetectionFinding.model_validate(event)  # the model's own check, read back
    row = findings.row(0, named=True)
    assert (event["class_uid"], event["type_uid"], event["activity_id"]) == (2004, 200401, 1)
    assert event["finding_info"]["uid"] == row["finding_id"]
    assert event["finding_info"]["analytic"]["name"] == "failed_login_spikes"
    assert [r["uid"] for r in event["finding_info"]["related_events"]] == row["audit_ids"]
    assert event["time"] == int(row["window_end"].timestamp() * 1000)
    assert event["metadata"]["tenant_uid"] == ORG
    assert (
        event["severity_id"] == {"low": 2, "medium": 3, "high": 4, "critical": 5}[row["severity"]]
    )


def test_cli_detect_ocsf(store: al.AuditStore, store_url: str) -> None:
    store.append(
        [
            make_entry(
                action="auth.failed",
                result="failure",
                resource=None,
                timestamp=f"2025-01-20T10:00:{i:02d}.000Z",
            )
            for i in range(12)
        ]
    )
    res = CliRunner().invoke(
        app, ["detect", "--format", "ocsf", "--detector", "failed_login_spikes", "--db", store_url]
    )
    assert res.exit_code == 0, res.output
    (line,) = res.output.splitlines()
    assert json.loads(line)["class_uid"] == 2004
