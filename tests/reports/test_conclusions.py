"""Conclusions an auditor accepts: honest statuses, populations, exceptions, completeness,
integrity and context (both backends)."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

import auditlens as al
from auditlens import demo
from auditlens.chain.checkpoints import create_checkpoint
from auditlens.chain.notes import generate_keys, load_signing_key
from auditlens.errors import FilterError
from auditlens.reports.report import named_period
from tests.helpers import ORG
from tests.reports import scenario

GREEN = {"pass", "supports"}


def _pdf_text(path: Path) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(str(path)).pages)


def test_an_empty_past_period_is_insufficient_evidence_everywhere(
    store: al.AuditStore, tmp_path: Path
) -> None:
    scenario.seed(store)
    store.set_org_profile(ORG, name="Acme Corp Ltd", timezone="Europe/Berlin")
    report = al.build_report(store, "soc2", ORG, "2024-06-01", "2024-06-30", charts=False)
    automated = [c for r in report.requirements if r.requirement.type != "manual" for c in r.checks]
    assert automated and {c.status for c in automated} == {"insufficient_evidence"}
    assert not GREEN & {r.status for r in report.requirements}
    assert report.summary["pass"] == 0 and report.summary["attention"] == 0
    # the cover keeps the organization's name though the profile entry lies outside the period
    assert report.organization_name == "Acme Corp Ltd"
    pdf = report.to_pdf(tmp_path / "empty.pdf")
    text = _pdf_text(pdf)
    assert "Acme Corp Ltd" in text and "insufficient evidence" in text
    assert 'class="conclusion">no exceptions noted' not in report.to_html(interactive=False)
    # every UTC day of June is listed as a day without entries
    assert len(report.completeness["days_without_entries"]) == 30


def test_a_future_period_is_refused_unless_allowed_and_then_labelled(
    store: al.AuditStore, tmp_path: Path
) -> None:
    scenario.seed(store)
    today = datetime.now(UTC).date()
    later = (today + timedelta(days=40)).isoformat()
    with pytest.raises(FilterError, match="has not ended"):
        al.build_report(store, "soc2", ORG, "2025-01-01", later, charts=False)
    report = al.build_report(
        store, "soc2", ORG, "2025-01-01", later, charts=False, allow_open_period=True
    )
    assert report.provenance["period_ended"] is False
    assert not GREEN & {c.status for r in report.requirements for c in r.checks}
    html = report.to_html(interactive=False)
    assert 'id="period-not-ended"' in html and "period not ended" in html


def test_partial_requirements_never_read_as_a_green_pass(store: al.AuditStore) -> None:
    scenario.seed(store)
    report = al.build_report(store, "gdpr", ORG, scenario.START, scenario.END, charts=False)
    for r in report.requirements:
        if r.requirement.type == "partial":
            assert r.status != "pass", r.requirement.id
    # Art. 30 is manual; its processing evidence is listed, not graded
    art30 = next(r for r in report.requirements if r.requirement.id == "Art. 30")
    assert art30.status == "manual" and {c.status for c in art30.checks} == {"manual"}
    assert {c.check.evidence for c in art30.checks} == {"activity", "log_access"}


def test_gdpr_art15_needs_a_request_handled_by_a_person(
    store: al.AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario.seed(store)
    # two searches by "(system)" are not a subject-access request, nor a review
    monkeypatch.delenv("AUDITLENS_ACTOR", raising=False)
    from auditlens.review import record_review

    record_review(store, "audit_log.viewed", {ORG: 3}, {"query": "carol"}, "search")
    record_review(store, "audit_log.viewed", {ORG: 3}, {"query": "dave"}, "search")
    # (the scenario's month and today's reviews are far apart: no gap rule here)
    report = al.build_report(
        store, "gdpr", ORG, scenario.START, None, charts=False, record=False, gap_hours=1e9
    )
    assert report.status_of("Art. 15") == "manual"
    assert report.evidence["log_access"].metrics["reviews"] == 0
    # a person handles a request for a named subject: the evidence supports it
    monkeypatch.setenv("AUDITLENS_ACTOR", "dpo@acme.example")
    record_review(
        store,
        "audit_log.exported",
        {ORG: 5},
        {"report": "subject_access", "filters": {"subject": "carol@acme.example"}},
        "subject.pdf",
    )
    # (the scenario's month and today's reviews are far apart: no gap rule here)
    report = al.build_report(
        store, "gdpr", ORG, scenario.START, None, charts=False, record=False, gap_hours=1e9
    )
    assert report.status_of("Art. 15") == "supports"
    assert report.evidence["subject_access"].metrics == {"requests": 1, "subjects": 1}
    assert report.evidence["log_access"].metrics["reviewers"] == 1


def test_exceptions_exist_in_the_store_and_populations_recompute(
    store: al.AuditStore, tmp_path: Path
) -> None:
    scenario.seed(store)
    report = al.build_report(
        store, "soc2", ORG, scenario.START, scenario.END, charts=False, record=False
    )
    out = report.save_json(tmp_path / "soc2.json")
    data = json.loads(out.read_text())
    every = store.query(organization_id=ORG, backend="polars")
    seq_of = dict(zip(every["audit_id"].to_list(), every["seq"].to_list(), strict=True))
    exceptions = [e for r in data["requirements"] for c in r["checks"] for e in c["exceptions"]]
    assert exceptions  # CC6.2 and CC6.3 have some
    for e in exceptions:
        assert seq_of[e["audit_id"]] == e["seq"]
    cc62 = next(r for r in data["requirements"] if r["id"] == "CC6.2")["checks"][0]
    assert cc62["conclusion"] == "1 exception(s)"
    assert cc62["exceptions"][0]["actor"] == "carol@acme.example"
    for r in data["requirements"]:
        for c in r["checks"]:
            pop = c["population"]
            if pop is None:
                continue
            file = out.parent / pop["file"]
            assert hashlib.sha256(file.read_bytes()).hexdigest() == pop["sha256"]
            rows = list(csv.DictReader(file.read_text().splitlines()))
            assert len(rows) == pop["count"]
            assert [int(x["seq"]) for x in rows] == sorted(int(x["seq"]) for x in rows)
            # the query a reader pastes into `auditlens search` finds the same entries
            found = store.search(pop["query"], backend="polars")
            assert sorted(found["audit_id"].to_list()) == sorted(x["audit_id"] for x in rows)


def test_the_pdf_shows_25_exceptions_and_names_the_file_for_the_rest(
    store: al.AuditStore, tmp_path: Path
) -> None:
    t0 = datetime(2025, 1, 6, 10, tzinfo=UTC)
    store.append(
        [
            {
                "action": "auth.failed",
                "result": "failure",
                "organization_id": ORG,
                "actor": {"email": f"u{i}@acme.example", "type": "user"},
                "timestamp": (t0 + timedelta(hours=i)).isoformat(),
            }
            for i in range(30)
        ]
    )
    report = al.build_report(
        store, "soc2", ORG, "2025-01-06", "2025-01-07", charts=False, record=False
    )
    check = report.requirements[0].checks[0]
    assert check.status == "attention" and check.exceptions.height == 30
    report.save_json(tmp_path / "r.json")
    text = _pdf_text(report.to_pdf(tmp_path / "r.pdf"))
    assert "5 more in r.json" in text
    shown = text[text.index("Exceptions (30)") : text.index("5 more in r.json")]
    assert "u24@acme" in shown and "u25@acme" not in shown


def test_soc2_on_the_demo_names_the_injected_incidents(
    store: al.AuditStore, tmp_path: Path
) -> None:
    data = demo.generate(orgs=1, days=30, end=date(2025, 3, 1))
    store.append(data.entries)
    org = data.organizations[0]["organization_id"]
    generate_keys(tmp_path, "demo.local/log")
    create_checkpoint(store, org, load_signing_key(tmp_path / "signing.key"))
    report = al.build_report(
        store, "soc2", org, "2025-01-30", "2025-02-28", charts=False, record=False
    )
    injected = {a for i in data.incidents for a in i["audit_ids"]}
    flagged = [
        (r.requirement.id, c)
        for r in report.requirements
        for c in r.checks
        if c.status in ("fail", "attention")
    ]
    assert flagged
    for rid, c in flagged:
        ids = set(c.exceptions["audit_id"].to_list()) if c.exceptions is not None else set()
        assert ids and ids <= injected, (rid, c.check.evidence, c.reasons)
    # the organization's context came from its stored profile, and the appendix says so
    ctx = report.provenance["context"]
    assert ctx["source"].startswith("entry ") and ctx["timezone"] != "UTC"
    assert report.integrity["keys"][0]["fingerprint"]
    assert "the store itself" in report.integrity["keys"][0]["source"]


def test_detector_parameters_reach_the_findings_and_the_appendix(
    store: al.AuditStore,
) -> None:
    scenario.seed(store)
    base = al.build_report(store, "soc2", ORG, scenario.START, scenario.END, charts=False)
    off = al.build_report(
        store,
        "soc2",
        ORG,
        scenario.START,
        scenario.END,
        charts=False,
        detectors={"failed_login_spikes": False},
    )
    assert "failed_login_spikes" in set(base.inp.findings["detector"].to_list())
    assert "failed_login_spikes" not in set(off.inp.findings["detector"].to_list())
    html = base.to_html(interactive=False)
    assert 'id="detector-parameters"' in html and "off_hours.hours" in html
    assert "default (never set)" in html  # the scenario never sets a profile


def test_named_periods() -> None:
    assert named_period("last-month", datetime(2025, 1, 5, tzinfo=UTC)) == (
        "2024-12-01",
        "2024-12-31",
    )
    with pytest.raises(FilterError, match="unknown period"):
        named_period("lastmonth")
