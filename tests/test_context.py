"""Organization context: stored as audit entries, used by the detectors by default."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import auditlens as al
from auditlens import context
from auditlens.demo import generate
from tests.helpers import make_entry

ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
ORG2 = "7d2f5a8e-1c3b-4e6f-9a0d-2b4c6e8f0a13"


def _act(store: al.AuditStore, email: str, when: datetime, org: str = ORG, **kw: object) -> str:
    e = make_entry(
        actor={"email": email, "type": "user"},
        action=kw.pop("action", "user.role_changed"),
        organization_id=org,
        timestamp=when.isoformat(),
        **kw,
    )
    store.append([e])
    return str(e["audit_id"])


def test_profile_is_an_audit_entry_and_changes_keep_the_rest(store: al.AuditStore) -> None:
    assert store.org_profile(ORG).is_default and store.org_profile(ORG).timezone == "UTC"
    p = store.set_org_profile(
        ORG, name="Acme", timezone="Asia/Tokyo", hours="9:00-18:00", by="ops@acme.example"
    )
    assert (p.name, p.timezone, p.hours, p.workdays) == (
        "Acme",
        "Asia/Tokyo",
        "09:00-18:00",
        ("mon", "tue", "wed", "thu", "fri"),
    )
    p2 = store.set_org_profile(ORG, workdays="sun-thu")
    assert p2.timezone == "Asia/Tokyo" and p2.workdays == ("mon", "tue", "wed", "thu", "sun")
    assert store.set_org_profile(ORG, timezone="Asia/Tokyo").audit_id == p2.audit_id  # no-op
    changes = store.entries(action="organization.profile_changed", order="asc")
    assert [c["audit_id"] for c in changes] == [p.audit_id, p2.audit_id]
    assert changes[0]["actor"]["email"] == "ops@acme.example"
    assert changes[1]["details"]["before"]["workdays"] == ["mon", "tue", "wed", "thu", "fri"]
    assert changes[1]["details"]["profile"]["workdays"] == ["mon", "tue", "wed", "thu", "sun"]
    # the context is chained like everything else
    assert al.verify(store).ok


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone 'Mars/Olympus'"),
        ({"hours": "18:00-09:00"}, "the start must be before the end"),
        ({"hours": "nine to five"}, "expected HH:MM-HH:MM"),
        ({"workdays": "mon-funday"}, "is not a day or a range of days"),
    ],
)
def test_bad_profile_is_refused_and_nothing_written(
    store: al.AuditStore, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(al.ContextError, match=message):
        store.set_org_profile(ORG, **kwargs)  # type: ignore[arg-type]
    assert store.count() == 0


def test_people_replace_records_each_change(store: al.AuditStore) -> None:
    first = store.set_people(
        ORG,
        [
            {"email": "Lena.Kim@acme.example", "timezone": "Asia/Tokyo", "role": "admin"},
            {"email": "bo@acme.example", "timezone": "Europe/Berlin"},
        ],
    )
    assert (first.added, first.changed, first.removed) == (2, 0, 0)
    second = store.set_people(
        ORG,
        [
            {"email": "lena.kim@acme.example", "timezone": "Asia/Tokyo", "role": "owner"},
            {"email": "cy@acme.example"},
        ],
    )
    assert (second.added, second.changed, second.removed, second.unchanged) == (1, 1, 1, 0)
    people = store.people(ORG)
    assert [(p.email, p.timezone, p.role) for p in people] == [
        ("cy@acme.example", None, None),
        ("lena.kim@acme.example", "Asia/Tokyo", "owner"),
    ]
    assert store.people(ORG2) == []
    assert store.count(actions=["organization.person_*"]) == 5
    with pytest.raises(al.ContextError, match=r"row 2: email: bo@x\.io is listed twice"):
        store.set_people(ORG, [{"email": "bo@x.io"}, {"email": "BO@x.io"}])
    with pytest.raises(al.ContextError, match="row 1: timezone: unknown time zone"):
        store.set_people(ORG, [{"email": "bo@x.io", "timezone": "Nowhere"}])
    assert store.count(actions=["organization.person_*"]) == 5


def test_people_file_errors_name_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "people.csv"
    good.write_text("email,timezone,name\nlena@acme.example,Asia/Tokyo,Lena Kim\n")
    assert context.read_people_file(good) == [
        {"email": "lena@acme.example", "timezone": "Asia/Tokyo", "name": "Lena Kim"}
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("email,timezone\na@x.io,UTC\nb@x.io,Mars/Base\n")
    with pytest.raises(al.ContextError, match=r"bad.csv:3: timezone: unknown time zone"):
        context.read_people_file(bad)
    js = tmp_path / "p.json"
    js.write_text(json.dumps([{"email": "a@x.io"}, {"email": "nope"}]))
    with pytest.raises(al.ContextError, match=r"p.json: item 2: email: 'nope'"):
        context.read_people_file(js)
    noemail = tmp_path / "n.csv"
    noemail.write_text("mail,timezone\n")
    with pytest.raises(al.ContextError, match=r"n.csv:1: the header needs an 'email' column"):
        context.read_people_file(noemail)


def test_a_person_in_tokyo_is_not_working_late(store: al.AuditStore) -> None:
    """Lena works 09:00–18:00 in Tokyo: in UTC that is 00:00–09:00, all 'off hours'."""
    for day in (6, 7, 8):  # Monday to Wednesday, 10:00 and 17:00 Tokyo
        _act(store, "lena.kim@acme.example", datetime(2025, 1, day, 1, 0, tzinfo=UTC))
        _act(store, "lena.kim@acme.example", datetime(2025, 1, day, 8, 0, tzinfo=UTC))
    night = _act(store, "lena.kim@acme.example", datetime(2025, 1, 8, 17, 40, tzinfo=UTC))
    assert store.detect("off_hours").height == 3  # without context: every day, in UTC
    store.set_org_profile(ORG, timezone="Europe/London", hours="09:00-18:00")
    store.set_people(ORG, [{"email": "lena.kim@acme.example", "timezone": "Asia/Tokyo"}])
    found = store.detect("off_hours", actor="lena.kim@acme.example")
    assert found.height == 1  # 02:40 Tokyo on Thursday
    assert found["audit_ids"].to_list() == [[night]]
    details = json.loads(found["details"][0])
    assert details["timezone"] == "Asia/Tokyo" and details["timezone_source"] == "person"
    assert details["business_hours"] == "09:00-18:00"
    # an explicit override still wins over the stored context
    over = store.detect(
        "off_hours",
        actor="lena.kim@acme.example",
        config={"timezones": {"lena.kim@acme.example": "UTC"}},
    )
    assert json.loads(over["details"][0])["timezone_source"] == "override"
    # and context can be switched off
    assert store.detect("off_hours", context=False, actor="lena.kim@acme.example").height == 3


def test_workdays_come_from_the_organization(store: al.AuditStore) -> None:
    sunday = datetime(2025, 1, 5, 10, 0, tzinfo=UTC)
    friday = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
    _act(store, "a@acme.example", sunday)
    _act(store, "a@acme.example", friday)
    _act(store, "b@other.example", sunday, org=ORG2)
    store.set_org_profile(ORG, workdays="sun-thu")
    found = store.detect("off_hours")
    days = sorted((r["organization_id"], r["window_start"].date()) for r in found.to_dicts())
    assert days == [(ORG, date(2025, 1, 10)), (ORG2, date(2025, 1, 5))]


def test_one_email_in_two_organizations_keeps_each_time_zone(store: al.AuditStore) -> None:
    when = datetime(2025, 1, 7, 23, 0, tzinfo=UTC)  # Tuesday: 08:00 Wednesday in Tokyo
    _act(store, "sam@x.example", when)
    _act(store, "sam@x.example", when, org=ORG2)
    store.set_people(ORG, [{"email": "sam@x.example", "timezone": "Asia/Tokyo"}])
    found = store.detect("off_hours")
    assert found["organization_id"].to_list() == [ORG2]


def test_demo_off_hours_findings_are_the_injected_ones(store: al.AuditStore) -> None:
    demo = generate(orgs=3, days=30, seed=7, end=date(2025, 1, 31))
    store.append(demo.entries)
    profiles = {
        o.organization_id: o
        for o in (store.org_profile(x["organization_id"]) for x in demo.organizations)
    }
    assert {p.timezone for p in profiles.values()} == {o["timezone"] for o in demo.organizations}
    found = store.detect("off_hours")
    truth = [set(i["audit_ids"]) for i in demo.incidents if "off_hours" in i["detectors"]]
    evidence = [set(ids) for ids in found["audit_ids"].to_list()]
    precision = sum(any(e & t for t in truth) for e in evidence) / len(evidence)
    recall = sum(any(e & t for e in evidence) for t in truth) / len(truth)
    assert precision >= 0.9 and recall == 1.0
    # without the stored context (UTC for everyone) the same data drowns in false alarms
    blind = store.detect("off_hours", context=False)
    assert blind.height > 3 * found.height
