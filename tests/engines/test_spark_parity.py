"""The PySpark port of the detectors finds exactly what the polars detectors find.

The same entries go through :mod:`auditlens.detect` (polars) and through
:func:`auditlens.engines.spark.detect` on each engine of ``conftest.engine``: SQLFrame's
DuckDB session (the PySpark DataFrame API without a JVM) and Apache Spark ``local[2]``; the
findings frames must be equal column by column, sorted by ``finding_id``. Entries come from
hypothesis (timestamp ties, exact window edges, null addresses and actors, a DST change, one
email in several organizations) and from the demo. Each generated test runs its hypothesis
examples inside the test (``engine.examples``): fewer on Spark, where each is a few jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import auditlens as al
from auditlens import detect as polars_detect
from auditlens.demo import generate
from auditlens.engines import spark
from auditlens.errors import DetectorError
from tests.engines.conftest import Engine

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    # pyspark 4.3 warns once that it has not been tested with pandas 3 (no pandas path is used)
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

#: the night the EU clocks went forward (2025-03-30 01:00 UTC): a DST change inside the data
BASE = datetime(2025, 3, 30, 0, 58, tzinfo=UTC)


def assert_parity(engine: Engine, entries: pl.DataFrame, name: str, **params: Any) -> int:
    expected = polars_detect.run(name, entries, **params).sort("finding_id")
    got = engine.findings(entries, name, params)
    assert_frame_equal(got, expected)
    return expected.height


# -- generated entries -------------------------------------------------------------------

_WINDOW_MS = 60_000  # the window the generated tests use ("1m")
_offsets = st.builds(
    lambda k, edge: max(0, k * 15_000 + edge),
    st.integers(0, 8),
    st.sampled_from([0, 0, 0, 1, -1]),  # exact window edges, one ms inside and outside
)
_row = st.fixed_dictionaries(
    {
        "offset": _offsets,
        "organization_id": st.sampled_from(["org-a", "org-b"]),
        # one email in several organizations; null actors fall back to the user id
        "actor_email": st.sampled_from(["ann@x.io", "bob@x.io", "cy@x.io", None]),
        "actor_user_id": st.sampled_from(["u1", None]),
        "ip_address": st.sampled_from(["10.0.0.1", "10.0.0.2", "2001:db8::1", None]),
        "action": st.sampled_from(
            ["auth.failed"] * 4
            + ["auth.login", "doc.deleted", "user.removed", "api.call", "report.Export"]
            + ["s3.get_object", "s3.get_object_acl"]
        ),
        "result": st.sampled_from(["failure", "success"]),
        "details": st.sampled_from(
            [
                None,
                "{}",
                '{"error_code":"E1"}',
                '{"errorCode":"E2"}',
                '{"reason":"no"}',
                "oops",
                '{"rows":600}',
                '{"row_count":"250"}',
                '{"rows":12.5}',
                '{"count":-3}',
            ]
        ),
    }
)


def _frame(rows: list[dict[str, Any]], with_seq: bool) -> pl.DataFrame:
    out = pl.DataFrame(
        {
            "audit_id": [f"e{i:03d}" for i in range(len(rows))],
            "timestamp": [BASE + timedelta(milliseconds=r["offset"]) for r in rows],
            **{k: [r[k] for r in rows] for k in rows[0] if k != "offset"},
        },
        schema_overrides={"timestamp": pl.Datetime("ms", "UTC")},
    )
    text = ("actor_email", "actor_user_id", "ip_address", "details", "resource_name")
    out = out.with_columns(pl.col(c).cast(pl.Utf8) for c in text if c in out.columns)
    if with_seq:  # seq in append order, which need not be time order
        out = out.with_columns(pl.int_range(1, pl.len() + 1).over("organization_id").alias("seq"))
    return out


entries = st.builds(_frame, st.lists(_row, min_size=6, max_size=40), st.booleans())

_evasion_row = st.fixed_dictionaries(
    {
        "offset": st.integers(0, 4).map(lambda k: k * 1_800_000),  # episodes of 1 h
        "organization_id": st.sampled_from(["org-a", "org-b"]),
        "actor_email": st.sampled_from(["ann@x.io", "bob@x.io", None]),
        "actor_user_id": st.sampled_from(["u1", None]),
        "action": st.sampled_from(
            [
                "cloudtrail.stop_logging",
                "iam.deactivate_mfa_device",
                "auth.mfa_reset",
                "organization.settings_updated",
                "webhook.deleted",
                "webhook.updated",
                "cloudwatch.delete_alarms",
                "doc.viewed",
            ]
        ),
        "result": st.sampled_from(["failure", "success", "success"]),
        "resource_name": st.sampled_from(["pagerduty-hook", "build-hook", None]),
        "details": st.sampled_from(
            [
                None,
                "{}",
                '{"setting":"audit_log_retention","after":"30d"}',
                '{"setting":"require_mfa","after":{"value":"off"}}',
                '{"setting":"require_mfa","after":"false"}',
                '{"after":{"active":false},"before":{"url":"https://siem.example/hook"}}',
                '{"after":{"enabled":"no"}}',
                "not json",
            ]
        ),
    }
)
evasion_entries = st.builds(_frame, st.lists(_evasion_row, min_size=1, max_size=25), st.booleans())


def check(engine: Engine, examples: int, **strategies: Any) -> Callable[..., Any]:
    """Run the decorated check on ``engine.examples(examples)`` generated examples."""

    def run(fn: Callable[..., None]) -> Callable[..., None]:
        explore = settings(max_examples=engine.examples(examples), deadline=None, database=None)
        explore(given(**strategies)(fn))()
        return fn

    return run


#: examples on SQLFrame; the detectors whose plans are deep (two subjects, joins) take ~1–2 s
#: an example there, so they get fewer
_FAST, _SLOW = 25, 15


def test_failed_login_spikes(engine: Engine) -> None:
    @check(
        engine,
        _FAST,
        frame=entries,
        threshold=st.integers(1, 3),
        by=st.sampled_from(["actor", "ip", "organization"]),
    )
    def _(frame: pl.DataFrame, threshold: int, by: str) -> None:
        assert_parity(engine, frame, "failed_login_spikes", threshold=threshold, window="1m", by=by)


def test_bulk_deletions(engine: Engine) -> None:
    @check(engine, _FAST, frame=entries, threshold=st.integers(1, 3))
    def _(frame: pl.DataFrame, threshold: int) -> None:
        assert_parity(engine, frame, "bulk_deletions", threshold=threshold, window="1m")


def test_password_spray(engine: Engine) -> None:
    @check(engine, _FAST, frame=entries, accounts=st.integers(1, 3))
    def _(frame: pl.DataFrame, accounts: int) -> None:
        assert_parity(engine, frame, "password_spray", accounts=accounts, window="1m")


def test_brute_force_success(engine: Engine) -> None:
    @check(
        engine,
        _SLOW,
        frame=entries,
        failures=st.integers(1, 3),
        by=st.sampled_from([("actor", "ip"), ("ip", "actor"), "ip"]),
    )
    def _(frame: pl.DataFrame, failures: int, by: tuple[str, ...] | str) -> None:
        assert_parity(engine, frame, "brute_force_success", failures=failures, window="1m", by=by)


def test_failure_bursts(engine: Engine) -> None:
    @check(
        engine,
        _SLOW,
        frame=entries,
        threshold=st.integers(1, 3),
        by=st.sampled_from([("actor", "ip"), "ip"]),
    )
    def _(frame: pl.DataFrame, threshold: int, by: tuple[str, ...] | str) -> None:
        assert_parity(
            engine, frame, "failure_bursts", threshold=threshold, window="1m", by=by, exclude=()
        )


def test_mass_export(engine: Engine) -> None:
    @check(engine, _FAST, frame=entries, rows=st.integers(1, 1000), exports=st.integers(1, 3))
    def _(frame: pl.DataFrame, rows: int, exports: int) -> None:
        assert_parity(engine, frame, "mass_export", rows=rows, exports=exports, window="1m")


def test_defence_evasion(engine: Engine) -> None:
    @check(engine, _FAST, frame=evasion_entries, window=st.sampled_from(["1h", "30m"]))
    def _(frame: pl.DataFrame, window: str) -> None:
        assert_parity(engine, frame, "defence_evasion", window=window)


@pytest.mark.parametrize("window", ["1m", "90s", "2h", "1d"])
def test_mass_export_durations_in_words(engine: Engine, window: str) -> None:
    """The summary's durations ("2 minutes", "90 seconds") are spelled as polars spells them."""
    offsets = [0, 90_000, 120_000, 3_600_000]
    frame = pl.DataFrame(
        {
            "audit_id": [f"x{i}" for i in range(4)],
            "timestamp": [BASE + timedelta(milliseconds=o) for o in offsets],
            "action": ["report.export"] * 4,
            "result": ["success"] * 4,
            "organization_id": ["org-a"] * 4,
            "actor_email": ["ann@x.io"] * 4,
            "details": ['{"rows":5000}'] * 4,
        }
    )
    assert assert_parity(engine, frame, "mass_export", rows=4000, window=window) > 0


