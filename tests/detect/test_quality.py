"""Every injected incident of the demo is found, with few false alarms, through the store."""

from __future__ import annotations

from datetime import date

import pytest

import auditlens as al
from auditlens.demo import generate


@pytest.mark.parametrize("seed", [7, 11])
def test_demo_incidents_recall_and_precision(store: al.AuditStore, seed: int) -> None:
    demo = generate(orgs=3, days=30, seed=seed, end=date(2025, 1, 31))
    store.append(demo.entries)
    zones = {u["email"]: u["timezone"] for o in demo.organizations for u in o["users"]}
    findings = store.detect("all", config={"off_hours": {"timezones": zones}})
    incidents = [set(i["audit_ids"]) for i in demo.incidents]
    evidence = [set(ids) for ids in findings["audit_ids"].to_list()]
    recall = sum(any(inc & ev for ev in evidence) for inc in incidents) / len(incidents)
    precision = sum(any(ev & inc for inc in incidents) for ev in evidence) / len(evidence)
    assert recall == 1.0
    assert precision >= 0.9
    # each kind is found by the detector meant for it
    by_kind = {
        "failed_login_spike": "failed_login_spikes",
        "brute_force_success": "brute_force_success",
        "password_spray": "password_spray",
        "off_hours_admin": "off_hours",
        "bulk_deletions": "bulk_deletions",
        "new_ip_and_agent": "unusual_access",
        "activity_after_suspension": "unusual_access",
    }
    for inc in demo.incidents:
        hits = findings.filter(findings["detector"] == by_kind[inc["kind"]])
        assert any(set(inc["audit_ids"]) & set(ids) for ids in hits["audit_ids"].to_list()), inc[
            "kind"
        ]


def test_store_detect_one_detector_with_filters(store: al.AuditStore) -> None:
    demo = generate(orgs=2, days=14, seed=3, end=date(2025, 1, 31))
    store.append(demo.entries)
    org = demo.organizations[0]["organization_id"]
    f = store.detect("password_spray", organization_id=org)
    assert f.height == 1 and set(f["organization_id"]) == {org}
    with pytest.raises(al.FilterError, match="unknown detector"):
        store.detect("astrology")


def test_cli_detect_lists_the_demo_incidents(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from auditlens.cli import app

    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'd.db'}"
    truth = tmp_path / "inc.json"
    assert (
        runner.invoke(
            app, ["demo", "--db", db, "--orgs", "1", "--days", "14", "--incidents", str(truth)]
        ).exit_code
        == 0
    )
    res = runner.invoke(
        app, ["detect", "--db", db, "--timezones", str(truth), "--format", "json", "--since", "60d"]
    )
    assert res.exit_code == 0, res.output
    kinds = {f["detector"] for f in json.loads(res.stdout)}
    assert kinds == {
        "failed_login_spikes",
        "brute_force_success",
        "password_spray",
        "off_hours",
        "bulk_deletions",
        "unusual_access",
    }
    res = runner.invoke(app, ["detect", "--db", db, "--timezones", str(truth), "--exit-code"])
    assert res.exit_code == 1 and "brute_force_success" in res.stdout
