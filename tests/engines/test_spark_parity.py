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

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import auditlens as al
from auditlens import context
from auditlens import detect as polars_detect
from auditlens.demo import generate
from auditlens.engines import spark
from auditlens.errors import DetectorError, FilterError
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
        explore = settings(
            max_examples=engine.examples(examples),
            deadline=None,
            database=None,
            # generation is cheap; a busy machine (CI's two workers) must not fail the check
            suppress_health_check=[HealthCheck.too_slow],
        )
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


def test_failure_bursts_names_only_the_top_three_actions(engine: Engine) -> None:
    """A burst of four different failed actions names three of them in its summary.

    The example hypothesis found (``--hypothesis-seed=1``): SQLFrame 4.10 writes Spark's
    ``slice(x, 1, 3)`` as DuckDB's ``list_slice(x, 1, 4)``, whose end is inclusive, and the
    summary of the burst of 2001:db8::1 named all four actions.
    """
    v6 = "2001:db8::1"
    fields = ("offset", "organization_id", "actor_email", "actor_user_id", "ip_address")
    fields += ("action", "result", "details")
    rows = [
        (105_000, "org-b", "ann@x.io", "u1", v6, "auth.failed", "failure", None),
        *[(0, "org-a", "ann@x.io", "u1", "10.0.0.1", "auth.failed", "failure", None)] * 3,
        (60_000, "org-b", "ann@x.io", "u1", v6, "report.Export", "failure", None),
        (60_000, "org-b", "ann@x.io", "u1", v6, "user.removed", "failure", None),
        (105_000, "org-b", "ann@x.io", "u1", v6, "s3.get_object", "failure", None),
        (0, "org-a", "ann@x.io", "u1", "10.0.0.1", "auth.failed", "failure", None),
        (105_000, "org-a", "ann@x.io", "u1", None, "auth.failed", "failure", '{"count":-3}'),
        (75_000, "org-b", "bob@x.io", "u1", v6, "s3.get_object", "success", '{"reason":"no"}'),
        (120_000, "org-a", "cy@x.io", None, "10.0.0.2", "doc.deleted", "success", None),
        (45_000, "org-b", "bob@x.io", "u1", "10.0.0.2", "auth.failed", "success", "oops"),
    ]
    frame = _frame([dict(zip(fields, r, strict=True)) for r in rows], with_seq=False)
    top = "(auth.failed ×1, report.Export ×1, s3.get_object ×1; more than 3 in 1 minute)"
    for by, told in (("ip", f"ip {v6}"), (("actor", "ip"), "actor ann@x.io")):
        params = {"threshold": 3, "window": "1m", "by": by, "exclude": ()}
        assert assert_parity(engine, frame, "failure_bursts", **params) == 2
        got = engine.findings(frame, "failure_bursts", params)
        summary = got.filter(pl.col("organization_id") == "org-b")["summary"].to_list()
        assert summary == [f"4 failed calls by {told} within 45 s {top}"]


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


@pytest.mark.parametrize(
    ("name", "param"),
    [
        ("mass_export", "actions"),
        ("defence_evasion", "mfa_actions"),
        ("privilege_escalation", "grant_actions"),
    ],
)
def test_a_broken_action_pattern_names_its_parameter(
    engine: Engine, demo_entries: pl.DataFrame, name: str, param: str
) -> None:
    """Patterns are matched against the distinct actions (one job): a typo is refused, by
    name, before any job runs — as the polars detector refuses it."""
    entries = engine.frame(demo_entries)
    with pytest.raises(FilterError, match=f"{param} is not a valid regular expression"):
        spark.detect(engine.session, entries, [name], **{name: {param: "export("}})
    with pytest.raises(FilterError, match=f"{param} is not a valid regular expression"):
        polars_detect.run(name, demo_entries, **{param: "export("})


def _exports(actions: list[str], prefix: str) -> pl.DataFrame:
    """One actor's successful entries ten seconds apart, each with 900 rows in its details."""
    t0 = datetime(2025, 1, 6, 9, tzinfo=UTC)
    n = len(actions)
    return pl.DataFrame(
        {
            "audit_id": [f"{prefix}{i:02d}" for i in range(n)],
            "timestamp": [t0 + timedelta(seconds=10 * i) for i in range(n)],
            "action": actions,
            "result": ["success"] * n,
            "organization_id": ["org-a"] * n,
            "actor_email": ["ann@x.io"] * n,
            "details": ['{"rows": 900}'] * n,
        },
        schema_overrides={"timestamp": pl.Datetime("ms", "UTC")},
    )


