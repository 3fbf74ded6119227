"""Google Workspace Reports import: one entry per event, login failures, service accounts."""

from __future__ import annotations

from pathlib import Path

import auditlens as al
from auditlens.importers import import_files, workspace
from auditlens.importers.entries import organization_for, stable_id
from auditlens.resources import samples_dir

DATA = Path(__file__).parent / "data" / "workspace"


def test_login_failure_service_accounts_and_a_missing_id() -> None:
    recs = list(workspace.records(DATA))
    failure = recs[0].value
    assert (failure["action"], failure["result"]) == ("auth.failed", "failure")
    assert failure["details"]["parameters"]["is_suspicious"] is True
    assert failure["audit_id"] == stable_id(
        "workspace", "login", "-101", "2024-03-02T10:00:00.000Z", "0"
    )
    assert failure["organization_id"] == organization_for("google-customer", "C0fixture")
    assert (recs[1].line, "id is missing" in str(recs[1].value)) == (2, True)
    token = recs[2].value
    assert token["actor"]["type"] == "service_account"
    assert token["resource"] == {"type": "application", "id": "Backup Tool", "name": "Backup Tool"}


def test_an_activity_with_two_events_is_two_entries() -> None:
    entries = list(workspace.read(samples_dir() / "workspace" / "admin_activities.json"))
    two = [e for e in entries if e["details"]["id"]["uniqueQualifier"] == "-2221234567890123457"]
    assert [e["action"] for e in two] == ["admin.grant_admin_privilege", "auth.password_reset"]
    assert len({e["audit_id"] for e in two}) == 2


def test_import_and_reimport(store: al.AuditStore) -> None:
    report = import_files(store, "workspace", [DATA, samples_dir() / "workspace"])
    assert (report.appended, len(report.rejected), report.files) == (9, 1, 3)
    again = import_files(store, "workspace", [DATA, samples_dir() / "workspace"])
    assert (again.appended, again.duplicates) == (0, 9)
