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
    findings = store.detect("all")  # the demo stores its time zones and people as context
    incidents = [set(i["audit_ids"]) for i in demo.incidents]
    evidence = [set(ids) for ids in findings["audit_ids"].to_list()]
    recall = sum(any(inc & ev for ev in evidence) for inc in incidents) / len(incidents)
    precision = sum(any(ev & inc for inc in incidents) for ev in evidence) / len(evidence)
    assert recall == 1.0
    assert precision >= 0.9
    # each incident is found by every detector meant for it, and each detector's findings
    # are incidents meant for it
    for inc in demo.incidents:
        for name in inc["detectors"]:
            hits = findings.filter(findings["detector"] == name)
            assert any(set(inc["audit_ids"]) & set(ids) for ids in hits["audit_ids"].to_list()), (
                inc["kind"],
                name,
            )
    for name in set(findings["detector"]):
        meant = [set(i["audit_ids"]) for i in demo.incidents if name in i["detectors"]]
        ev = findings.filter(findings["detector"] == name)["audit_ids"].to_list()
        right = sum(any(set(ids) & m for m in meant) for ids in ev)
        assert right / len(ev) >= 0.9, name


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
    res = runner.invoke(app, ["detect", "--db", db, "--format", "json", "--since", "60d"])
    assert res.exit_code == 0, res.output
    kinds = {f["detector"] for f in json.loads(res.stdout)}
    assert kinds == {
        "failed_login_spikes",
        "brute_force_success",
        "password_spray",
        "off_hours",
        "bulk_deletions",
        "unusual_access",
        "failure_bursts",
        "privilege_escalation",
        "defence_evasion",
        "mass_export",
    }
    res = runner.invoke(app, ["detect", "--db", db, "--exit-code"])
    assert res.exit_code == 1 and "brute_force_success" in res.stdout