def test_action_patterns_match_as_polars_matches(engine: Engine) -> None:
    """A pattern only a case-insensitive, unanchored match finds (``(?i)`` in the middle of
    an action), and one that matches nothing: same findings as polars, none invented."""
    entries = _exports(["Billing.Report_EXPORTED"] * 25, "x")
    assert assert_parity(engine, entries, "mass_export", actions="(?i)report_export") == 1
    assert assert_parity(engine, entries, "mass_export", actions="^export") == 0


def test_actions_the_vocabulary_never_saw_are_still_matched(engine: Engine) -> None:
    """A remote lake can grow between the job that reads the distinct actions and the job
    that collects the findings: rows whose action the vocabulary lacks are matched by
    pattern, not skipped."""
    grown = _exports(["doc.viewed"] * 5 + ["report.exported"] * 20, "g")
    expected = polars_detect.run("mass_export", grown).sort("finding_id")
    assert expected.height == 1
    before = engine.frame(grown.head(5))  # only doc.viewed: what the first job saw
    api = spark.spark_api(before)
    vocabulary = spark.Vocabulary(api, spark._prepare(api, before))
    assert vocabulary.actions() == ["doc.viewed"]
    after = engine.frame(grown)
    found = spark.mass_export(api, spark._prepare(api, after), vocabulary=vocabulary)
    assert_frame_equal(spark.to_polars(found), expected)


def test_past_the_limit_every_action_is_matched_by_pattern(engine: Engine) -> None:
    """Someone writing a flood of distinct actions does not grow the plan with them: past
    the limit the patterns are matched row by row, with the same findings."""
    frame = _exports([f"noise.{i}" for i in range(5)] + ["report.exported"] * 20, "f")
    expected = polars_detect.run("mass_export", frame).sort("finding_id")
    assert expected.height == 1
    entries = engine.frame(frame)
    api = spark.spark_api(entries)
    prepared = spark._prepare(api, entries)
    vocabulary = spark.Vocabulary(api, prepared, limit=3)
    assert vocabulary.too_many() and len(vocabulary.actions()) == 4  # read no further
    found = spark.mass_export(api, prepared, vocabulary=vocabulary)
    assert_frame_equal(spark.to_polars(found), expected)


def test_an_unseen_action_is_read_in_unicode_as_polars_reads_it(engine: Engine) -> None:
    """The default patterns use ``(?i)`` and ``\\w``, which polars reads in Unicode; Java
    reads them in ASCII unless told. An action only Unicode case folding matches
    (``ſtop_logging``, a long s) arriving after the vocabulary was read is still found."""
    if engine.name != "pyspark":
        pytest.skip("DuckDB's RE2 reads \\w in ASCII: the fallback is the engine's regex there")
    t0 = datetime(2025, 1, 6, 9, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "audit_id": ["u1", "u2"],
            "timestamp": [t0, t0 + timedelta(minutes=1)],
            "action": ["doc.viewed", "cloudtrail.ſtop_logging"],
            "result": ["success", "success"],
            "organization_id": ["org-a", "org-a"],
            "actor_email": ["ann@x.io", "ann@x.io"],
        },
        schema_overrides={"timestamp": pl.Datetime("ms", "UTC")},
    )
    expected = polars_detect.run("defence_evasion", frame).sort("finding_id")
    assert expected.height == 1
    api = spark.spark_api(engine.frame(frame))
    vocabulary = spark.Vocabulary(api, spark._prepare(api, engine.frame(frame.head(1))))
    after = spark._prepare(api, engine.frame(frame))
    found = spark.defence_evasion(api, after, vocabulary=vocabulary)
    assert_frame_equal(spark.to_polars(found), expected)


def test_unported_detector_is_refused(engine: Engine, demo_entries: pl.DataFrame) -> None:
    with pytest.raises(DetectorError, match="not available on spark"):
        spark.detect(engine.session, engine.frame(demo_entries), ["sigma_rules"])
    with pytest.raises(DetectorError, match="group_by_network"):
        spark.detect(
            engine.session,
            engine.frame(demo_entries),
            ["password_spray"],
            password_spray={"group_by_network": True},
        )


# -- off_hours, unusual_access, privilege_escalation ---------------------------------------
# (the organization context goes to polars as parameters and to Spark as ``context=``)

