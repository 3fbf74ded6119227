"""Okta System Log import: outcomes, actors without Okta ids, rejects."""

from __future__ import annotations

from pathlib import Path

import pytest

import auditlens as al
from auditlens.errors import IngestError
from auditlens.importers import import_files, okta
from auditlens.importers.entries import organization_for

DATA = Path(__file__).parent / "data" / "okta"
ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"


def test_outcomes_and_actors_map_as_documented() -> None:
    recs = list(okta.records(DATA, organization_id=ORG))
    good = [r.value for r in recs if isinstance(r.value, dict)]
    assert [(e["action"], e["result"]) for e in good] == [
        ("auth.failed", "failure"),  # user.session.start FAILURE
        ("auth.failed", "failure"),
        ("policy.evaluate_sign_on", "failure"),  # DENY
        ("auth.login", "success"),
    ]
    assert good[0]["actor"] == {
        "user_id": "00uFIXTURE01",
        "email": "carol@fixture.example",
        "type": "user",
    }
    # a sign-in as a name Okta does not know: id "unknown" is not an identity
    assert good[1]["actor"] == {"user_id": "svc-backup", "email": None, "type": "user"}
    assert good[0]["details"]["eventType"] == "user.session.start"
    assert good[0]["details"]["outcome"]["reason"] == "INVALID_CREDENTIALS"
    bad = [(r.line, str(r.value)) for r in recs if isinstance(r.value, Exception)]
    assert [line for line, _ in bad] == [130, 140]
    assert "uuid is missing" in bad[0][1]
    assert "'MAYBE' is not one Okta documents" in bad[1][1]


def test_the_organization_comes_from_org_or_the_okta_domain() -> None:
    with pytest.raises(IngestError, match="pass --org"):
        list(okta.records(DATA))
    first = next(okta.read(DATA / "page1.json", okta_org="Fixture.okta.com"))
    assert first["organization_id"] == organization_for("okta-org", "fixture.okta.com")


def test_import_and_reimport(store: al.AuditStore) -> None:
    report = import_files(store, "okta", [DATA], organization=ORG)
    assert (report.appended, len(report.rejected)) == (4, 2)
    assert all(r.file and r.file.endswith("page1.json") for r in report.rejected)
    again = import_files(store, "okta", [DATA], organization=ORG)
    assert (again.appended, again.duplicates) == (0, 4)
    assert store.count(actor="00ufixture01") == 3  # an Okta id, in any case
