"""GDPR Art. 15: a subject's entries and the accesses to them (both backends)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import auditlens as al
from auditlens.reports import subject_access
from tests.helpers import ORG
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
