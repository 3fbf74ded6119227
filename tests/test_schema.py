"""Validation of the interchange shape: precise errors, normalisation, round trip."""

from __future__ import annotations

from typing import Any

import pytest

import auditlens as al
from auditlens.schema import (
    ACTIONS,
    category_of,
    format_timestamp,
    normalize_entries,
    normalize_entry,
    parse_timestamp,
    row_to_entry,
)
from tests.helpers import make_entry


def _problems(entry: dict[str, Any], **kwargs: object) -> dict[str, str]:
    with pytest.raises(al.ValidationError) as err:
        normalize_entry(entry, index=4, **kwargs)  # type: ignore[arg-type]
    return {p.field: p.message for p in err.value.problems}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"audit_id": "not-a-uuid"}, "audit_id", "not a UUID"),
        ({"organization_id": None}, "organization_id", "is required"),
        ({"organization_id": "123"}, "organization_id", "not a UUID"),
        ({"application_id": "app-1"}, "application_id", "not a UUID"),
        ({"actor.user_id": "jane@company.com"}, "actor.user_id", "put it in actor.email"),
        ({"actor.user_id": "x" * 257}, "actor.user_id", "limit is 256"),
        ({"actor.user_id": " root"}, "actor.user_id", "start/end with spaces"),
        ({"actor.user_id": 12}, "actor.user_id", "must be a string"),
        ({"actor.email": "jane at company"}, "actor.email", "not an email"),
        ({"actor.type": "robot"}, "actor.type", "must be one of"),
        ({"actor": "jane"}, "actor", "must be an object"),
        ({"timestamp": "2025-01-20T10:30:00"}, "timestamp", "no time zone"),
        ({"timestamp": "yesterday"}, "timestamp", "not an ISO 8601"),
        ({"timestamp": 1737369000}, "timestamp", "expected an ISO 8601 string"),
        ({"ip_address": "300.1.1.1"}, "ip_address", "not an IPv4 or IPv6"),
        ({"result": "ok"}, "result", "success, failure, partial"),
        ({"result": None}, "result", "is required"),
        ({"action": "Webhook Created"}, "action", "category.verb"),
        ({"action": ""}, "action", "must not be empty"),
        ({"details": ["a"]}, "details", "must be a JSON object"),
        ({"details": {"x": {1, 2}}}, "details", "not JSON-serialisable"),
        ({"resource": {"id": "wh-1"}}, "resource.type", "is required"),
        ({"resource": {"type": "webhook", "colour": "red"}}, "resource.colour", "unknown field"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"actor": {"type": "user", "email": "j@x.io", "role": "admin"}}, "actor.role", "unknown"),
        ({"actor": {"type": "user"}}, "actor", "needs a user_id or an email"),
        ({"user_agent": "x" * 5000}, "user_agent", "limit is 2048"),
    ],
)
def test_each_kind_of_bad_field_is_named(
    overrides: dict[str, Any], field: str, message: str
) -> None:
    problems = _problems(make_entry(**overrides))
    assert field in problems
    assert message in problems[field]


@pytest.mark.parametrize(
    ("user_id", "stored"),
    [
        ("arn:aws:iam::123456789012:user/Alice", "arn:aws:iam::123456789012:user/Alice"),
        ("00u1a2b3c4DEF5g6h7", "00u1a2b3c4DEF5g6h7"),
        ("sshd:web-1:root", "sshd:web-1:root"),
        ("sshd:web-1:admin@example.com", "sshd:web-1:admin@example.com"),  # a sprayed name
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0a1b/jane@company.com",
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0a1b/jane@company.com",
        ),
        ("2B6F0CC9-4B8A-4BD8-9D5E-0A1F6F2F4A11", "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"),
    ],
)
def test_actor_user_id_is_any_stable_non_email_id(user_id: str, stored: str) -> None:
    entry = make_entry(**{"actor": {"type": "role", "user_id": user_id}})
    row = normalize_entry(entry)
    assert (row["actor_user_id"], row["actor_type"]) == (stored, "role")
    assert row_to_entry(row)["actor"] == {"user_id": stored, "email": None, "type": "role"}


def test_oversized_details_respects_the_configured_limit() -> None:
    entry = make_entry(details={"blob": "x" * 70_000})
    assert "limit is 65,536" in _problems(entry)["details"]
    assert normalize_entry(entry, max_details_bytes=100_000)["details"].startswith('{"blob"')
    assert (
        "limit is 100"
        in _problems(make_entry(details={"a": "b" * 200}), max_details_bytes=100)["details"]
    )


def test_strict_actions_refuses_actions_outside_the_catalogue() -> None:
    entry = make_entry(action="report.generated")
    assert normalize_entry(entry)["category"] == "report"
    assert "not in the action catalogue" in _problems(entry, strict_actions=True)["action"]


def test_error_message_says_where() -> None:
    with pytest.raises(al.ValidationError) as err:
        normalize_entries([make_entry(), make_entry(result="nope", ip_address="x")])
    text = str(err.value)
    assert "entry 1, field 'result'" in text
    assert "entry 1, field 'ip_address'" in text
    assert "nothing was appended" in text
    assert isinstance(err.value, ValueError)


