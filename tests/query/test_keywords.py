"""``FilterKeywords`` (the typed ``**filters`` of every read) names exactly the keyword
filters the query layer accepts, with value types it accepts."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import get_type_hints

import pytest

import auditlens as al
from auditlens.query.filters import FILTER_KEYWORDS, Filter
from auditlens.query.keywords import FilterKeywords


def test_keys_are_the_filter_keywords() -> None:
    assert set(FilterKeywords.__annotations__) == set(FILTER_KEYWORDS)
    assert FilterKeywords.__required_keys__ == frozenset()  # every filter is optional


def test_every_key_has_a_resolvable_value_type() -> None:
    hints = get_type_hints(FilterKeywords)
    assert set(hints) == set(FILTER_KEYWORDS)


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("start", datetime(2025, 1, 1)),
        ("start", date(2025, 1, 1)),
        ("end", "2025-01-31"),
        ("last", timedelta(days=7)),
        ("last", "7d"),
        ("actor", ["jane@company.com", "ops@company.com"]),
        ("ip", "10.0.0.0/8"),
        ("text", "Production Webhook"),
    ],
)
def test_values_of_the_declared_types_are_accepted(keyword: str, value: object) -> None:
    assert isinstance(Filter.from_kwargs(**{keyword: value}), Filter)  # type: ignore[arg-type]


def test_a_typed_filter_mapping_reaches_the_store() -> None:
    wanted: FilterKeywords = {"actor": "jane@company.com", "last": "7d"}
    with al.open_store("sqlite://") as store:
        assert store.count(**wanted) == 0
