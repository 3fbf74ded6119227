"""The PDF and HTML reports, read back: ids, numbers, page numbers, metadata, escaping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader

import auditlens as al
from tests.helpers import ORG
from tests.reports import scenario


@pytest.fixture
def report(store: al.AuditStore) -> al.reports.Report:
    scenario.seed(store)
    return al.build_report(store, "soc2", ORG, scenario.START, scenario.END)


def _text(path: Path) -> tuple[PdfReader, list[str]]:
    reader = PdfReader(str(path))
    return reader, [page.extract_text() for page in reader.pages]


def test_pdf_reads_back_with_ids_numbers_and_page_numbers(
    report: al.reports.Report, store: al.AuditStore, tmp_path: Path
) -> None:
    pdf = report.to_pdf(tmp_path / "soc2.pdf")
    reader, pages = _text(pdf)
    text = "\n".join(pages)
    for rid in ("CC6.1", "CC6.2", "CC6.3", "CC7.2", "CC7.3", "CC8.1"):
        assert rid in text
    # "Page N of M" on every page but the cover
    n = len(pages)
    for i, page in enumerate(pages[1:], start=2):
        assert f"Page {i} of {n}" in page
    # the numbers printed are the store's counts for the period
    rows = store.count(organization_id=ORG, start=scenario.START, end=scenario.END)
    assert re.search(rf"Entries in the period\s*{rows}\b", text)
    failed = store.count(
        organization_id=ORG, start=scenario.START, end=scenario.END, actions="auth.failed"
    )
    assert re.search(rf"failed logins\s*{failed}\b", text)
    assert re.search(r"self changes\s*1\b", text)
    # the table of contents carries page numbers that point at the right pages
    toc = pages[1]
    m = re.search(r"CC6\.2 Registration[^\n]*?\.+\s*(\d+)", toc)
    assert m is not None
    assert "CC6.2 Registration" in pages[int(m.group(1)) - 1]
    # cover, metadata
    assert ORG in pages[0] and report.provenance["input_sha256"][:16] in pages[0]
    assert "Page" not in pages[0]  # the cover carries no running header or footer
    meta = reader.metadata
    assert meta is not None
    assert meta.title is not None and "SOC 2" in meta.title
    assert meta.author == f"auditlens {al.__version__}"
    assert meta.subject is not None and "SOC2 compliance report" in meta.subject
    # statuses: CC6.2 fails (carol signed in after her suspension)
    assert report.status_of("CC6.2") == "fail"
    # "why" is a sentence; the rule itself is printed in the appendix
    assert "Activity after suspension: 1." in text
    appendix = text[text.rindex("Rules") :]
    assert "activity_after_suspension > 0" in appendix


def test_html_escapes_attacker_controlled_names(store: al.AuditStore, tmp_path: Path) -> None:
    scenario.seed(store)
    store.append(
        [
            scenario._e(
                "2025-01-22T10:00:00Z",
                scenario.BOB,
                "webhook.updated",
                resource={"type": "webhook", "id": "wh-3", "name": scenario.SCRIPT},
                details={"before": {"url": scenario.IMG}, "after": {"url": "x"}},
            )
        ]
    )
    report = al.build_report(store, "iso27001", ORG, scenario.START, scenario.END, charts=False)
    html = report.to_html(tmp_path / "r.html")
    assert scenario.SCRIPT not in html and scenario.IMG not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=file:///etc/passwd&gt;" in html.replace("&#34;", '"')


def test_malicious_resource_names_show_as_text_in_the_pdf(tmp_path: Path) -> None:
    store = al.open_store("sqlite://")
    scenario.seed(store)
    fw = al.reports.parse_framework(
        "framework: T\nname: T\nrequirements:\n  - id: T1\n    name: changes\n"
        "    checks:\n      - evidence: log_access\n      - evidence: change_management\n",
        "t.yaml",
    )
    # created webhooks are listed by the change-management updates table only when
    # updated, so name the malicious text in an update too
    store.append(
        [
            scenario._e(
                "2025-01-22T10:00:00Z",
                scenario.BOB,
                "webhook.updated",
                resource={"type": "webhook", "id": "wh-3", "name": scenario.SCRIPT + scenario.IMG},
                details={"before": {"url": scenario.IMG}, "after": {"url": "x"}},
            )
        ]
    )
    report = al.build_report(store, fw, ORG, scenario.START, scenario.END, charts=False)
    _, pages = _text(report.to_pdf(tmp_path / "t.pdf"))
    text = re.sub(r"\s+", "", "".join(pages))  # cells wrap: compare without whitespace
    assert "<script>alert(1)</script>" in text
    assert "<imgsrc=file:///etc/passwd>" in text
    assert "root:x:0:0" not in text


def test_html_is_interactive_and_offline(report: al.reports.Report, tmp_path: Path) -> None:
    html = report.to_html(tmp_path / "r.html")
    assert html.count("Plotly.newPlot") >= 1
    assert not re.search(r"<script[^>]*\bsrc=", html)  # plotly.js is inlined, nothing fetched
    assert len(html) > 1_000_000  # ... which is large: the library itself
    assert "CC6.1" in html


def test_charts_are_svg_in_the_pdf_when_chromium_is_there(report: al.reports.Report) -> None:
    from auditlens.reports.render import chart_svgs

    figures = report.figures()
    assert figures, "the scenario has failed sign-ins: one chart at least"
    svgs, note = chart_svgs(figures)
    assert note is None, note
    assert all(s is not None and s.lstrip().startswith("<svg") for s in svgs)


def test_results_json_has_provenance(report: al.reports.Report, tmp_path: Path) -> None:
    import json

    data = json.loads(report.save_json(tmp_path / "r.json").read_text())
    assert data["provenance"]["rows"] == scenario.ROWS
    assert data["provenance"]["parameters"]["start"] == "2025-01-01T00:00:00.000Z"
    assert data["provenance"]["parameters"]["end"] == "2025-01-31T23:59:59.999Z"
    assert {r["id"] for r in data["requirements"]} >= {"CC6.1", "CC8.1"}
    assert data["summary"]["fail"] >= 1
    assert "password" not in data["provenance"]["source"]


def test_producing_a_report_is_recorded(store: al.AuditStore) -> None:
    scenario.seed(store)
    al.build_report(store, "gdpr", ORG, scenario.START, scenario.END, charts=False)
    rec = store.search("action:audit_log.exported", backend="polars")
    assert rec.height == 1
    assert '"report":"GDPR"' in rec["details"][0].replace(" ", "")
