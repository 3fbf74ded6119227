"""The demo generator: determinism, realistic rhythms, and a truthful incidents file."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

import auditlens as al
from auditlens.demo import generate

END = date(2025, 1, 31)


@pytest.fixture(scope="module")
def demo() -> object:
    return generate(orgs=3, days=30, seed=11, end=END)


def test_same_seed_same_data_other_seed_other_data(demo: object) -> None:
    again = generate(orgs=3, days=30, seed=11, end=END)
    assert again.entries == demo.entries  # type: ignore[attr-defined]
    other = generate(orgs=3, days=30, seed=12, end=END)
    assert other.entries != demo.entries  # type: ignore[attr-defined]


def test_every_entry_is_valid_and_in_time_order(demo: object) -> None:
    store = al.open_store("sqlite://")
    store.append(demo.entries)  # type: ignore[attr-defined]
    stamps = [e["timestamp"] for e in demo.entries]  # type: ignore[attr-defined]
    assert stamps == sorted(stamps)
    assert store.count() == len(stamps)


def test_incidents_are_present_with_their_evidence(demo: object) -> None:
    by_id = {e["audit_id"]: e for e in demo.entries}  # type: ignore[attr-defined]
    kinds = Counter(i["kind"] for i in demo.incidents)  # type: ignore[attr-defined]
    assert set(kinds) == {
        "failed_login_spike",
        "brute_force_success",
        "password_spray",
        "off_hours_admin",
        "bulk_deletions",
        "new_ip_and_agent",
        "activity_after_suspension",
        "failure_burst",
        "self_grant",
        "new_principal_admin",
        "defence_evasion",
        "mass_export",
    }
    assert set(kinds.values()) == {3}
    for inc in demo.incidents:  # type: ignore[attr-defined]
        evidence = [by_id[a] for a in inc["audit_ids"]]
        assert all(e["organization_id"] == inc["organization_id"] for e in evidence)
        if inc["kind"] == "brute_force_success":
            assert [e["result"] for e in evidence][-1] == "success"
            assert sum(e["action"] == "auth.failed" for e in evidence) >= 5
        if inc["kind"] == "password_spray":
            assert len({e["actor"]["email"] for e in evidence}) >= 10
            assert len({e["ip_address"] for e in evidence}) == 1
        if inc["kind"] == "bulk_deletions":
            assert all(e["action"].endswith(".deleted") for e in evidence)
        if inc["kind"] == "failure_burst":
            assert len(evidence) > 10 and {e["result"] for e in evidence} == {"failure"}
            assert {e["actor"]["email"] for e in evidence} == {inc["subject"]}
        if inc["kind"] == "self_grant":
            (grant,) = evidence
            assert grant["resource"]["id"] == grant["actor"]["user_id"]
            assert grant["details"]["after"]["role"] == "admin"
        if inc["kind"] == "new_principal_admin":
            assert [e["action"] for e in evidence] == ["user.invited", "user.role_changed"]
            assert {e["resource"]["name"] for e in evidence} == {inc["subject"]}
        if inc["kind"] == "mass_export":
            assert sum(e["details"]["rows"] for e in evidence) > 10_000


def test_weekends_are_quiet_and_suspended_users_stop(demo: object) -> None:
    orgs = {o["organization_id"]: o for o in demo.organizations}  # type: ignore[attr-defined]
    incident_ids = {a for i in demo.incidents for a in i["audit_ids"]}  # type: ignore[attr-defined]
    weekend_user_events = 0
    for e in demo.entries:  # type: ignore[attr-defined]
        if e["actor"]["type"] != "user" or e["audit_id"] in incident_ids:
            continue
        tz = ZoneInfo(
            next(
                u["timezone"]
                for u in orgs[e["organization_id"]]["users"]
                if u["email"] == e["actor"]["email"]
            )
        )
        local = datetime.fromisoformat(e["timestamp"]).astimezone(tz)
        weekend_user_events += local.weekday() >= 5
    assert weekend_user_events == 0
    for inc in demo.incidents:  # type: ignore[attr-defined]
        if inc["kind"] != "activity_after_suspension":
            continue
        suspended_at = inc["window_start"]
        # after the suspension only the injected activity (and other incidents' attempts) remain
        later = [
            e
            for e in demo.entries  # type: ignore[attr-defined]
            if e["actor"]["email"] == inc["subject"]
            and e["timestamp"] > suspended_at
            and e["audit_id"] not in incident_ids - set(inc["audit_ids"])
        ]
        assert {e["audit_id"] for e in later} == set(inc["audit_ids"][1:])