_HOUR = 3_600_000
#: plans of several joins and windows: SQLFrame builds them in ~1–3 s an example
_DEEP = 10


def _context_parity(
    engine: Engine, entries: pl.DataFrame, name: str, context: Any, **params: Any
) -> int:
    """Polars with the context merged into its parameters, Spark with ``context=``."""
    merged = spark._merged(context.get(name, {}), params)
    expected = polars_detect.run(name, entries, **merged).sort("finding_id")
    found = spark.detect(
        engine.session, engine.frame(entries), [name], context=context, **{name: params}
    )
    assert_frame_equal(spark.to_polars(found), expected)
    return expected.height


def _typed(rows: list[dict[str, Any]], with_seq: bool) -> pl.DataFrame:
    """:func:`_frame`, with columns that came out all null typed as text."""
    out = _frame(rows, with_seq)
    return out.with_columns(pl.col(c).cast(pl.Utf8) for c, t in out.schema.items() if t == pl.Null)


_off_hours_row = st.fixed_dictionaries(
    {
        # half hours on the clock (01:00 UTC: the EU's DST change) over three days, ±1 ms
        "offset": st.builds(
            lambda k, edge: max(0, 120_000 + k * _HOUR // 2 + edge),
            st.integers(0, 140),
            st.sampled_from([0, 0, 1, -1]),
        ),
        "organization_id": st.sampled_from(["org-a", "org-b"]),
        "actor_email": st.sampled_from(["ann@x.io", "Bob@X.io", "cy@x.io", None]),
        "actor_user_id": st.sampled_from(["u1", "u2", None]),
        "actor_type": st.sampled_from(["user", "user", "user", "service", None]),
        "action": st.sampled_from(
            ["auth.login", "auth.failed", "doc.viewed", "user.role_changed", "billing.updated"]
        ),
        "result": st.sampled_from(["success", "success", "failure"]),
    }
)
off_hours_entries = st.builds(
    _typed, st.lists(_off_hours_row, min_size=1, max_size=30), st.booleans()
)
#: stored context as detector_context returns it: organization zones, a person in Tokyo
_OFF_CONTEXTS = st.sampled_from(
    [
        {},
        {
            "off_hours": {
                "timezones": {"org-a": "Europe/Berlin", "org-b": "America/New_York"},
                "person_timezones": {
                    "org-a:bob@x.io": "Asia/Tokyo",
                    "org-b:ann@x.io": "Asia/Tokyo",
                },
                "hours": {"org-a": "09:00-17:30"},
                "workdays": {"org-b": ["sun", "mon", "tue", "wed", "thu"]},
            }
        },
    ]
)
_OFF_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "timezone": st.sampled_from(["UTC", "Europe/Berlin", "Asia/Tokyo"]),
        "timezones": st.sampled_from([{"ANN@x.io": "Asia/Tokyo"}, {"u2": "America/Los_Angeles"}]),
        "business_hours": st.sampled_from(["08:00-18:00", "01:30-02:30"]),
        "weekends": st.booleans(),
        "holidays": st.sampled_from([["2025-03-31"], []]),
        "actor_types": st.sampled_from([("user",), ("user", "service")]),
    },
)


def test_off_hours(engine: Engine) -> None:
    @check(engine, _DEEP, frame=off_hours_entries, context=_OFF_CONTEXTS, params=_OFF_PARAMS)
    def _(frame: pl.DataFrame, context: dict[str, Any], params: dict[str, Any]) -> None:
        _context_parity(engine, frame, "off_hours", context, **params)


