"""The report as a person reads it: charts over the period, human values, whole ids,
tables printed once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader

import auditlens as al
from auditlens.reports.render import cell, header, metric_value
from tests.helpers import ORG
from tests.reports import scenario

CHART_TITLES = (
    "Entries per day",
    "Failed sign-ins",
    "Findings over time by severity",
    "Privileged actions by hour of week",
)


@pytest.fixture
def report(store: al.AuditStore) -> al.reports.Report:
    scenario.seed(store)
    return al.build_report(store, "soc2", ORG, scenario.START, scenario.END)


def test_pdf_has_the_four_period_charts_human_values_whole_ids_and_no_repeated_table(
    report: al.reports.Report, tmp_path: Path
) -> None:
    pdf = report.to_pdf(tmp_path / "soc2.pdf")
    text = "\n".join(p.extract_text() for p in PdfReader(str(pdf)).pages)
    for title in CHART_TITLES:
        assert title in text
    assert not re.findall(r"(?<![\w-])(?:True|False|-1)(?![\w-])", text)
    shown = [
        row["audit_id"]
        for r in report.requirements
        for c in r.checks
        if c.exceptions is not None
        for row in c.exceptions.head(25).iter_rows(named=True)
    ]
    assert shown
    for audit_id in shown:
        assert audit_id in text  # printed whole, on one line
    # the findings chapter points at the findings tables instead of printing them again
    assert text.count("High and critical findings") == 1


def test_charts_span_the_period_and_use_the_organizations_time_zone(
    store: al.AuditStore,
) -> None:
    scenario.seed(store)
    al.context.set_org_profile(store, ORG, timezone="Asia/Tokyo")
    report = al.build_report(store, "soc2", ORG, scenario.START, scenario.END)
    figs = report.overview_figures()
    assert [f.layout.title.text.split(" (")[0] for f in figs] == [
        "Entries per day",
        "Failed sign-ins",
        "Findings over time by severity",
        "Privileged actions by hour of week",
    ]
    for fig in figs[:3]:
        lo, hi = fig.layout.xaxis.range
        assert (str(lo)[:10], str(hi)[:10]) == (
            report.start.date().isoformat(),
            report.end.date().isoformat(),
        )
    assert "Asia/Tokyo" in figs[3].layout.title.text
    # every privileged action is placed once, in Tokyo hours
    assert (
        sum(figs[3].data[0].marker.color)
        == report.evidence["privileged_actions"].metrics["privileged_actions"]
    )
    # days without entries are marked on the entries-per-day chart
    days = (report.end - report.start).days
    bars, empty = figs[0].data
    assert len(bars.x) == days
    assert len(empty.x) == sum(1 for n in bars.y if n == 0)
    # the failed sign-ins chart is not repeated among the evidence charts
    assert [f.layout.title.text for f in report.figures()].count("Failed sign-ins") == 1


def test_values_read_as_words_and_break_only_at_sensible_points() -> None:
    assert metric_value("retention_days", -1) == "unlimited"
    assert metric_value("retention_days", 30) == "30"
    assert metric_value("self", False) == "no"
    assert metric_value("entries", 1234) == "1,234"
    assert metric_value("hours_since_checkpoint", None) == "n/a"
    assert str(cell(True)) == "yes"
    assert str(cell("enabled: True → False")) == "enabled: yes → no"
    uid = "9f7871a1-4a9b-4095-b366-86eaf9605159"
    assert str(cell(uid)) == f'<span class="id">{uid}</span>'
    assert str(cell("a" * 64)).count("<wbr>") == 3
    assert str(cell("<script>@x.y")).startswith("&lt;script&gt;")
    assert header("actions_after") == "actions after"
