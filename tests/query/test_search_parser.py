"""The search syntax parser: structure of parsed queries and errors with positions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import auditlens as al
from auditlens.query import Filter, parse_search
from auditlens.query.filters import parse_duration, parse_when

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def clauses(q: str) -> list[tuple[str, tuple, bool]]:
    return [(c.field, c.values, c.negate) for c in parse_search(q, now=NOW).clauses]


def test_bare_words_do_what_the_user_means() -> None:
    assert clauses("Jane@Company.com") == [("actor", ("jane@company.com",), False)]
    assert clauses("webhook.created") == [("action", ("webhook.created",), False)]
    assert clauses("webhook.*") == [("action", ("webhook.*",), False)]
    assert clauses("failed") == [("word", (("failed", "failure"),), False)]
    assert clauses("example.com") == [("text", ("example.com",), False)]
    assert clauses('"webhook.created"') == [("text", ("webhook.created",), False)]


def test_same_qualifier_ors_and_negation_groups_separately() -> None:
    assert clauses("result:failure -result:success result:partial") == [
        ("result", ("failure", "partial"), False),
        ("result", ("success",), True),
    ]


def test_created_comparisons_and_and_days_or() -> None:
    day = parse_when("2025-01-01")
    end_of_day = parse_when("2025-01-01", end_of_day=True)
    assert clauses("created:>=2025-01-01 created:<2025-02-01") == [
        ("time", ((day, None),), False),
        ("time", ((None, parse_when("2025-02-01") - 1),), False),
    ]
    assert clauses("created:2025-01-01") == [("time", ((day, end_of_day),), False)]
    assert clauses("last:24h") == [("time", ((parse_when("2025-02-28T12:00:00Z"), None),), False)]


@pytest.mark.parametrize(
    ("query", "position", "reason"),
    [
        ('actor:jane "unclosed', 11, "unclosed quote"),
        ("acton:webhook.created", 0, "unknown qualifier 'acton'"),
        ("result:", 7, "needs a value"),
        ("created:2025-13-01", 8, "not a date"),
        ("created:2025-02-01..2025-01-01", 8, "ends before it starts"),
        ("ip:999.0.0.0/8", 3, "not an IP address"),
        ("result:maybe", 7, "not one of"),
        ('name:"x"y', 8, "space after the closing quote"),
        ("a -b:c", 3, "unknown qualifier 'b'"),
        ('foo"bar', 3, "quote must start a term"),
    ],
)
def test_syntax_errors_point_at_the_position(query: str, position: int, reason: str) -> None:
    with pytest.raises(al.QuerySyntaxError) as err:
        parse_search(query, now=NOW)
    assert err.value.position == position
    assert reason in err.value.reason
    assert "^" in str(err.value)


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_a_syntax_error(query: str) -> None:
    try:
        flt = parse_search(query, now=NOW)
    except al.QuerySyntaxError as exc:
        assert 0 <= exc.position <= len(query)
    else:
        assert isinstance(flt, Filter)


@given(st.lists(st.sampled_from(["failure", "success", "partial"]), min_size=1, max_size=3))
def test_result_qualifiers_round_trip(values: list[str]) -> None:
    q = " ".join(f"result:{v}" for v in values)
    assert clauses(q) == [("result", tuple(values), False)]


def test_durations() -> None:
    assert parse_duration("7d").total_seconds() == 7 * 86400
    assert parse_duration("1h30m").total_seconds() == 5400
    with pytest.raises(al.FilterError):
        parse_duration("soon")


# -- limits: a QuerySyntaxError naming the limit, at the offending term ----------------
_MANY_RESULTS = " ".join(["result:failure,success"] * 75) + " x"


@pytest.mark.parametrize(
    ("query", "position", "reason"),
    [
        ("last:99999999999d", 5, "limit of 365,250d"),
        ("last:" + "9" * 400 + "w", 5, "limit of 365,250d"),
        (" ".join(["word"] * 1100), 5 * 100, "too many terms: the limit is 100"),
        ("actor:" + ",".join(f"u{i}@x.com" for i in range(5000)), 6, "the limit is 150"),
        (_MANY_RESULTS, len(_MANY_RESULTS) - 1, "the limit is 150"),  # the 151st value
        ("x" * 5000, 0, "limit of 1,000 characters"),
        ('text:"' + "y" * 1001 + '"', 5, "limit of 1,000 characters"),  # at the quote
        ("(" * 5000 + "a" + ")" * 5000, 0, "limit of 1,000 characters"),
    ],
)
def test_queries_over_a_limit_are_syntax_errors(query: str, position: int, reason: str) -> None:
    with pytest.raises(al.QuerySyntaxError) as err:
        parse_search(query, now=NOW)
    assert reason in err.value.reason
    assert err.value.position == position


def test_queries_at_the_limits_parse() -> None:
    from auditlens.query.filters import MAX_CLAUSES, MAX_VALUE_CHARS, MAX_VALUES

    assert len(parse_search(" ".join(["word"] * MAX_CLAUSES)).clauses) == MAX_CLAUSES
    emails = ",".join(f"u{i}@x.com" for i in range(MAX_VALUES))
    assert len(parse_search("actor:" + emails).clauses[0].values) == MAX_VALUES
    assert parse_search("x" * MAX_VALUE_CHARS).clauses[0].values == ("x" * MAX_VALUE_CHARS,)
    (clause,) = parse_search("last:365250d", now=NOW).clauses
    assert clause.values[0] == (parse_when("1025-02-22T12:00:00Z"), None)


def test_durations_beyond_the_limit_are_filter_errors() -> None:
    with pytest.raises(al.FilterError, match="limit of 365,250d"):
        parse_duration("99999999999d")
    assert parse_duration("52000w").days == 364_000


def test_cli_search_over_a_limit_exits_2_without_a_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from auditlens.cli.app import app

    db = f"sqlite:///{tmp_path / 'audit.db'}"
    for query in ("last:99999999999d", " ".join(["w"] * 1100), "actor:" + "a@b.co," * 5000):
        res = CliRunner().invoke(app, ["search", query, "--db", db, "--no-record"])
        assert res.exit_code == 2, res.output
        assert "limit" in res.stderr
        assert "Traceback" not in res.output + res.stderr