def test_window_edges_and_ties(engine: Engine) -> None:
    """(t − w, t]: an entry exactly one window earlier is out, ties at t are all in."""
    offsets = [0, _WINDOW_MS, _WINDOW_MS, _WINDOW_MS + 1]
    frame = pl.DataFrame(
        {
            "audit_id": ["d", "c", "b", "a"],
            "timestamp": [BASE + timedelta(milliseconds=o) for o in offsets],
            "action": ["auth.failed"] * 4,
            "result": ["failure"] * 4,
            "organization_id": ["org-a"] * 4,
            "actor_email": ["ann@x.io"] * 4,
            "seq": [1, 3, 2, 4],
        }
    )
    got = engine.findings(frame, "failed_login_spikes", {"threshold": 2, "window": "1m"})
    assert got["audit_ids"].to_list() == [["b", "c", "a"]]  # time, then seq
    assert_parity(engine, frame, "failed_login_spikes", threshold=2, window="1m")


# -- the demo ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_entries() -> pl.DataFrame:
    store = al.open_store("sqlite://")
    store.append(generate(orgs=2, days=14, seed=3, end=date(2025, 1, 31)).entries)
    frame: pl.DataFrame = store.query(backend="polars")
    return frame


@pytest.mark.parametrize("name", list(spark.PORTED))
def test_demo_parity(engine: Engine, demo_entries: pl.DataFrame, name: str) -> None:
    assert assert_parity(engine, demo_entries, name) > 0  # the demo injects every kind


def test_detect_all_runs_every_ported_detector(engine: Engine, demo_entries: pl.DataFrame) -> None:
    if engine.name == "pyspark":  # 25 s of CI: test_spark_lake runs "all" on Spark through the CLI
        pytest.skip("on Spark: test_spark_lake's CLI test runs every ported detector")
    got = spark.to_polars(spark.detect(engine.session, engine.frame(demo_entries)))
    assert set(got["detector"]) == set(spark.PORTED)


def test_unported_detector_is_refused(engine: Engine, demo_entries: pl.DataFrame) -> None:
    with pytest.raises(DetectorError, match="not available on spark"):
        spark.detect(engine.session, engine.frame(demo_entries), ["off_hours"])
    with pytest.raises(DetectorError, match="group_by_network"):
        spark.detect(
            engine.session,
            engine.frame(demo_entries),
            ["password_spray"],
            password_spray={"group_by_network": True},
        )