_access_row = st.fixed_dictionaries(
    {
        # 20-minute steps over two days: first uses, hour-long episodes (exact edges), gaps
        "offset": st.builds(
            lambda k, edge: max(0, k * _HOUR // 3 + edge),
            st.integers(0, 150),
            st.sampled_from([0, 0, 0, 1, -1]),
        ),
        "organization_id": st.sampled_from(["org-a", "org-b"]),
        "actor_email": st.sampled_from(["ann@x.io", "ann@x.io", "bob@x.io", None]),
        "actor_user_id": st.sampled_from(["u1", None]),
        "actor_type": st.sampled_from(["user", "user", "user", "service"]),
        "ip_address": st.sampled_from(
            ["10.0.0.1", "10.0.0.2", "10.0.1.9", "2001:db8::1", "not-an-ip", None]
        ),
        "user_agent": st.sampled_from(
            [
                "curl/8.5.0",
                "curl/7.1",
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "python-requests/2.32.3",
                "stratus-red-team_4c9ae9b5-1b8a-4b0a-9e2b-6f3d7c1e2a10",
                None,
            ]
        ),
        "action": st.sampled_from(["doc.viewed", "auth.login", "user.suspended", "user.removed"]),
        "result": st.sampled_from(["success", "success", "failure"]),
        "resource_id": st.sampled_from(["u1", "u2", None]),
        "resource_name": st.sampled_from(["Ann@x.io", "bob@x.io", None]),
    }
)
access_entries = st.builds(_typed, st.lists(_access_row, min_size=8, max_size=40), st.booleans())


def test_unusual_access(engine: Engine) -> None:
    @check(
        engine,
        _DEEP,
        frame=access_entries,
        min_history=st.integers(1, 4),
        dormant=st.sampled_from(["2h", "1d"]),
        switches=st.sampled_from([(True, True), (True, False), (False, True)]),
    )
    def _(frame: pl.DataFrame, min_history: int, dormant: str, switches: tuple[bool, bool]) -> None:
        new_network, new_agent = switches
        assert_parity(
            engine,
            frame,
            "unusual_access",
            min_history=min_history,
            dormant=dormant,
            new_network=new_network,
            new_agent=new_agent,
        )


def test_unusual_access_wake_up_from_a_new_network(engine: Engine) -> None:
    """One entry both ends a dormancy and is the first from a network: two findings (a
    wake-up and a first use) of one row, the first use's episode going on an hour."""
    row = {
        "organization_id": "org-a",
        "actor_email": "ann@x.io",
        "actor_user_id": "u1",
        "actor_type": "user",
        "user_agent": "curl/8.5.0",
        "action": "doc.viewed",
        "result": "success",
    }
    history = [{**row, "offset": k * 60_000, "ip_address": "10.0.0.1"} for k in range(3)]
    back = 3 * 86_400_000  # three days of silence, then a new network twice within the hour
    returns = [{**row, "offset": back + k, "ip_address": "10.9.9.9"} for k in (0, 30 * 60_000)]
    frame = _typed(history + returns, with_seq=True)
    assert assert_parity(engine, frame, "unusual_access", min_history=2, dormant="1d") == 2


def test_a_client_the_vocabulary_never_saw_is_still_a_new_client(engine: Engine) -> None:
    """The agents are read by an earlier job than the findings: an agent that arrived in
    between (a remote lake a sync extended) is a family of its own, so the new client is
    told rather than silently skipped."""
    row = {
        "organization_id": "org-a",
        "actor_email": "ann@x.io",
        "actor_user_id": "u1",
        "actor_type": "user",
        "action": "doc.viewed",
        "result": "success",
        "ip_address": "10.0.0.1",
    }
    history = [{**row, "offset": k * 60_000, "user_agent": "curl/8.5.0"} for k in range(3)]
    late = [
        {**row, "offset": 10 * 60_000, "user_agent": "EvilTool/0.1"},
        {**row, "offset": 11 * 60_000, "user_agent": " [ ] "},  # no client, as polars says
    ]
    before, after = _typed(history, with_seq=True), _typed(history + late, with_seq=True)
    api = spark.spark_api(engine.frame(before))
    vocabulary = spark.Vocabulary(api, spark._prepare(api, engine.frame(before)), agents=True)
    assert vocabulary.agents() == ["curl/8.5.0"]
    found = spark.to_polars(
        spark.unusual_access(
            api,
            spark._prepare(api, engine.frame(after)),
            min_history=2,
            session=engine.session,
            vocabulary=vocabulary,
        )
    )
    assert found["summary"].to_list() == [
        "ann@x.io acted from a new client (unparsed:eviltool/0.1)"
    ]
    # read in one go, the same entries give polars' family name
    expected = polars_detect.run("unusual_access", after, min_history=2)
    assert expected["summary"].to_list() == ["ann@x.io acted from a new client (eviltool)"]


_escalation_row = st.fixed_dictionaries(
    {
        # quarter hours, ±1 ms: grants exactly at, within and after the window of a creation
        "offset": st.builds(
            lambda k, edge: max(0, k * _HOUR // 4 + edge),
            st.integers(0, 10),
            st.sampled_from([0, 0, 0, 1, -1]),
        ),
        "organization_id": st.sampled_from(["org-a", "org-b"]),
        "actor_email": st.sampled_from(["ann@x.io", "bob@x.io", None]),
        "actor_user_id": st.sampled_from(["u1", "arn:aws:iam::1:user/Ann", None]),
        "action": st.sampled_from(
            [
                "user.role_changed",
                "application.member_added",
                "iam.attach_user_policy",
                "user.invited",
                "iam.create_user",
                "doc.viewed",
            ]
        ),
        "result": st.sampled_from(["success", "success", "failure"]),
        "resource_id": st.sampled_from(["u1", "u9", "ANN", None]),
        "resource_name": st.sampled_from(["ann@x.io", "new@x.io", "ann", None]),
        "details": st.sampled_from(
            [
                None,
                "{}",
                "oops",
                '{"before":{"role":"member"},"after":{"role":"admin"}}',
                '{"role":"member"}',
                '{"role":"Owner"}',
                '{"policy_arn":"arn:aws:iam::aws:policy/AdministratorAccess"}',
                '{"member":"new@x.io","role":"owner"}',
                '{"userName":"ann"}',
            ]
        ),
    }
)
escalation_entries = st.builds(
    _typed, st.lists(_escalation_row, min_size=1, max_size=30), st.booleans()
)


def test_privilege_escalation(engine: Engine) -> None:
    @check(engine, _DEEP, frame=escalation_entries, window=st.sampled_from(["30m", "60m"]))
    def _(frame: pl.DataFrame, window: str) -> None:
        assert_parity(engine, frame, "privilege_escalation", window=window)


def test_every_detector_runs_on_spark() -> None:
    assert set(spark.PORTED) == set(polars_detect.DETECTORS)


def test_a_person_in_tokyo_keeps_their_own_time_zone(engine: Engine) -> None:
    """Monday 01:30 UTC is 10:30 in Tokyo (a workday morning) and 02:30 in Berlin: the
    Tokyo person's own zone wins over the organization's, the colleague is off hours."""
    at = datetime(2025, 1, 6, 1, 30, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "audit_id": ["a", "b"],
            "timestamp": [at, at],
            "action": ["doc.updated", "doc.updated"],
            "result": ["success", "success"],
            "organization_id": ["org-a", "org-a"],
            "actor_email": ["Kenji@X.io", "lena@x.io"],
            "actor_type": ["user", "user"],
        }
    )
    context = {
        "off_hours": {
            "timezones": {"org-a": "Europe/Berlin"},
            "person_timezones": {"org-a:kenji@x.io": "Asia/Tokyo"},
            "hours": {"org-a": "09:00-18:00"},
        }
    }
    found = spark.to_polars(
        spark.detect(engine.session, engine.frame(frame), ["off_hours"], context=context)
    )
    assert found["subject"].to_list() == ["lena@x.io"]
    assert json.loads(found["details"][0])["timezone_source"] == "organization"
    assert _context_parity(engine, frame, "off_hours", context) == 1
    # an explicit parameter overrides the stored context key by key
    wide = {"hours": {"org-a": "00:00-23:59"}}
    assert _context_parity(engine, frame, "off_hours", context, **wide) == 0


@pytest.fixture(scope="module")
def demo_with_context() -> tuple[pl.DataFrame, dict[str, Any]]:
    """The demo with its organizations' stored context (zones, hours, people)."""
    store = al.open_store("sqlite://")
    store.append(generate(orgs=2, days=14, seed=3, end=date(2025, 1, 31)).entries)
    return store.query(backend="polars"), context.detector_context(store)


def test_demo_off_hours_with_the_stored_context(
    engine: Engine, demo_with_context: tuple[pl.DataFrame, dict[str, Any]]
) -> None:
    entries, stored = demo_with_context
    assert stored["off_hours"]["person_timezones"]  # the demo's people have their own zones
    assert _context_parity(engine, entries, "off_hours", stored) > 0


def test_context_needs_the_session_and_known_detectors(
    engine: Engine, demo_entries: pl.DataFrame
) -> None:
    frame = engine.frame(demo_entries)
    context = {"off_hours": {"timezones": {"org-a": "Asia/Tokyo"}}}
    with pytest.raises(DetectorError, match="off_hours on spark builds small lookup tables"):
        spark.detect(None, frame, ["off_hours"], context=context)
    with pytest.raises(DetectorError, match="not available on spark"):
        spark.detect(engine.session, frame, ["off_hours"], context={"sigma_rules": {}})
