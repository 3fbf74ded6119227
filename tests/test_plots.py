"""Charts hold the store's numbers (aggregated in polars)."""

from __future__ import annotations

import auditlens as al
from auditlens import plots
from tests.reports import scenario


def _store() -> al.AuditStore:
    store = al.open_store("sqlite://")
    scenario.seed(store)
    return store


def test_activity_by_category_sums_to_the_entries() -> None:
    df = _store().query(backend="polars")
    fig = plots.activity_by_category(df)
    by_trace = {t.name: sum(t.y) for t in fig.data}
    assert sum(by_trace.values()) == df.height
    assert by_trace["authentication"] == df.filter(df["category"] == "authentication").height


def test_hour_of_week_places_each_entry() -> None:
    df = _store().query(backend="pandas")
    fig = plots.hour_of_week(df)
    z = fig.data[0].z
    assert sum(map(sum, z)) == len(df)
    # carol's six failures: Friday 2025-01-10, 10:00 UTC (plus the four of the other org)
    assert z[4][10] >= 10


def test_failed_logins_and_top_actors() -> None:
    df = _store().query(backend="polars")
    assert sum(plots.failed_logins(df).data[0].y) == 13
    fig = plots.top_actors(df, n=2)
    ok, failed = fig.data
    assert list(failed.y) == list(ok.y)
    assert list(ok.y)[-1] == "carol@acme.example"  # most entries: shown on top
    assert failed.x[-1] == 13


def test_empty_frames_give_empty_charts() -> None:
    df = al.open_store("sqlite://").query(backend="polars")
    assert plots.activity_by_category(df).data == ()
    assert sum(map(sum, plots.hour_of_week(df).data[0].z)) == 0