def test_normalisation() -> None:
    row = normalize_entry(
        make_entry(
            audit_id="ABCDEF01-2345-4678-9ABC-DEF012345678",
            ip_address="2001:DB8:0:0::1",
            timestamp="2025-01-20T11:30:00.123999+01:00",
            details={"b": 1, "a": {"z": True, "y": None}},
        )
    )
    assert row["audit_id"] == "abcdef01-2345-4678-9abc-def012345678"
    assert row["ip_address"] == "2001:db8::1"
    assert row["ts"] == parse_timestamp("2025-01-20T10:30:00.123Z")  # UTC, ms truncated
    assert row["details"] == '{"a":{"y":null,"z":true},"b":1}'


def test_round_trip_of_the_interchange_shape() -> None:
    entry = make_entry()
    back = row_to_entry(normalize_entry(entry))
    assert back == entry


def test_catalogue_and_categories() -> None:
    assert len(ACTIONS) >= 24
    assert ACTIONS["user.role_changed"].category == "user_management"
    assert ACTIONS["webhook.deleted"].sensitive
    assert {a.category for a in ACTIONS.values()} <= set(al.CATEGORIES)
    assert category_of("organization.plan_changed") == "organization"


def test_timestamp_format_is_millisecond_utc() -> None:
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert (
        format_timestamp(parse_timestamp("2024-02-29T23:59:59.999Z")) == "2024-02-29T23:59:59.999Z"
    )


@pytest.mark.parametrize(
    "timestamp",
    [
        "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "9999-12-31T23:59:59.999-00:01",
    ],
)
def test_timestamp_outside_years_1_to_9999_in_utc_is_refused(timestamp: str) -> None:
    problems = _problems(make_entry(timestamp=timestamp))
    assert "outside the supported range" in problems["timestamp"]
    assert timestamp in problems["timestamp"]


def test_aware_datetime_outside_the_range_is_refused() -> None:
    from datetime import datetime, timedelta, timezone

    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    with pytest.raises(ValueError, match="outside the supported range"):
        parse_timestamp(late)


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"])
def test_extreme_timestamps_inside_the_range_round_trip(timestamp: str) -> None:
    row = normalize_entry(make_entry(timestamp=timestamp))
    assert format_timestamp(row["ts"]) == timestamp  # four-digit year, read back exactly
    assert row_to_entry(row)["timestamp"] == timestamp


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user_agent": "Mozilla\x00/5.0"}, "user_agent"),
        ({"actor.email": "jane\x00@company.com"}, "actor.email"),
        ({"resource": {"type": "webhook", "id": "wh\x00", "name": "x"}}, "resource.id"),
        ({"resource": {"type": "webhook", "name": "\x00"}}, "resource.name"),
        ({"action": "auth.login\x00"}, "action"),
        ({"result": "success\x00"}, "result"),
        ({"details": {"reason": "a\x00b"}}, "details.reason"),
        ({"details": {"a": {"b": ["ok", "x\x00"]}}}, "details.a.b[1]"),
        ({"details": {"ke\x00y": 1}}, "details"),
    ],
)
def test_nul_character_in_any_text_is_refused_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    problems = _problems(make_entry(**overrides))
    assert field in problems, problems
    assert "NUL" in problems[field]


def test_escaped_nul_text_that_is_not_a_nul_is_accepted() -> None:
    row = normalize_entry(make_entry(details={"note": "\\u0000 is how JSON writes NUL"}))
    assert row_to_entry(row)["details"] == {"note": "\\u0000 is how JSON writes NUL"}


def test_organization_checks_are_the_same_on_every_entry_that_repeats_them() -> None:
    # organization and application ids are checked through a cache: every entry still gets
    # its own verdict, lower-cased when valid and the same problem when not
    org = "2B6F0CC9-4B8A-4BD8-9D5E-0A1F6F2F4A11"
    rows = normalize_entries([make_entry(organization_id=org, application_id=org)] * 3)
    assert {(r["organization_id"], r["application_id"]) for r in rows} == {(org.lower(),) * 2}
    for _ in range(2):
        assert "not a UUID" in _problems(make_entry(organization_id="org-1"))["organization_id"]


def test_any_mapping_is_an_entry_not_only_a_dict() -> None:
    from types import MappingProxyType  # lazy: only this test needs it

    entry = make_entry(details={"k": "v"})
    proxied = MappingProxyType(
        {
            **entry,
            "actor": MappingProxyType(entry["actor"]),
            "resource": MappingProxyType(entry["resource"]),
        }
    )
    assert normalize_entry(proxied, now_ms=0) == normalize_entry(entry, now_ms=0)
    problems = _problems(dict(proxied, colour="red", actor=MappingProxyType({"type": "x", "a": 1})))
    assert {"colour", "actor.a", "actor.type"} <= set(problems)
