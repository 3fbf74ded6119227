"""GDPR Art. 15: a subject's entries and the accesses to them (both backends)."""

from __future__ import annotations

import json
from pathlib import Path

import pypdf
import pytest

import auditlens as al
from auditlens.reports import subject_access
from tests.helpers import ORG, make_entry
from tests.reports import scenario


@pytest.fixture
def seeded(store: al.AuditStore) -> al.AuditStore:
    scenario.seed(store)
    return store


def test_subject_as_actor_and_as_resource(seeded: al.AuditStore) -> None:
    sa = subject_access(seeded, "carol@acme.example")
    assert sa.counts["as_actor"] == seeded.count(actor="carol@acme.example")
    assert sa.counts["as_subject"] == seeded.count(resource="carol@acme.example")
    assert "user.suspended" in sa.as_subject["action"].to_list()
    assert sa.counts["organizations"] == 2
    by_id = subject_access(seeded, scenario.CAROL["user_id"])
    assert by_id.counts["as_actor"] == sa.counts["as_actor"]


def test_targeted_and_bulk_accesses(seeded: al.AuditStore, tmp_path: Path) -> None:
    seeded.export(tmp_path / "all.csv", organization_id=ORG)  # a bulk export: covers her
    seeded.export(tmp_path / "c.csv", query="actor:carol@acme.example")  # names her
    sa = subject_access(seeded, "carol@acme.example", organization_id=ORG)
    assert sa.counts["accesses"] == 2
    assert sa.counts["targeted_accesses"] == 1
    data = sa.to_json()
    assert sum(a["targeted"] for a in data["accesses"]) == 1


def test_subject_copy_holds_exactly_their_entries(seeded: al.AuditStore, tmp_path: Path) -> None:
    sa = subject_access(seeded, "dave@acme.example")
    path = sa.export(seeded, tmp_path / "dave.json")
    got = json.loads(path.read_text())
    # joining, dave is both the actor and the resource: one entry, listed once
    assert (sa.counts["as_actor"], sa.counts["as_subject"]) == (1, 3)
    assert len(got) == len({e["audit_id"] for e in got}) == 3
    assert {e["action"] for e in got} == {"user.invited", "user.joined", "user.removed"}


def test_subject_must_be_named(seeded: al.AuditStore) -> None:
    with pytest.raises(al.FilterError):
        subject_access(seeded, "  ")


def _pdf_text(path: Path) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(path)
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def test_subject_pdf_is_titled_for_them_and_lists_subject_and_period(
    seeded: al.AuditStore, tmp_path: Path
) -> None:
    seeded.append(
        [
            scenario._e(
                "2025-01-13T10:00:00Z",
                scenario.CAROL,
                "webhook.tested",
                result="failure",
                resource={"type": "webhook", "id": "wh-1", "name": "Orders"},
                details={"status_code": 503},
            )
        ]
    )
    sa = subject_access(seeded, "carol@acme.example", organization_id=ORG)
    path = sa.export(seeded, tmp_path / "carol.pdf", format="pdf")
    assert path.stat().st_size > 0 and path.read_bytes().startswith(b"%PDF")
    reader, text = _pdf_text(path)
    assert reader.metadata is not None
    assert reader.metadata.title == "Subject access — carol@acme.example"
    assert "carol@acme.example" in (reader.metadata.subject or "")
    assert text.startswith("Subject access — carol@acme.example")
    assert "Subject carol@acme.example" in text
    assert "Period 2024-12-20 10:00 → 2025-02-02 10:00 UTC" in text
    assert "Audit log export" not in text and "audit_id" not in text
    assert not any(audit_id in text for audit_id in sa.entries["audit_id"].to_list())
    # every action name whole (no mid-token break), the failure shown
    for action in sa.entries["action"].unique().to_list():
        assert action in text, action
    assert "webhook.tested" in text and "failure" in text
    box = reader.pages[0].mediabox
    assert box.width > box.height  # landscape
    assert len(reader.pages) <= 2  # 15 entries
    # the PDF export is recorded, naming her: the next subject access counts it
    again = subject_access(seeded, "carol@acme.example", organization_id=ORG)
    assert again.counts["targeted_accesses"] == 1
    assert again.accesses.row(-1, named=True)["action"] == "audit_log.exported"


def test_a_subject_with_many_entries_gets_a_compact_pdf(
    store: al.AuditStore, tmp_path: Path
) -> None:
    store.append(
        [
            make_entry(
                timestamp=f"2025-02-{1 + i // 24:02d}T{i % 24:02d}:00:00Z",
                action=("webhook.tested", "webhook.updated", "auth.login", "auth.logout")[i % 4],
                details={
                    "before": {"actions": {"url": "https://hooks.partner1.example/in"}},
                    "after": {"actions": {"url": "https://hooks.partner2.example/v2"}},
                },
            )
            for i in range(128)
        ]
    )
    sa = subject_access(store, "jane@company.com")
    assert sa.entries.height == 128
    path = sa.export(store, tmp_path / "jane.pdf", format="pdf", record=False)
    reader, text = _pdf_text(path)
    assert 3 <= len(reader.pages) <= 8  # one line or two per entry, landscape
    assert text.count("webhook.tested") == 32 and text.count("webhook.updated") == 32
    assert "Period 2025-02-01 00:00 → 2025-02-06 07:00 UTC" in text
    assert "actions.url: https://hooks.partner1.example/in →" in text
    assert store.count(action="audit_log.exported") == 0  # record=False


def test_a_subject_not_in_the_trail_still_gets_a_pdf(store: al.AuditStore, tmp_path: Path) -> None:
    sa = subject_access(store, "nobody@company.com")
    path = sa.export(store, tmp_path / "out" / "nobody.pdf", format="pdf")
    assert path.stat().st_size > 1000
    reader, text = _pdf_text(path)
    assert len(reader.pages) == 1
    assert "No entry in the audit trail names nobody@company.com." in text
    assert "Period no entry names them" in text
