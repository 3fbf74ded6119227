"""Detectors on the PySpark DataFrame API: the same findings as :mod:`auditlens.detect`.

:func:`detect` takes a Spark DataFrame of entries (the columns of
:data:`auditlens.frames.COLUMNS`, ``timestamp`` a timestamp) and returns a Spark DataFrame
with the columns of :data:`~auditlens.detect.findings.FINDING_SCHEMA`. It is written with
constructs that hold on a distributed engine: range windows over epoch milliseconds with
explicit bounds (``rangeBetween(-(w - 1), 0)`` is the polars window ``(t − w, t]``, ties
included), ``lag`` plus a running sum to merge overlapping windows into bursts, an
equi-join plus a range filter for a burst's evidence, ``size(collect_set(x))`` over a
window for distinct counts (Spark refuses ``COUNT(DISTINCT)`` over a window), and brute
force as one range window over the preceding failures. What Python knows and SQL does not —
the organization context (``detect(..., context=)``) and user-agent families (ua-parser) —
goes in as small tables (``session.createDataFrame``) joined to the entries; local time is
``from_utc_timestamp`` per row.

Nothing is imported from pyspark here: the ``functions`` module and ``Window`` come from
the package that made the DataFrame (:func:`spark_api`): ``pyspark.sql.functions`` for a
``SparkSession`` (classic or Connect), ``sqlframe.<engine>.functions`` for SQLFrame
(``sqlframe.duckdb`` runs the same code on DuckDB, no JVM: that is how the tests prove
parity with polars).

Example:
    >>> import duckdb, polars as pl
    >>> from datetime import datetime, timedelta, UTC
    >>> from sqlframe.duckdb import DuckDBSession
    >>> t0 = datetime(2025, 1, 1, 9, tzinfo=UTC)
    >>> entries = pl.DataFrame({"audit_id": [str(i) for i in range(7)],
    ...     "timestamp": [t0 + timedelta(seconds=30 * i) for i in range(7)],
    ...     "action": ["auth.failed"] * 7, "result": ["failure"] * 7,
    ...     "organization_id": ["o"] * 7, "actor_email": ["jane@x.io"] * 7}).to_arrow()
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE entries AS SELECT * FROM entries")
    >>> session = DuckDBSession(conn=con)
    >>> found = detect(session, session.table("entries"), ["failed_login_spikes"])
    >>> to_polars(found)[["subject", "count"]].rows()
    [('jane@x.io', 7)]
    >>> session.stop()  # SQLFrame sessions are one per process: close it for the next user
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import polars as pl

from auditlens.detect import behaviour, escalation, evasion
from auditlens.detect.agents import agent_family
from auditlens.detect.exfiltration import EXPORT_ACTIONS
from auditlens.detect.findings import (
    FINDING_SCHEMA,
    actions_matching,
    check_regex,
    human,
    parse_window,
    positive_int,
)
from auditlens.errors import ArchiveError, ConfigError, DetectorError, FilterError
from auditlens.frames import COLUMNS, FRAME_SCHEMA
from auditlens.lake.layout import LakeStorage, read_state

__all__ = [
    "PORTED",
    "VOCABULARY_LIMIT",
    "Vocabulary",
    "detect",
    "detect_lake",
    "lake_context",
    "local_session",
    "read_lake",
    "remote_session",
    "spark_api",
    "to_polars",
]

#: a Spark (or SQLFrame) DataFrame / Column: typed loosely, pyspark is not a dependency.
SparkFrame = Any
SparkColumn = Any

_REQUIRED = ("audit_id", "timestamp", "action", "result", "organization_id")
_TEXT = (
    "actor_email",
    "actor_user_id",
    "actor_type",
    "ip_address",
    "user_agent",
    "resource_type",
    "resource_id",
    "resource_name",
    "details",
)
_PART = ("organization_id", "key")
_VOLUME_PATHS = ("$.rows", "$.row_count", "$.records", "$.count")  # as detect.exfiltration


class SparkApi(NamedTuple):
    """The ``functions`` module and ``Window`` class of the engine that made a DataFrame."""

    F: ModuleType
    Window: Any
    #: ``spark`` for pyspark, else SQLFrame's engine name (``duckdb``…)
    engine: str = "spark"


def spark_api(df: SparkFrame) -> SparkApi:
    """``functions`` and ``Window`` for ``df``, chosen by the module of its class.

    ``pyspark.sql…`` (classic or Connect) → ``pyspark.sql.functions``;
    ``sqlframe.<engine>…`` → ``sqlframe.<engine>.functions`` and ``sqlframe.<engine>.Window``.

    Example:
        >>> spark_api(object())
        Traceback (most recent call last):
        ...
        auditlens.errors.DetectorError: not a Spark DataFrame: object (use PySpark or SQLFrame)
    """
    module = type(df).__module__
    engine = "spark"
    if module.startswith("pyspark."):
        functions = importlib.import_module("pyspark.sql.functions")
        window = importlib.import_module("pyspark.sql.window").Window
    elif module.startswith("sqlframe.") and module.count(".") >= 2:
        engine = module.split(".")[1]
        functions = importlib.import_module(f"sqlframe.{engine}.functions")
        window = importlib.import_module(f"sqlframe.{engine}").Window
    else:
        raise DetectorError(
            f"not a Spark DataFrame: {type(df).__qualname__} (use PySpark or SQLFrame)"
        )
    return SparkApi(functions, window, engine)


def _json_text(api: SparkApi, col: SparkColumn, path: str) -> SparkColumn:
    """``get_json_object``: the value at ``path`` as text, null when absent or not JSON.

    DuckDB's ``->`` (what SQLFrame makes of it) returns JSON, not text, and fails on
    malformed input, so on DuckDB it is ``json_extract_string`` behind ``json_valid``.
    """
    F = api.F
    if api.engine != "duckdb":
        return F.get_json_object(col, path)
    text = F.call_function("json_extract_string", col, F.lit(path))
    return F.when(F.call_function("json_valid", col), text)


def _ms(span: timedelta) -> int:
    return int(span / timedelta(milliseconds=1))


def _prepare(api: SparkApi, df: SparkFrame) -> SparkFrame:
    """The columns detectors need, ``_t`` (epoch ms) and ``seq`` (null when absent)."""
    F = api.F
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise FilterError(f"the entries DataFrame lacks column(s) {', '.join(missing)}")
    text = [
        (F.col(c).cast("string") if c in df.columns else F.lit(None).cast("string")).alias(c)
        for c in _TEXT
    ]
    seq = F.col("seq").cast("long") if "seq" in df.columns else F.lit(None).cast("long")
    # unix_micros, not unix_millis: SQLFrame's DuckDB dialect truncates unix_millis to seconds
    epoch_ms = F.floor(F.unix_micros(F.col("timestamp")) / 1000).cast("long")
    # one projection: every step is a node of the plan, and SQLFrame copies the plan per step
    return df.select(*_REQUIRED, *text, seq.alias("seq"), epoch_ms.alias("_t"))


def _few(api: SparkApi, df: SparkFrame) -> SparkFrame:
    """``df`` marked for a broadcast join on Spark: the few rows a detector flagged
    (bursts, wins, grants, suspensions), joined to many. The many then stream through a
    hash join instead of being shuffled and sorted for a sort-merge join — even when the
    few are none. SQLFrame's engines get ``df`` as it is (they have no broadcast hint, and
    DuckDB needs none)."""
    return api.F.broadcast(df) if api.engine == "spark" else df


#: most distinct actions matched by lookup; past it (an attacker writing a million distinct
#: actions), every row is matched by the engine's regex instead: the plan carries the list
#: of actions, and it must not grow with what someone writes into the log
VOCABULARY_LIMIT = 5_000


class Vocabulary:
    """The distinct actions (and user agents) of the entries one :func:`detect` call reads.

    Patterns over actions (exports, grants, logging switched off…) are matched the way the
    polars detectors match them (:func:`~auditlens.detect.findings.actions_matching`, polars'
    regex engine) against the *distinct* actions, and rows are then picked with ``isin``: one
    hash lookup per row instead of a regular expression, and the same matches as polars. The
    distinct values come from one small job, run when a detector first asks (while the plan is
    built) and shared by every detector of the call; ``agents`` adds the distinct user agents
    to that job (:func:`unusual_access`'s client families). An action the job did not see (a
    remote lake a sync extended since) is matched by the engine's regex (Java's, told to
    read Unicode as polars does), and so is every action when there are more than
    :data:`VOCABULARY_LIMIT` distinct ones.

    Example:
        >>> import duckdb, polars as pl
        >>> from sqlframe.duckdb import DuckDBSession
        >>> con = duckdb.connect()
        >>> _ = con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('report.export'),"
        ...     " ('doc.viewed'), ('report.export')) v(action)")
        >>> session = DuckDBSession(conn=con)
        >>> frame = session.table("t")
        >>> Vocabulary(spark_api(frame), frame).actions_matching("export")
        ['report.export']
        >>> session.stop()
    """

    def __init__(
        self,
        api: SparkApi,
        frame: SparkFrame,
        *,
        agents: bool = False,
        limit: int = VOCABULARY_LIMIT,
    ) -> None:
        self._api, self._frame, self._limit = api, frame, limit
        self._wanted = {"action": True, "agent": agents}
        self._values: dict[str, list[str]] = {}
        self._matching: dict[str, list[str]] = {}  # pattern → its distinct actions

    def _collect(self, kind: str) -> list[str]:
        if kind not in self._values:
            F = self._api.F
            self._wanted[kind] = True
            kinds = [k for k, on in self._wanted.items() if on and k not in self._values]
            columns = {"action": "action", "agent": "user_agent"}
            parts = []
            for k in kinds:
                part = self._frame.select(F.lit(k).alias("_k"), F.col(columns[k]).alias("_v"))
                part = part.filter(F.col("_v").isNotNull()).distinct()
                # actions are capped (one more tells "too many"); agents are all parsed
                parts.append(part.limit(self._limit + 1) if k == "action" else part)
            values: dict[str, list[str]] = {k: [] for k in kinds}
            for row in _union(parts).collect():
                values[str(row["_k"])].append(str(row["_v"]))
            self._values.update({k: sorted(v) for k, v in values.items()})
        return self._values[kind]

    def actions(self) -> list[str]:
        """The distinct actions, sorted (at most :data:`VOCABULARY_LIMIT` + 1)."""
        return self._collect("action")

    def too_many(self) -> bool:
        """More distinct actions than the limit: patterns go to the engine's regex."""
        return len(self.actions()) > self._limit

    def agents(self) -> list[str]:
        """The distinct user agents, sorted (collected with the actions when the vocabulary was
        made with ``agents=True``, else by a job of their own)."""
        return self._collect("agent")

    def actions_matching(self, pattern: str, name: str = "pattern") -> list[str]:
        """The distinct actions ``pattern`` matches (polars' regex, as the polars detectors).

        Raises:
            FilterError: ``pattern`` is not a valid regular expression (naming ``name``).
        """
        check_regex(pattern, name)  # before the job: a typo costs no scan
        if pattern not in self._matching:  # each pattern matched once per call
            known = pl.DataFrame({"action": self.actions()}, schema={"action": pl.Utf8})
            self._matching[pattern] = actions_matching(known, pattern, name)
        return self._matching[pattern]

    def action_in(self, actions: Iterable[str]) -> SparkColumn:
        """``action`` is one of ``actions`` (false for none)."""
        chosen = sorted(set(actions))
        F = self._api.F
        return F.col("action").isin(*chosen) if chosen else F.lit(False)

    def unseen(self) -> SparkColumn:
        """``action`` is none of the distinct actions collected: a row the plan's data did
        not hold when the vocabulary was read (a remote lake a sync extended since); every
        row when there are too many to list."""
        return self._api.F.lit(True) if self.too_many() else ~self.action_in(self.actions())

    def candidates(self, patterns: Iterable[str]) -> SparkColumn:
        """A superset, one lookup per row, of the rows whose action matches any of
        ``patterns``: the matching distinct actions, and the unseen ones."""
        if self.too_many():
            return self._api.F.lit(True)
        matching = {a for p in patterns for a in self.actions_matching(p)}
        return self.action_in(matching) | self.unseen()

    def action_matches(self, pattern: str, name: str = "pattern") -> SparkColumn:
        """``action`` matches ``pattern``: :meth:`action_in` the matching distinct actions, and
        the engine's regex for an action :meth:`unseen` (only for those rows), so that rows
        added after the vocabulary was read are not silently skipped."""
        F = self._api.F
        # Java's regex reads \w and (?i) as ASCII unless told (?U); polars reads Unicode
        engine_pattern = f"(?U){pattern}" if self._api.engine == "spark" else pattern
        by_regex = F.col("action").rlike(engine_pattern)
        if self.too_many():
            check_regex(pattern, name)
            return by_regex
        hits = self.action_in(self.actions_matching(pattern, name))
        return hits | (self.unseen() & by_regex)


def _vocabulary(api: SparkApi, frame: SparkFrame, given: Vocabulary | None) -> Vocabulary:
    return given if given is not None else Vocabulary(api, frame)


def _range(api: SparkApi, lo: int, hi: int) -> Any:
    return api.Window.partitionBy(*_PART).orderBy("_t").rangeBetween(lo, hi)


def _evidence(api: SparkApi, t: str, seq: str, audit_id: str) -> SparkColumn:
    """audit ids collected in a group, ordered by time, then seq, then id."""
    F = api.F
    items = F.collect_list(
        F.struct(
            F.col(t).alias("t"),
            F.coalesce(F.col(seq), F.lit(0)).alias("s"),
            F.col(audit_id).alias("a"),
        )
    )
    return F.transform(F.array_sort(items), lambda x: x["a"])


def _text(api: SparkApi, *parts: str | SparkColumn) -> SparkColumn:
    """Concatenation of literals (str) and columns (cast to string)."""
    F = api.F
    return F.concat(*(F.lit(p) if isinstance(p, str) else p.cast("string") for p in parts))


def _seconds(api: SparkApi) -> SparkColumn:
    """Whole seconds from a burst's first to its last entry."""
    return api.F.floor((api.F.col("_we") - api.F.col("_ws")) / 1000).cast("long")


def _merge(
    api: SparkApi, ev: SparkFrame, flag: SparkColumn, span_ms: int, *extra: SparkColumn
) -> tuple[SparkFrame, SparkFrame]:
    """Merge the flagged windows of each (organization, key) into bursts.

    Returns the burst rows (``organization_id, key, _burst, window_start, window_end, _ws,
    _we, count, audit_ids`` and ``extra`` aggregates) and every event joined to its burst.
    """
    F, W = api.F, api.Window
    by_time = W.partitionBy(*_PART).orderBy("_t")
    flagged = ev.filter(flag).select(*_PART, "_t", F.lag("_t").over(by_time).alias("_prev"))
    lo = F.col("_t") - F.lit(span_ms)
    new = F.when(F.col("_prev").isNull() | (lo >= F.col("_prev")), F.lit(1)).otherwise(F.lit(0))
    flagged = flagged.select(
        *_PART,
        "_t",
        lo.alias("_lo"),
        F.sum(new).over(by_time.rowsBetween(W.unboundedPreceding, 0)).alias("_burst"),
    )
    bursts = flagged.groupBy(*_PART, "_burst").agg(
        F.min("_lo").alias("_blo"), F.max("_t").alias("_bhi")
    )
    joined = ev.join(_few(api, bursts), on=list(_PART)).filter(
        (F.col("_t") > F.col("_blo")) & (F.col("_t") <= F.col("_bhi"))
    )
    rows = joined.groupBy(*_PART, "_burst").agg(*_span_aggs(api), *extra)
    return rows, joined


def _span_aggs(
    api: SparkApi, since: tuple[str, str] = ("timestamp", "_t"), seq: str = "seq"
) -> tuple[SparkColumn, ...]:
    """The aggregates of a burst or episode: ``window_start``/``_ws`` (the earliest of the
    ``since`` columns, a timestamp and its epoch ms), ``window_end``/``_we`` (the latest
    entry), ``count`` and the evidence in evidence order (``seq`` the seq column)."""
    F = api.F
    return (
        F.min(since[0]).alias("window_start"),
        F.max("timestamp").alias("window_end"),
        F.min(since[1]).alias("_ws"),
        F.max("_t").alias("_we"),
        F.count(F.lit(1)).alias("count"),
        _evidence(api, "_t", seq, "audit_id").alias("audit_ids"),
    )


def _findings(
    api: SparkApi,
    rows: SparkFrame,
    detector: str,
    severity: SparkColumn,
    subject_type: str | SparkColumn,
    summary: SparkColumn,
    details: SparkColumn | None = None,
) -> SparkFrame:
    """Burst rows → findings, with :func:`~auditlens.detect.findings.finding_id`'s ids
    (``subject_type`` one for all rows, or a column of the rows)."""
    F = api.F
    kind = F.lit(subject_type) if isinstance(subject_type, str) else subject_type
    if details is None:
        details = F.lit("{}")
    else:  # a column of its own: SQLFrame resolves one expression used twice only once
        rows = rows.withColumn("_details", details)
        details = F.col("_details")
    d = F.coalesce(details, F.lit("{}"))
    variant = F.concat(
        F.coalesce(_json_text(api, d, "$.reason"), F.lit("")),
        F.lit("/"),
        F.coalesce(_json_text(api, d, "$.stop_audit_id"), F.lit("")),
    )
    raw = F.concat_ws(
        "|",
        F.lit(detector),
        F.col("organization_id"),
        kind,
        F.col("key"),
        F.col("_ws").cast("string"),
        F.element_at(F.col("audit_ids"), 1),
        F.when(variant == "/", F.lit("")).otherwise(variant),
    )
    # one projection (each step is a plan node SQLFrame copies)
    return rows.select(
        F.substring(F.sha2(raw, 256), 1, 16).alias("finding_id"),
        F.lit(detector).alias("detector"),
        severity.alias("severity"),
        F.col("organization_id"),
        kind.alias("subject_type"),
        F.col("key").alias("subject"),
        F.col("window_start"),
        F.col("window_end"),
        F.col("count").cast("long").alias("count"),
        F.col("audit_ids"),
        summary.alias("summary"),
        details.alias("details"),
    )


def _subject(api: SparkApi, by: str) -> tuple[SparkColumn, str]:
    F = api.F
    if by == "actor":
        return F.coalesce(F.col("actor_email"), F.col("actor_user_id"), F.lit("(unknown)")), "actor"
    if by == "ip":
        return F.coalesce(F.col("ip_address"), F.lit("(no ip)")), "ip"
    if by == "organization":
        return F.col("organization_id"), "organization"
    raise FilterError(f"by must be 'actor', 'ip' or 'organization', got {by!r}")


def _window_aggs(api: SparkApi) -> tuple[SparkColumn, ...]:
    """The aggregates a finding's window starts with: its first and last time (and the
    first in ms as ``_ws``), how many entries, and their evidence."""
    F = api.F
    return (
        F.min("timestamp").alias("window_start"),
        F.max("timestamp").alias("window_end"),
        F.min("_t").alias("_ws"),
        F.count(F.lit(1)).alias("count"),
        _evidence(api, "_t", "seq", "audit_id").alias("audit_ids"),
    )


def _event_columns(key: SparkColumn) -> tuple[SparkColumn | str, ...]:
    """The columns a detector's event frame starts with: the organization, the subject as
    ``key``, the time (``_t`` in ms) and the entry's identity."""
    return ("organization_id", key.alias("key"), "timestamp", "_t", "seq", "audit_id")


def _no_networks(group_by_network: bool) -> None:
    if group_by_network:
        raise DetectorError("group_by_network is not ported to the spark engine yet")


def _counted(api: SparkApi, ev: SparkFrame, span_ms: int) -> SparkFrame:
    return ev.withColumn("_n", api.F.count(api.F.lit(1)).over(_range(api, -(span_ms - 1), 0)))


def _escalate(api: SparkApi, threshold: int, factor: int, top: str, other: str) -> SparkColumn:
    F = api.F
    return F.when(F.col("count") >= factor * threshold, F.lit(top)).otherwise(F.lit(other))


def failed_login_spikes(
    api: SparkApi,
    frame: SparkFrame,
    threshold: int = 5,
    window: str | timedelta = "5m",
    by: str = "actor",
    group_by_network: bool = False,
    network_prefix: tuple[int, int] | int = (24, 64),
) -> SparkFrame:
    """:func:`auditlens.detect.failed_login_spikes` on Spark."""
    F = api.F
    threshold = positive_int(threshold, "threshold")
    span = parse_window(window)
    _no_networks(group_by_network and by == "ip")
    key, subject_type = _subject(api, by)
    ev = frame.filter(F.col("action") == "auth.failed").select(
        "organization_id", key.alias("key"), "timestamp", "_t", "seq", "audit_id"
    )
    rows, _ = _merge(api, _counted(api, ev, _ms(span)), F.col("_n") > threshold, _ms(span))
    summary = _text(
        api,
        F.col("count"),
        " failed sign-ins for ",
        subject_type,
        " ",
        F.col("key"),
        " within ",
        _seconds(api),
        f" s (more than {threshold} in {human(span)})",
    )
    return _findings(
        api,
        rows,
        "failed_login_spikes",
        _escalate(api, threshold, 4, "critical", "high"),
        subject_type,
        summary,
    )


def _hh_mm(api: SparkApi, ms: str) -> SparkColumn:
    F = api.F
    hours = (F.floor(F.col(ms) / 3_600_000) % 24).cast("long").cast("string")
    minutes = (F.floor(F.col(ms) / 60_000) % 60).cast("long").cast("string")
    return F.concat(F.lpad(hours, 2, "0"), F.lit(":"), F.lpad(minutes, 2, "0"))


def bulk_deletions(
    api: SparkApi, frame: SparkFrame, threshold: int = 10, window: str | timedelta = "10m"
) -> SparkFrame:
    """:func:`auditlens.detect.bulk_deletions` on Spark."""
    F = api.F
    threshold = positive_int(threshold, "threshold")
    span = parse_window(window)
    key, _ = _subject(api, "actor")
    deletion = (F.col("action").endswith(".deleted") | (F.col("action") == "user.removed")) & (
        F.col("result") != "failure"
    )
    ev = frame.filter(deletion).select(
        "organization_id", key.alias("key"), "timestamp", "_t", "seq", "audit_id"
    )
    rows, _ = _merge(api, _counted(api, ev, _ms(span)), F.col("_n") > threshold, _ms(span))
    summary = _text(
        api,
        F.col("key"),
        " deleted ",
        F.col("count"),
        " resources between ",
        _hh_mm(api, "_ws"),
        " and ",
        _hh_mm(api, "_we"),
        " UTC",
    )
    return _findings(
        api,
        rows,
        "bulk_deletions",
        _escalate(api, threshold, 3, "critical", "high"),
        "actor",
        summary,
    )


def password_spray(
    api: SparkApi,
    frame: SparkFrame,
    accounts: int = 10,
    window: str | timedelta = "10m",
    group_by_network: bool = False,
    network_prefix: tuple[int, int] | int = (24, 64),
) -> SparkFrame:
    """:func:`auditlens.detect.password_spray` on Spark (distinct accounts per window with
    ``size(collect_set(account))``)."""
    F = api.F
    accounts = positive_int(accounts, "accounts")
    span = parse_window(window)
    _no_networks(group_by_network)
    actor, _ = _subject(api, "actor")
    ev = frame.filter((F.col("action") == "auth.failed") & F.col("ip_address").isNotNull()).select(
        "organization_id",
        F.col("ip_address").alias("key"),
        "timestamp",
        "_t",
        "seq",
        "audit_id",
        actor.alias("account"),
    )
    distinct = F.size(F.collect_set("account").over(_range(api, -(_ms(span) - 1), 0)))
    rows, _ = _merge(
        api,
        ev.withColumn("_u", distinct),
        F.col("_u") >= accounts,
        _ms(span),
        F.size(F.collect_set("account")).alias("accounts"),
    )
    summary = _text(
        api,
        F.col("key"),
        " failed to sign in as ",
        F.col("accounts"),
        " different accounts (",
        F.col("count"),
        " attempts)",
    )
    return _findings(api, rows, "password_spray", F.lit("high"), "ip", summary)


def brute_force_success(
    api: SparkApi,
    frame: SparkFrame,
    failures: int = 5,
    window: str | timedelta = "30m",
    by: tuple[str, ...] | str = ("actor", "ip"),
) -> SparkFrame:
    """:func:`auditlens.detect.brute_force_success` on Spark: failures in ``[t − window, t)``
    as one range window (``w`` preceding to 1 preceding), evidence by an equi-join plus a
    range filter. A success found for several subjects is told once, for the first of ``by``
    (a window over the few successes' audit ids: each subject's plan runs once)."""
    F = api.F
    failures = positive_int(failures, "failures")
    span = parse_window(window)
    ms = _ms(span)
    keys = (by,) if isinstance(by, str) else tuple(by)
    if not keys:
        raise FilterError("by needs at least one of 'actor', 'ip'")
    key: SparkColumn = F.lit(None).cast("string")
    subject_type: SparkColumn = F.lit(None).cast("string")
    for i, b in enumerate(keys):
        if b not in ("actor", "ip"):
            raise FilterError(f"by must be 'actor' and/or 'ip', got {b!r}")
        col, name = _subject(api, b)
        key = F.when(F.col("_ki") == i, col).otherwise(key)
        subject_type = F.when(F.col("_ki") == i, F.lit(name)).otherwise(subject_type)
    # every sign-in once per subject of ``by`` (``_ki`` its place): one scan and one exchange
    # for all the subjects, each a partition of its own
    subjects = F.explode(F.array(*(F.lit(i) for i in range(len(keys))))).alias("_ki")
    auth = (
        frame.filter(F.col("action").isin("auth.failed", "auth.login"))
        .select("*", subjects)
        .select(
            "organization_id",
            "_ki",
            key.alias("key"),
            subject_type.alias("_st"),
            "timestamp",
            "_t",
            "seq",
            "audit_id",
            "action",
            "result",
            F.when(F.col("action") == "auth.failed", F.lit(1)).otherwise(F.lit(0)).alias("_fail"),
        )
    )
    part = ["organization_id", "_ki", "key"]
    preceding = api.Window.partitionBy(*part).orderBy("_t").rangeBetween(-ms, -1)
    before = F.coalesce(F.sum("_fail").over(preceding), F.lit(0))
    wins = auth.withColumn("_fails", before).filter(
        (F.col("action") == "auth.login")
        & (F.col("result") == "success")
        & (F.col("_fails") >= failures)
    )
    fails = auth.filter(F.col("_fail") == 1).select(
        *part,
        F.col("timestamp").alias("_tsf"),
        F.col("_t").alias("_tf"),
        F.col("seq").alias("_sf"),
        F.col("audit_id").alias("_af"),
    )
    pairs = (
        _few(api, wins.select(*part, "_st", "audit_id", "timestamp", "_t"))
        .join(fails, on=part)
        .filter((F.col("_tf") < F.col("_t")) & (F.col("_tf") >= F.col("_t") - F.lit(ms)))
    )
    hits = pairs.groupBy(*part, "_st", "audit_id", "timestamp", "_t").agg(
        F.count(F.lit(1)).alias("_nf"),
        F.min("_tsf").alias("window_start"),
        F.min("_tf").alias("_ws"),
        _evidence(api, "_tf", "_sf", "_af").alias("_fail_ids"),
    )
    if len(keys) > 1:  # a success told for an earlier subject is not told again (as polars)
        first = F.min("_ki").over(api.Window.partitionBy("audit_id"))
        hits = hits.select("*", first.alias("_k0")).filter(F.col("_ki") == F.col("_k0"))
    rows = hits.select(
        "organization_id",
        "key",
        "_st",
        "window_start",
        F.col("timestamp").alias("window_end"),
        "_ws",
        (F.col("_nf") + 1).alias("count"),
        F.concat(F.col("_fail_ids"), F.array(F.col("audit_id"))).alias("audit_ids"),
    )
    summary = _text(
        api,
        "successful sign-in for ",
        F.col("_st"),
        " ",
        F.col("key"),
        " after ",
        F.col("count") - 1,
        f" failures within {human(span)}",
    )
    return _findings(api, rows, "brute_force_success", F.lit("critical"), F.col("_st"), summary)


def failure_bursts(
    api: SparkApi,
    frame: SparkFrame,
    threshold: int = 10,
    window: str | timedelta = "5m",
    by: Iterable[str] | str = ("actor", "ip"),
    exclude: Iterable[str] = ("auth.failed",),
    group_by_network: bool = False,
    network_prefix: tuple[int, int] | int = (24, 64),
) -> SparkFrame:
    """:func:`auditlens.detect.failure_bursts` on Spark."""
    F = api.F
    threshold = positive_int(threshold, "threshold")
    span = parse_window(window)
    keys = (by,) if isinstance(by, str) else tuple(by)
    if not keys or any(b not in ("actor", "ip") for b in keys):
        raise FilterError(f"by must be 'actor' and/or 'ip', got {by!r}")
    _no_networks(group_by_network)
    skip = [exclude] if isinstance(exclude, str) else list(exclude)
    failing = F.col("result") == "failure"
    if skip:
        failing = failing & ~F.col("action").isin(*skip)
    failed = frame.filter(failing)
    d = F.col("details")
    error = F.coalesce(
        _json_text(api, d, "$.error_code"),
        _json_text(api, d, "$.errorCode"),
        _json_text(api, d, "$.reason"),
    )
    parts: list[SparkFrame] = []
    for b in keys:
        key = (
            F.coalesce(F.col("actor_email"), F.col("actor_user_id"))
            if b == "actor"
            else F.col("ip_address")
        )
        ev = failed.select(
            *_event_columns(key),
            "action",
            error.alias("_error"),
        ).filter(F.col("key").isNotNull())
        rows, joined = _merge(api, _counted(api, ev, _ms(span)), F.col("_n") > threshold, _ms(span))
        rows = rows.join(_what(api, joined), on=[*_PART, "_burst"], how="left")
        summary = _text(
            api,
            F.col("count"),
            f" failed calls by {b} ",
            F.col("key"),
            " within ",
            _seconds(api),
            " s (",
            F.col("_top"),
            f"; more than {threshold} in {human(span)})",
        )
        details = _text(api, '{"actions":', F.col("_actions"), ',"errors":', F.col("_errors"), "}")
        parts.append(
            _findings(
                api,
                rows,
                "failure_bursts",
                _escalate(api, threshold, 3, "high", "medium"),
                b,
                summary,
                details,
            )
        )
    out = _union(parts)
    return _drop_retold(api, out) if len(parts) > 1 else out


def _what(api: SparkApi, joined: SparkFrame) -> SparkFrame:
    """Per burst: its actions with counts as JSON (most first), the top three as text,
    and its distinct error codes as JSON."""
    F = api.F
    burst = [*_PART, "_burst"]
    per_action = joined.groupBy(*burst, "action").agg(F.count(F.lit(1)).alias("_na"))
    item = F.struct(
        (F.lit(0) - F.col("_na")).alias("k"),
        F.col("action").alias("action"),
        F.to_json(F.struct(F.col("action").alias("action"), F.col("_na").alias("count"))).alias(
            "json"
        ),
        _text(api, F.col("action"), " ×", F.col("_na")).alias("top"),
    )
    ranked = per_action.groupBy(*burst).agg(F.array_sort(F.collect_list(item)).alias("_items"))
    tops = F.transform(F.col("_items"), lambda x: x["top"])
    # the first three: SQLFrame (4.10) writes slice(x, 1, 3) as DuckDB's list_slice(x, 1, 4),
    # whose end is inclusive (four), so DuckDB gets its own list_slice(x, first, last)
    top3 = (
        F.call_function("list_slice", tops, F.lit(1), F.lit(3))
        if api.engine == "duckdb"
        else F.slice(tops, 1, 3)
    )
    actions = ranked.select(
        *burst,
        _text(
            api, "[", F.array_join(F.transform(F.col("_items"), lambda x: x["json"]), ","), "]"
        ).alias("_actions"),
        F.array_join(top3, ", ").alias("_top"),
    )
    # collect_set drops nulls on Spark but not on DuckDB: filter them either way
    errors = joined.groupBy(*burst).agg(
        F.to_json(
            F.filter(F.array_sort(F.collect_set(F.col("_error"))), lambda x: x.isNotNull())
        ).alias("_errors")
    )
    return actions.join(errors, on=burst)


def _drop_retold(api: SparkApi, out: SparkFrame) -> SparkFrame:
    """Drop source findings whose every entry is already in an actor finding.

    Windows over the exploded evidence, not self-joins of ``out``: on Spark each use of
    ``out`` repeats its whole plan (every burst's windows and joins), three times over.
    """
    F, W = api.F, api.Window
    ex = out.select("*", F.explode("audit_ids").alias("_a"))
    actor = (F.col("subject_type") == "actor").cast("int")
    ex = ex.select("*", F.max(actor).over(W.partitionBy("organization_id", "_a")).alias("_told"))
    ex = ex.select(
        "*",
        F.min("_told").over(W.partitionBy("finding_id")).alias("_all"),
        F.row_number().over(W.partitionBy("finding_id").orderBy("_a")).alias("_r"),
    )
    keep = (F.col("_r") == 1) & ((F.col("subject_type") == "actor") | (F.col("_all") == 0))
    return ex.filter(keep).select(*out.columns)


def _human(api: SparkApi, ms: SparkColumn) -> SparkColumn:
    """:func:`auditlens.detect.findings.human` of a duration in ms: ``"5 minutes"``."""
    F = api.F
    secs = F.floor(ms / 1000).cast("long")
    out = _text(api, secs, " seconds")
    for unit, size in (("minute", 60), ("hour", 3600), ("day", 86400)):  # largest unit wins
        n = F.floor(secs / size).cast("long")
        plural = F.when(n != 1, F.lit("s")).otherwise(F.lit(""))
        fits = ((secs % size) == 0) & (secs >= size)
        out = F.when(fits, _text(api, n, f" {unit}", plural)).otherwise(out)
    return out


def mass_export(
    api: SparkApi,
    frame: SparkFrame,
    rows: int = 10_000,
    exports: int = 20,
    window: str | timedelta = "1h",
    actions: str = EXPORT_ACTIONS,
    *,
    vocabulary: Vocabulary | None = None,
) -> SparkFrame:
    """:func:`auditlens.detect.mass_export` on Spark (rows and exports summed over one range
    window; ``actions`` matched against the distinct actions, :class:`Vocabulary`)."""
    F = api.F
    row_limit = positive_int(rows, "rows")
    export_limit = positive_int(exports, "exports")
    span = parse_window(window)
    exported = _vocabulary(api, frame, vocabulary).action_matches(actions, "actions")
    ms = _ms(span)
    d = F.col("details")
    volume = None
    for path in _VOLUME_PATHS:
        text = _json_text(api, d, path)
        # a whole number, else null (polars' non-strict cast); DuckDB's cast would fail
        number = F.when(text.rlike(r"^-?[0-9]{1,18}$"), text.cast("long"))
        volume = number if volume is None else F.coalesce(volume, number)
    actor, _ = _subject(api, "actor")
    ev = frame.filter(exported & (F.col("result") == "success")).select(
        *_event_columns(actor),
        F.greatest(F.coalesce(volume, F.lit(0)), F.lit(0)).alias("_rows"),
    )
    window_spec = _range(api, -(ms - 1), 0)
    ev = ev.select(
        "*",
        F.count(F.lit(1)).over(window_spec).alias("_n"),
        F.sum("_rows").over(window_spec).alias("_v"),
    )
    flag = (F.col("_v") > row_limit) | (F.col("_n") > export_limit)
    bursts, _ = _merge(api, ev, flag, ms, F.sum("_rows").cast("long").alias("total_rows"))
    summary = _text(
        api,
        F.col("key"),
        " exported ",
        F.col("total_rows"),
        " rows in ",
        F.col("count"),
        " export(s) within ",
        _human(api, F.col("_we") - F.col("_ws")),
        f" (limit: {row_limit} rows, {export_limit} exports per {human(span)})",
    )
    severity = F.when(F.col("total_rows") >= 10 * row_limit, F.lit("critical")).otherwise(
        F.lit("high")
    )
    details = _text(api, '{"rows":', F.col("total_rows"), "}")
    return _findings(api, bursts, "mass_export", severity, "actor", summary, details)


def defence_evasion(
    api: SparkApi,
    frame: SparkFrame,
    window: str | timedelta = "1h",
    logging_actions: str = evasion.LOGGING_ACTIONS,
    mfa_actions: str = evasion.MFA_ACTIONS,
    alerting_actions: str = evasion.ALERTING_ACTIONS,
    alert_destinations: str = evasion.ALERT_DESTINATIONS,
    *,
    vocabulary: Vocabulary | None = None,
) -> SparkFrame:
    """:func:`auditlens.detect.defence_evasion` on Spark (action patterns matched against the
    distinct actions, :class:`Vocabulary`, as polars does; only the candidate rows have their
    details read; episodes by ``lag`` and a running sum)."""
    F, W = api.F, api.Window
    span = parse_window(window)
    ms = _ms(span)
    check_regex(alert_destinations, "alert_destinations")
    known = _vocabulary(api, frame, vocabulary)
    log_acts = known.action_matches(logging_actions, "logging_actions")
    # as polars: auth.mfa_reset is a response, not evasion
    mfa = known.action_matches(mfa_actions, "mfa_actions") & ~F.lower(F.col("action")).contains(
        "mfa_reset"
    )
    alert_acts = known.action_matches(alerting_actions, "alerting_actions")
    is_setting = known.action_matches(evasion._SETTINGS_UPDATED)
    gone = known.action_matches(evasion._WEBHOOK_GONE)
    changed = known.action_matches(evasion._WEBHOOK_CHANGED)
    d = F.col("details")
    setting = _json_text(api, d, "$.setting")
    after = F.coalesce(_json_text(api, d, "$.after.value"), _json_text(api, d, "$.after"))
    switched_off = F.coalesce(
        _json_text(api, d, "$.after.actions.enabled"),
        _json_text(api, d, "$.after.enabled"),
        _json_text(api, d, "$.after.active"),
        _json_text(api, d, "$.after.config.active"),
    ).rlike(evasion._OFF)
    destination = F.concat_ws(
        " ",
        F.coalesce(F.col("resource_name"), F.lit("")),
        F.coalesce(_json_text(api, d, "$.before.actions.url"), F.lit("")),
        F.coalesce(_json_text(api, d, "$.before.url"), F.lit("")),
        F.coalesce(_json_text(api, d, "$.url"), F.lit("")),
    ).rlike(alert_destinations)
    webhook_off = gone | (changed & F.coalesce(switched_off, F.lit(False)))
    reason = (
        F.when(
            log_acts | (is_setting & setting.rlike(evasion._LOG_SETTING)),
            F.lit("logging_disabled"),
        )
        .when(
            mfa | (is_setting & setting.rlike(evasion._MFA_SETTING) & after.rlike(evasion._OFF)),
            F.lit("mfa_disabled"),
        )
        .when(alert_acts | (webhook_off & destination), F.lit("alerting_disabled"))
    )
    patterns = [
        logging_actions,
        mfa_actions,
        alerting_actions,
        evasion._SETTINGS_UPDATED,
        evasion._WEBHOOK_GONE,
        evasion._WEBHOOK_CHANGED,
    ]
    candidates = known.candidates(patterns)
    actor, _ = _subject(api, "actor")
    # the candidate rows first: the details of every other row are never read
    ev = (
        frame.filter(candidates)
        .select(
            *_event_columns(actor),
            "action",
            reason.alias("_reason"),
            # polars' all() skips nulls: a null result counts as failed here
            F.coalesce((F.col("result") == "failure").cast("int"), F.lit(1)).alias("_failed"),
        )
        .filter(F.col("_reason").isNotNull())
    )
    group = [*_PART, "_reason"]
    by_time = W.partitionBy(*group).orderBy("_t")
    ev = ev.select("*", F.lag("_t").over(by_time).alias("_prev"))
    new = F.when(
        F.col("_prev").isNull() | ((F.col("_t") - F.col("_prev")) > ms), F.lit(1)
    ).otherwise(F.lit(0))
    ev = ev.select(
        "*", F.sum(new).over(by_time.rowsBetween(W.unboundedPreceding, 0)).alias("_episode")
    )
    rows = ev.groupBy(*group, "_episode").agg(
        *_window_aggs(api),
        F.array_sort(F.collect_set("action")).alias("_action_list"),
        F.min("_failed").alias("_all_failed"),
    )
    all_failed = F.col("_all_failed") == 1
    severity = F.when(all_failed, F.lit("medium"))
    what = None
    for name, text in evasion._WHAT.items():
        severity = severity.when(F.col("_reason") == name, F.lit(evasion._SEVERITY[name]))
        what = (
            F.when(F.col("_reason") == name, F.lit(text))
            if what is None
            else what.when(F.col("_reason") == name, F.lit(text))
        )
    actions = F.array_join(F.col("_action_list"), ", ")
    summary = _text(
        api,
        F.col("key"),
        ": ",
        F.when(all_failed, F.lit("attempt failed, ")).otherwise(F.lit("")),
        what,
        " (",
        actions,
        ")",
    )
    details = _text(
        api,
        '{"reason":"',
        F.col("_reason"),
        '","actions":',
        F.to_json(F.col("_action_list")),
        ',"failed":',
        F.when(all_failed, F.lit("true")).otherwise(F.lit("false")),
        "}",
    )
    return _findings(api, rows, "defence_evasion", severity, "actor", summary, details)


def _union(parts: Sequence[SparkFrame]) -> SparkFrame:
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


# -- off_hours, unusual_access, privilege_escalation ---------------------------------------


def _local_ms(api: SparkApi, ts: SparkColumn, tz: SparkColumn) -> SparkColumn:
    """Local wall-clock time of ``ts`` in the (per-row) zone ``tz``, as epoch milliseconds.

    ``from_utc_timestamp`` shifts the instant by the zone's offset *at that instant* (DST
    included); ``unix_micros`` reads the shifted value back without the session's time zone.
    DuckDB (SQLFrame) lacks ``from_utc_timestamp``: its ``timezone(tz, ts)`` is the same.
    """
    F = api.F
    local = (
        F.call_function("timezone", tz, ts)
        if api.engine == "duckdb"
        else F.from_utc_timestamp(ts, tz)
    )
    return F.floor(F.unix_micros(local) / 1000).cast("long")


def _date_text(api: SparkApi, ms: SparkColumn) -> SparkColumn:
    """``YYYY-MM-DD`` of an epoch-millisecond column (no session time zone involved)."""
    F = api.F
    days = F.floor(ms / 86_400_000).cast("int")
    return F.date_from_unix_date(days).cast("date").cast("string")


def _needs_session(session: object, detector: str) -> Any:
    if session is None:
        raise DetectorError(
            f"{detector} on spark builds small lookup tables: call it through detect(session, …)"
        )
    return session


def _small(
    api: SparkApi, session: Any, rows: Sequence[tuple[object, ...]], schema: str
) -> SparkFrame:
    """A small lookup table (context, agent families) as a Spark DataFrame, marked for a
    broadcast join (:func:`_few`)."""
    return _few(api, session.createDataFrame(list(rows), schema))


def off_hours(
    api: SparkApi,
    frame: SparkFrame,
    business_hours: str = "08:00-18:00",
    timezone: str = "UTC",
    timezones: Mapping[str, str] | None = None,
    weekends: bool = True,
    holidays: Iterable[date | str] = (),
    actor_types: Iterable[str] = ("user",),
    person_timezones: Mapping[str, str] | None = None,
    hours: Mapping[str, str] | str | None = None,
    workdays: Mapping[str, Iterable[str] | str] | str | None = None,
    *,
    session: object = None,
) -> SparkFrame:
    """:func:`auditlens.detect.off_hours` on Spark.

    The parameters are checked and resolved exactly as on polars
    (:func:`auditlens.detect.behaviour.resolve_off_hours`); the mappings (overrides and
    organization zones, people's zones, hours and workdays per organization) become small
    tables (``session.createDataFrame``, broadcast on Spark) left-joined on the actor's
    email, user id, ``organization:email`` and organization. Local time is per row:
    ``from_utc_timestamp(timestamp, tz)`` (DST included), read back as epoch ms; minute of
    day, weekday and local date are arithmetic on it.
    """
    F = api.F
    plan = behaviour.resolve_off_hours(
        business_hours, timezone, timezones, weekends, holidays, person_timezones, hours, workdays
    )
    key, _ = _subject(api, "actor")
    email = F.lower(F.col("actor_email"))
    acted = F.col("actor_type").isin(*actor_types) & (F.col("result") != "failure")
    ev = frame.filter(acted).select(
        *_event_columns(key),
        "action",
        email.alias("_email"),
        "actor_user_id",
        F.concat(F.col("organization_id"), F.lit(":"), email).alias("_person"),
    )
    # (source, lookup key column, table) in the order polars resolves a zone
    lookups: list[tuple[str, str, dict[str, str]]] = [
        ("override", "_email", plan.mapping),
        ("override", "actor_user_id", plan.mapping),
        ("person", "_person", plan.people),
        ("organization", "organization_id", plan.mapping),
    ]
    lookups = [lk for lk in lookups if lk[2]]  # an empty mapping matches nothing: no join
    orgs = sorted({*plan.org_hours, *plan.org_days})
    if lookups or orgs:
        session = _needs_session(session, "off_hours")
    zones: list[tuple[str, SparkColumn]] = []
    for i, (source_name, col, mapping) in enumerate(lookups):
        table = _small(api, session, sorted(mapping.items()), f"_k{i} string, _z{i} string")
        ev = ev.join(table, F.col(col) == F.col(f"_k{i}"), "left")
        zones.append((source_name, F.col(f"_z{i}")))
    start, end = plan.default_minutes
    start_col, end_col, mask_col = F.lit(start), F.lit(end), F.lit(plan.default_days)
    if orgs:
        rows = [(o, *plan.org_hours.get(o, (None, None)), plan.org_days.get(o)) for o in orgs]
        table = _small(api, session, rows, "_kh string, _hs long, _he long, _hm long")
        ev = ev.join(table, F.col("organization_id") == F.col("_kh"), "left")
        start_col = F.coalesce(F.col("_hs"), start_col)
        end_col = F.coalesce(F.col("_he"), end_col)
        mask_col = F.coalesce(F.col("_hm"), mask_col)
    tz = F.coalesce(*(z for _, z in zones), F.lit(plan.default_zone))
    source: SparkColumn = F.lit("default")
    for name, z in reversed(zones):
        source = F.when(z.isNotNull(), F.lit(name)).otherwise(source)
    ev = ev.select(
        "organization_id",
        "key",
        "timestamp",
        "_t",
        "seq",
        "audit_id",
        "action",
        tz.alias("tz"),
        source.alias("tz_source"),
        start_col.cast("long").alias("_start"),
        end_col.cast("long").alias("_end"),
        mask_col.cast("long").alias("_mask"),
    )
    ev = ev.select("*", _local_ms(api, F.col("timestamp"), F.col("tz")).alias("_lt"))
    days = F.floor(F.col("_lt") / 86_400_000).cast("long")
    ev = ev.select(
        "*",
        (F.floor(F.col("_lt") / 60_000) % 1440).cast("long").alias("_m"),
        ((days + 3) % 7).cast("long").alias("_wd0"),  # 1970-01-01 was a Thursday: Monday = 0
        days.alias("_dn"),  # the local date as a day number: text only once per finding
    )
    workday = (F.floor(F.col("_mask") / F.pow(F.lit(2), F.col("_wd0"))) % 2) == 1
    off = (F.col("_m") < F.col("_start")) | (F.col("_m") >= F.col("_end")) | ~workday
    if plan.holidays:
        epoch = date(1970, 1, 1)
        off = off | F.col("_dn").isin(*sorted((d - epoch).days for d in plan.holidays))
    sensitive = F.col("action").isin(*behaviour.SENSITIVE)
    hits = ev.filter(off).select(
        "*",
        sensitive.cast("int").alias("_sens"),
        (~F.col("action").isin(*behaviour._ROUTINE_AUTH)).cast("int").alias("_chg"),
        F.when(sensitive, F.col("action")).alias("_sact"),
    )
    rows = hits.groupBy("organization_id", "key", "_dn", "tz", "tz_source", "_start", "_end").agg(
        *_window_aggs(api),
        F.max("_sens").alias("_sensitive"),
        F.max("_chg").alias("_change"),
        # collect_set drops nulls on Spark but not on DuckDB: filter them either way
        F.filter(F.array_sort(F.collect_set("_sact")), lambda x: x.isNotNull()).alias("_acts"),
    )
    rows = rows.withColumn("_day", _date_text(api, F.col("_dn") * 86_400_000))
    is_sensitive = F.col("_sensitive") == 1
    severity = (
        F.when(is_sensitive, F.lit("high"))
        .when(F.col("_change") == 1, F.lit("medium"))
        .otherwise(F.lit("low"))
    )
    summary = _text(
        api,
        F.col("key"),
        " acted ",
        F.col("count"),
        " time(s) outside business hours on ",
        F.col("_day"),
        " (",
        F.col("tz"),
        ")",
        F.when(
            is_sensitive, F.concat(F.lit(", including "), F.array_join(F.col("_acts"), ", "))
        ).otherwise(F.lit("")),
    )
    details = _text(
        api,
        '{"timezone": "',
        F.col("tz"),
        '", "timezone_source": "',
        F.col("tz_source"),
        '", "local_date": "',
        F.col("_day"),
        '", "business_hours": "',
        _minutes_text(api, "_start"),
        "-",
        _minutes_text(api, "_end"),
        '"}',
    )
    return _findings(api, rows, "off_hours", severity, "actor", summary, details)


def _minutes_text(api: SparkApi, minutes: str) -> SparkColumn:
    """``HH:MM`` of a minute-of-day column."""
    F = api.F
    h = F.floor(F.col(minutes) / 60).cast("long").cast("string")
    m = (F.col(minutes) % 60).cast("long").cast("string")
    return F.concat(F.lpad(h, 2, "0"), F.lit(":"), F.lpad(m, 2, "0"))


_HOUR_MS = 3_600_000
#: IPv4 → its /24 as ``a.b.c`` (what polars' unusual_access calls the network)
_V4 = r"^([0-9]+\.[0-9]+\.[0-9]+)\.[0-9]+$"


def _families(api: SparkApi, session: Any, vocabulary: Vocabulary) -> SparkFrame | None:
    """``user_agent → family`` for the distinct agents of the entries (:class:`Vocabulary`:
    the small job that also reads the distinct actions).

    Families come from ua-parser and :mod:`auditlens.detect.agents` in Python, which no SQL
    engine runs: the distinct agents (a handful in an audit log) are collected, parsed once
    each, and joined back as a small table. None when there is no agent at all.
    """
    names = vocabulary.agents()
    if not names:
        return None
    rows = [(a, agent_family(a)) for a in names]
    return _small(api, session, rows, "_ua string, family string")


def _actor_hash(api: SparkApi) -> SparkColumn:
    """``_h``, the first partition column of every window of :func:`unusual_access`: a long
    hash of (organization, actor) on Spark, whose sort compares an 8-byte prefix of the
    first key (an organization id's prefix hardly tells two actors apart). The real keys
    follow it in every partition, so findings never depend on it; one and the same ``_h``
    everywhere, so that the one (organization, actor) exchange serves every window.
    SQLFrame's engines get a constant."""
    F = api.F
    if api.engine == "spark":
        return F.xxhash64(F.col("organization_id"), F.col("key"))
    return F.lit(0).cast("long")


#: the kinds of an unusual_access row: a first use (new network / client), a wake-up
_FIRST_USE, _WAKE_UP = 0, 1


def unusual_access(
    api: SparkApi,
    frame: SparkFrame,
    min_history: int = 20,
    dormant: str | timedelta = "14d",
    new_network: bool = True,
    new_agent: bool = True,
    after_suspension: bool = True,
    *,
    session: object = None,
    vocabulary: Vocabulary | None = None,
) -> SparkFrame:
    """:func:`auditlens.detect.unusual_access` on Spark.

    One pipeline over the entries, shuffled once by (organization, actor): an actor's
    history is ``row_number`` over (organization, actor) in evidence order (time, seq,
    audit id) and its dormancy a ``lag`` over the same window; the first use of a network or
    client family is a ``min`` over the partition (organization, actor, network/family) —
    no join — and a row belongs to the first use when it is within an hour of it. Every
    window is partitioned by a hash of the actor first (:func:`_actor_hash`: cheap sorts,
    and the one exchange serves them all). The rows that are a first use or a wake-up are
    kept, one row per kind (``explode``; a row can be both); episodes are ``lag`` plus a
    running sum per (organization, actor, kind) (a wake-up is an episode of its own), and
    one ``groupBy`` on (organization, actor, kind, episode) builds both kinds of finding.
    User-agent families are Python (ua-parser, which no SQL engine runs): they are computed
    on the *distinct* agents, collected once while the plan is built (a small Spark job),
    and joined back as a small table (:func:`_families`). Activity after a suspension or
    removal: one equi-join on the stopped identity.
    """
    F, W = api.F, api.Window
    min_history = positive_int(min_history, "min_history")
    quiet = _ms(parse_window(dormant, "dormant"))
    key, _ = _subject(api, "actor")
    users = frame.filter((F.col("actor_type") == "user") & (F.col("result") != "failure"))
    ip = F.col("ip_address")
    v4 = F.regexp_extract(ip, _V4, 1)  # "" when ip is no IPv4 address (one regex per row)
    net = F.when(v4 != "", v4).otherwise(ip)
    no_family = F.lit(None).cast("string").alias("family")
    ev = users.select(
        "organization_id",
        key.alias("key"),
        "timestamp",
        "_t",
        F.coalesce(F.col("seq"), F.lit(0)).alias("_s"),  # the evidence order's seq
        "audit_id",
        net.alias("net"),
        "user_agent",
        *([] if new_agent else [no_family]),
    )
    if new_agent:
        known = _vocabulary(api, frame, vocabulary)
        families = _families(api, _needs_session(session, "unusual_access"), known)
        agent = F.col("user_agent")
        # an agent the vocabulary never saw (a remote lake grown since it was read) is a
        # family of its own, named after the agent: a new client is told, never missed (one
        # polars would file with an older family is told too); a blank one ("", "[ ]") is
        # no client, as agent_family says
        unparsed = F.concat(F.lit("unparsed:"), F.lower(agent))
        some = F.regexp_replace(agent, r"[\[\]\s]", "") != ""
        if families is None:
            family = F.when(some, unparsed)
        else:
            ev = ev.join(families, agent == F.col("_ua"), "left")
            family = F.when(F.col("_ua").isNull() & some, unparsed).otherwise(F.col("family"))
        ev = ev.select(
            *(c for c in ev.columns if c not in ("_ua", "family")), family.alias("family")
        )
    part = ("_h", *_PART)
    ev = ev.select("*", _actor_hash(api).alias("_h"))
    order = W.partitionBy(*part).orderBy("_t", "_s", "audit_id")
    ev = ev.select(
        "*",
        (F.row_number().over(order) - 1).alias("_prior"),
        F.lag("_t").over(order).alias("_prev_t"),
        F.lag("timestamp").over(order).alias("_prev_ts"),
    )
    # a wake-up keeps the actor's previous entry (``_wake_t``, ``_wake_ts``), other rows null:
    # two columns through the sorts that follow, not three
    gap = F.col("_t") - F.col("_prev_t")
    woke = F.coalesce((gap >= quiet) & (F.col("_prior") >= min_history), F.lit(False))
    # what every row carries through the windows that follow
    carried = (*part, "timestamp", "_t", "_s", "audit_id", "net", "family")
    ev = ev.select(
        *carried,
        "_prior",
        F.when(woke, F.col("_prev_t")).alias("_wake_t"),
        F.when(woke, F.col("_prev_ts")).alias("_wake_ts"),
    )
    flags = []
    for col, enabled in (("net", new_network), ("family", new_agent)):
        if not enabled:
            flags.append(F.lit(0))
            continue
        # first use of this network / family by an actor with history, and the hour after
        window = W.partitionBy(*part, col)
        first = F.min("_t").over(window)
        seasoned = F.min("_prior").over(window) >= min_history
        hit = F.col(col).isNotNull() & seasoned & (F.col("_t") <= first + F.lit(_HOUR_MS))
        flags.append(F.coalesce(hit, F.lit(False)).cast("int"))
    ev = ev.select(
        *carried,
        "_wake_t",
        "_wake_ts",
        flags[0].alias("_in_nn"),
        flags[1].alias("_in_nf"),
    )
    first_use = (F.col("_in_nn") == 1) | (F.col("_in_nf") == 1)
    woken = F.col("_wake_t").isNotNull()
    kinds = F.array(F.when(first_use, F.lit(_FIRST_USE)), F.when(woken, F.lit(_WAKE_UP)))
    rows = ev.filter(first_use | woken).select("*", F.explode(kinds).alias("_k"))
    rows = rows.filter(F.col("_k").isNotNull())
    # episodes: first uses an hour apart or less merge, every wake-up is one of its own
    by_kind = W.partitionBy(*part, "_k").orderBy("_t", "_s", "audit_id")
    wake_up = F.col("_k") == _WAKE_UP
    rows = rows.select(
        "*",
        F.lag("_t").over(by_kind).alias("_hp"),
        # a wake-up's window starts at the actor's previous entry
        F.when(wake_up, F.col("_wake_t")).otherwise(F.col("_t")).alias("_from"),
        F.when(wake_up, F.col("_wake_ts")).otherwise(F.col("timestamp")).alias("_from_ts"),
    )
    new = F.when(
        wake_up | F.col("_hp").isNull() | ((F.col("_t") - F.col("_hp")) > _HOUR_MS), F.lit(1)
    ).otherwise(F.lit(0))
    rows = rows.select(
        "*", F.sum(new).over(by_kind.rowsBetween(W.unboundedPreceding, 0)).alias("_episode")
    )

    def first_where(flag: str, value: str) -> SparkColumn:
        items = F.collect_list(
            F.when(
                F.col(flag) == 1,
                F.struct(
                    F.col("_t").alias("t"),
                    F.col("_s").alias("s"),
                    F.col("audit_id").alias("a"),
                    F.col(value).alias("v"),
                ),
            )
        )
        # collect_list drops nulls on Spark but not on DuckDB: filter them either way
        kept = F.filter(F.array_sort(items), lambda x: x.isNotNull())
        # guarded: element_at of an empty array is an error under ANSI mode (Spark 4)
        return F.when(F.max(flag) == 1, F.element_at(F.transform(kept, lambda x: x["v"]), 1))

    # the groups hold the windows' partition keys: no second exchange
    rows = rows.groupBy(*part, "_k", "_episode").agg(
        *_span_aggs(api, since=("_from_ts", "_from"), seq="_s"),
        F.max("_in_nn").alias("_nn"),
        F.max("_in_nf").alias("_nf"),
        first_where("_in_nn", "net").alias("_net"),
        first_where("_in_nf", "family").alias("_fam"),
    )
    wake_up = F.col("_k") == _WAKE_UP
    nn, nf = F.col("_nn") == 1, F.col("_nf") == 1
    both = nn & nf
    what = (
        F.when(
            both,
            _text(
                api, "a new network (", F.col("_net"), ") with a new client (", F.col("_fam"), ")"
            ),
        )
        .when(nn, _text(api, "a new network (", F.col("_net"), ")"))
        .otherwise(_text(api, "a new client (", F.col("_fam"), ")"))
    )
    reason = (
        F.when(wake_up, F.lit("dormant_account"))
        .when(both, F.lit("new_network_and_agent"))
        .when(nn, F.lit("new_network"))
        .otherwise(F.lit("new_agent"))
    )
    days = F.floor((F.col("_we") - F.col("_ws")) / 86_400_000).cast("long")
    summary = F.when(
        wake_up, _text(api, F.col("key"), " acted again after ", days, " days of silence")
    ).otherwise(_text(api, F.col("key"), " acted from ", what))
    parts = [
        _findings(
            api,
            rows,
            "unusual_access",
            F.when(both & ~wake_up, F.lit("high")).otherwise(F.lit("medium")),
            "actor",
            summary,
            _text(api, '{"reason": "', reason, '"}'),
        )
    ]
    if after_suspension:
        parts.append(_after_suspension(api, frame, key))
    return _union(parts)


def _keys(api: SparkApi, *pairs: tuple[str, SparkColumn]) -> SparkColumn:
    """One row per (kind, value) of ``pairs`` (``explode``): ``kind:value``, null when the
    value is null, so that one equi-join matches any of several identities."""
    F = api.F
    keys = [F.when(v.isNotNull(), F.concat(F.lit(f"{k}:"), v)) for k, v in pairs]
    return F.explode(F.array(*keys))


def _after_suspension(api: SparkApi, frame: SparkFrame, key: SparkColumn) -> SparkFrame:
    F = api.F
    stops = frame.filter(
        F.col("action").isin("user.suspended", "user.removed") & (F.col("result") == "success")
    ).select(
        F.col("organization_id").alias("_sorg"),
        F.col("_t").alias("_st"),
        F.col("audit_id").alias("_stop_id"),
        F.col("action").alias("_stop_action"),
        _keys(api, ("i", F.col("resource_id")), ("e", F.lower(F.col("resource_name")))).alias(
            "_sk"
        ),
    )
    acts = frame.filter((F.col("actor_type") == "user") & (F.col("result") != "failure")).select(
        "organization_id",
        "timestamp",
        "_t",
        "seq",
        "audit_id",
        key.alias("key"),
        _keys(api, ("i", F.col("actor_user_id")), ("e", F.lower(F.col("actor_email")))).alias(
            "_ak"
        ),
    )
    stops = _few(api, stops)  # suspensions and removals: few
    # an equi-join on the stopped identity (user id or email), never a cross product
    same = (F.col("organization_id") == F.col("_sorg")) & (F.col("_ak") == F.col("_sk"))
    cols = ["organization_id", "key", "timestamp", "_t", "seq", "audit_id", "_st", "_stop_id"]
    hits = (
        acts.join(stops, same)
        .filter(F.col("_t") > F.col("_st"))
        .select(*cols, "_stop_action")
        .distinct()
    )
    rows = hits.groupBy("organization_id", "key", "_stop_id").agg(
        *_window_aggs(api),
        F.min("_stop_action").alias("_stop_action"),
        F.min("_st").alias("_st"),
    )
    summary = _text(
        api,
        F.col("key"),
        " performed ",
        F.col("count"),
        " action(s) after ",
        F.col("_stop_action"),
        " at ",
        _date_text(api, F.col("_st")),
        " ",
        _hh_mm(api, "_st"),
        " UTC",
    )
    details = _text(
        api,
        '{"reason": "activity_after_',
        F.regexp_replace(F.col("_stop_action"), r"^user\.", ""),
        '", "stop_audit_id": "',
        F.col("_stop_id"),
        '"}',
    )
    return _findings(api, rows, "unusual_access", F.lit("critical"), "actor", summary, details)


def _last_segment(api: SparkApi, col: SparkColumn) -> SparkColumn:
    """``arn:aws:iam::1:user/alice`` → ``alice`` (lower case)."""
    F = api.F
    return F.element_at(F.split(F.lower(col), "/"), -1)


def _privilege(api: SparkApi) -> SparkColumn:
    """The privilege a grant names (``details.after.role``, ``role``, ``policy_arn``…)."""
    d = api.F.col("details")
    return api.F.coalesce(*(_json_text(api, d, p) for p in escalation._PRIVILEGE_PATHS))


def privilege_escalation(
    api: SparkApi,
    frame: SparkFrame,
    window: str | timedelta = "60m",
    grant_actions: str = escalation.GRANT_PATTERN,
    create_actions: str = escalation.CREATE_PATTERN,
    admin_privileges: str = escalation.ADMIN_PATTERN,
    *,
    vocabulary: Vocabulary | None = None,
) -> SparkFrame:
    """:func:`auditlens.detect.privilege_escalation` on Spark (action patterns matched against
    the distinct actions, :class:`Vocabulary`; privileges with ``rlike`` on the few grants;
    creation–grant pairs by equi-joins on the principal plus a range filter; a principal's
    first grant by time, seq, audit id)."""
    F = api.F
    span = parse_window(window)
    ms = _ms(span)
    check_regex(admin_privileges, "admin_privileges")
    known = _vocabulary(api, frame, vocabulary)
    is_grant = known.action_matches(grant_actions, "grant_actions")
    is_create = known.action_matches(create_actions, "create_actions")
    d = F.col("details")
    privilege = _privilege(api)
    target = F.coalesce(*(_json_text(api, d, p) for p in escalation._TARGET_PATHS))
    ev = frame.filter((F.col("result") == "success") & (is_grant | is_create)).select(
        "organization_id",
        "timestamp",
        "_t",
        F.coalesce(F.col("seq"), F.lit(0)).alias("_s"),
        "audit_id",
        "action",
        "actor_email",
        "actor_user_id",
        is_grant.alias("_grant"),
        is_create.alias("_create"),
        privilege.alias("_priv"),
        # the privilege built again: SQLFrame resolves one expression used twice only once
        F.coalesce(_privilege(api).rlike(admin_privileges), F.lit(False)).alias("_admin"),
        F.lower(F.coalesce(target, F.col("resource_name"))).alias("_tname"),
        F.lower(F.col("resource_id")).alias("_tid"),
        F.coalesce(F.col("actor_email"), F.col("actor_user_id"), F.lit("(unknown)")).alias(
            "_actor"
        ),
    )
    return _union([_self_grants(api, ev), _new_admins(api, ev, ms, span)])


def _self_grants(api: SparkApi, ev: SparkFrame) -> SparkFrame:
    F = api.F
    me = [
        F.lower(F.col("actor_email")),
        F.lower(F.col("actor_user_id")),
        _last_segment(api, F.col("actor_user_id")),
    ]
    is_me = F.lit(False)
    for target in ("_tname", "_tid"):
        for mine in me:
            is_me = is_me | F.coalesce(F.col(target) == mine, F.lit(False))
    hits = ev.filter(F.col("_grant") & is_me & (F.col("_admin") | F.col("_priv").isNull()))
    rows = hits.select(
        "organization_id",
        F.col("_actor").alias("key"),
        F.col("timestamp").alias("window_start"),
        F.col("timestamp").alias("window_end"),
        F.col("_t").alias("_ws"),
        F.lit(1).alias("count"),
        F.array(F.col("audit_id")).alias("audit_ids"),
        "action",
        F.coalesce(F.col("_priv"), F.lit("(not recorded)")).alias("_granted"),
        "_admin",
    )
    details = F.to_json(
        F.struct(
            F.lit("self_grant").alias("reason"),
            F.col("_granted").alias("granted"),
            F.col("action").alias("action"),
        )
    )
    return _findings(
        api,
        rows,
        "privilege_escalation",
        F.when(F.col("_admin"), F.lit("critical")).otherwise(F.lit("high")),
        "actor",
        _text(
            api, F.col("key"), " granted themselves ", F.col("_granted"), " (", F.col("action"), ")"
        ),
        details,
    )


def _new_admins(api: SparkApi, ev: SparkFrame, ms: int, span: timedelta) -> SparkFrame:
    """Principals made admin within ``span`` of their creation: one equi-join of the
    creations with the admin-like grants on the principal (by name or id), where a
    creation that already carries an admin privilege is its own grant."""
    F = api.F

    def self_key(on: SparkColumn) -> tuple[str, SparkColumn]:
        return "s", F.when(on, F.col("audit_id"))

    # the principal as the creation names it, matched by name or by id: "n" name to name,
    # "i" id to id, "x" the creation's name to the grant's id; "s" a creation made with an
    # admin privilege already (ordered among the grants by its own time, seq and id)
    made = ev.filter(F.col("_create")).select(
        F.col("organization_id"),
        F.col("timestamp").alias("_made_at"),
        F.col("_t").alias("_mt"),
        F.col("audit_id").alias("_made_id"),
        F.col("_actor").alias("_creator"),
        # a creation that names no principal still has a subject (and a finding id)
        F.coalesce(F.col("_tname"), F.col("_tid"), F.lit("(unknown)")).alias("_principal"),
        _keys(
            api,
            ("n", F.col("_tname")),
            ("i", F.col("_tid")),
            ("x", F.col("_tname")),
            self_key(F.lit(True)),
        ).alias("_mk"),
    )
    grant = F.col("_grant")
    grants = ev.filter(F.col("_admin") & (grant | F.col("_create"))).select(
        F.col("organization_id").alias("_g_org"),
        F.col("timestamp").alias("_granted_at"),
        F.col("_t").alias("_gt"),
        F.col("audit_id").alias("_gid"),
        F.col("_s").alias("_gs"),
        F.col("_actor").alias("_granter"),
        F.col("_priv").alias("_granted"),
        _keys(
            api,
            ("n", F.when(grant, F.col("_tname"))),
            ("i", F.when(grant, F.col("_tid"))),
            ("x", F.when(grant, F.col("_tid"))),
            self_key(F.col("_create")),
        ).alias("_gk"),
    )
    same = (F.col("organization_id") == F.col("_g_org")) & (F.col("_mk") == F.col("_gk"))
    in_window = (F.col("_gt") >= F.col("_mt")) & (F.col("_gt") - F.col("_mt") <= ms)
    hits = (
        made.join(_few(api, grants), same)
        .filter(in_window)
        .select(
            "organization_id",
            "_principal",
            "_made_at",
            "_mt",
            "_made_id",
            "_creator",
            "_granted_at",
            "_gt",
            "_gs",
            "_gid",
            # the creation as its own grant is evidence once, as the creation
            F.when(~F.col("_gk").startswith("s:"), F.col("_gid")).alias("_grant_id"),
            "_granter",
            "_granted",
        )
        .distinct()
    )
    # the first grant by time, seq, audit id names the granter and the privilege
    first = F.array_sort(
        F.collect_list(
            F.struct(
                F.col("_gt").alias("t"),
                F.col("_gs").alias("s"),
                F.col("_gid").alias("a"),
                F.col("_granter").alias("by"),
                F.col("_granted").alias("what"),
            )
        )
    )
    later = F.array_sort(
        F.collect_list(
            F.when(
                F.col("_grant_id").isNotNull(),
                F.struct(
                    F.col("_gt").alias("t"), F.col("_gs").alias("s"), F.col("_gid").alias("a")
                ),
            )
        )
    )
    rows = hits.groupBy("organization_id", "_principal", "_made_id").agg(
        F.min("_made_at").alias("window_start"),
        F.max("_granted_at").alias("window_end"),
        F.min("_mt").alias("_ws"),
        F.max("_gt").alias("_we"),
        F.min("_creator").alias("_creator"),
        F.element_at(F.transform(first, lambda x: x["by"]), 1).alias("_granter"),
        F.element_at(F.transform(first, lambda x: x["what"]), 1).alias("_granted"),
        # collect_list drops nulls on Spark but not on DuckDB: filter them either way
        F.transform(F.filter(later, lambda x: x.isNotNull()), lambda x: x["a"]).alias("_grants"),
    )
    evidence = F.concat(F.array(F.col("_made_id")), F.col("_grants"))
    rows = rows.select(
        "organization_id",
        F.col("_principal").alias("key"),
        "window_start",
        "window_end",
        "_ws",
        "_creator",
        "_granter",
        "_granted",
        evidence.alias("audit_ids"),
        F.size(F.concat(F.array(F.col("_made_id")), F.col("_grants"))).alias("count"),
        F.floor((F.col("_we") - F.col("_ws")) / 60_000).cast("long").alias("_minutes"),
    )
    summary = _text(
        api,
        F.col("key"),
        " was given ",
        F.col("_granted"),
        " by ",
        F.col("_granter"),
        " ",
        F.col("_minutes"),
        " minute(s) after ",
        F.col("_creator"),
        f" created it (within {human(span)})",
    )
    details = F.to_json(
        F.struct(
            F.lit("new_principal_admin").alias("reason"),
            F.col("_granted").alias("granted"),
            F.col("_creator").alias("created_by"),
            F.col("_granter").alias("granted_by"),
            F.col("_minutes").alias("minutes_after_creation"),
        )
    )
    return _findings(api, rows, "privilege_escalation", F.lit("high"), "actor", summary, details)


#: detector name → its port to the PySpark DataFrame API.
PORTED: dict[str, Callable[..., SparkFrame]] = {
    "failed_login_spikes": failed_login_spikes,
    "brute_force_success": brute_force_success,
    "password_spray": password_spray,
    "bulk_deletions": bulk_deletions,
    "failure_bursts": failure_bursts,
    "mass_export": mass_export,
    "defence_evasion": defence_evasion,
    "off_hours": off_hours,
    "unusual_access": unusual_access,
    "privilege_escalation": privilege_escalation,
}


#: ported detectors that build small lookup tables with the session
_SESSION_USERS = frozenset({"off_hours", "unusual_access"})
#: ported detectors that read the distinct actions or agents (:class:`Vocabulary`)
_VOCABULARY_USERS = frozenset(
    {"mass_export", "defence_evasion", "privilege_escalation", "unusual_access"}
)


def detect(
    session: object,
    df: SparkFrame,
    detectors: str | Sequence[str] = "all",
    *,
    context: Mapping[str, Mapping[str, Any]] | None = None,
    **params: Mapping[str, object],
) -> SparkFrame:
    """Run detectors on a Spark (or SQLFrame) DataFrame of entries.

    ``detectors``: ``"all"`` (every detector in :data:`PORTED`: all of
    :data:`auditlens.detect.DETECTORS`), one name or a list of names; ``params``: per
    detector name, its parameters (as in :func:`auditlens.detect.run_all`'s ``config``),
    e.g. ``failed_login_spikes={"threshold": 3}``. ``context``: the organization context
    as detector parameters, what :func:`auditlens.context.detector_context` returns for a
    store (``{"off_hours": {"timezones": …, "person_timezones": …, "hours": …,
    "workdays": …}}``), overridden by ``params`` key by key as ``store.detect`` does. Its
    mappings become small Spark tables (``session.createDataFrame``) joined to the
    entries, so ``session`` must be the session that owns ``df``. The result is a lazy
    DataFrame with the columns of ``FINDING_SCHEMA``; one small job runs while the plan is
    built when a detector needs the distinct actions or user agents (``mass_export``,
    ``defence_evasion``, ``privilege_escalation``, ``unusual_access``: :class:`Vocabulary`).
    :func:`to_polars` collects it.

    Example:
        >>> detect(None, object())
        Traceback (most recent call last):
        ...
        auditlens.errors.DetectorError: not a Spark DataFrame: object (use PySpark or SQLFrame)
    """
    api = spark_api(df)
    names = _ported_names(detectors, [*params, *(context or {})])
    if not names:
        raise DetectorError("detectors needs at least one detector name")
    frame = _prepare(api, df)
    # one small job for every detector of this call that matches patterns or parses agents
    vocabulary = Vocabulary(api, frame, agents="unusual_access" in names)
    parts = []
    for name in names:
        given = _merged((context or {}).get(name, {}), params.get(name, {}))
        if name in _SESSION_USERS:
            given["session"] = session
        if name in _VOCABULARY_USERS:
            given["vocabulary"] = vocabulary
        try:
            parts.append(PORTED[name](api, frame, **given))
        except TypeError as exc:
            raise DetectorError(f"detector {name}: {exc}") from None
    return _union(parts)


def _ported_names(detectors: str | Iterable[str], named: Iterable[str]) -> list[str]:
    """The detector names ``detectors`` asks for (``"all"``: every ported one); a
    :class:`DetectorError` naming any of them or of ``named`` (the detectors given
    parameters or context) that is not ported."""
    names = (
        list(PORTED)
        if detectors == "all"
        else [detectors]
        if isinstance(detectors, str)
        else list(detectors)
    )
    unknown = [n for n in [*names, *named] if n not in PORTED]
    if unknown:
        raise DetectorError(
            f"detector(s) {', '.join(sorted(set(unknown)))} not available on spark; "
            f"ported: {', '.join(PORTED)}"
        )
    return names


def _merged(stored: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``stored`` parameters overridden by ``given``; mappings merged key by key (as
    :func:`auditlens.context.with_context` does)."""
    out = dict(stored)
    for k, v in given.items():
        old = out.get(k)
        out[k] = {**old, **v} if isinstance(v, Mapping) and isinstance(old, Mapping) else v
    return out


def to_polars(findings: SparkFrame) -> pl.DataFrame:
    """Collect a Spark findings DataFrame into a polars findings frame (``FINDING_SCHEMA``),
    sorted by ``finding_id``. Naive timestamps (PySpark's ``collect``) are read as UTC:
    run the session with ``spark.sql.session.timeZone=UTC``.

    Example:
        >>> to_polars(object())
        Traceback (most recent call last):
        ...
        auditlens.errors.DetectorError: not a Spark DataFrame: object (use PySpark or SQLFrame)
    """
    api = spark_api(findings)
    selected = findings.select(*FINDING_SCHEMA)
    if api.engine == "spark":  # Arrow batches: no Python object per row (10× on 300k rows)
        return _from_arrow(selected.toArrow())
    rows = [r.asDict() for r in selected.collect()]
    for row in rows:
        row["audit_ids"] = list(row["audit_ids"] or [])
    frame = pl.DataFrame(rows, schema=FINDING_SCHEMA, orient="row")
    return frame.sort("finding_id")


def _from_arrow(table: Any) -> pl.DataFrame:
    """A findings frame from the Arrow table of Spark's ``toArrow`` (timestamps carry the
    session time zone; one without a zone is read as UTC, as :func:`to_polars` does),
    sorted by ``finding_id``."""
    frame = pl.DataFrame(pl.from_arrow(table))
    naive = [
        pl.col(c).dt.replace_time_zone("UTC")
        for c, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None
    ]
    typed = frame.with_columns(naive).select(pl.col(c).cast(t) for c, t in FINDING_SCHEMA.items())
    return typed.sort("finding_id")


# -- sessions and the lake -------------------------------------------------------------------

_NO_PYSPARK = "Spark needs pyspark: pip install 'auditlens[spark]' (and Java 17 or later)"
#: the entry columns as Spark SQL types (a lake file holds them, ``ip_key`` and no partitions)
_SQL_TYPES = {"string": "STRING", "int64": "BIGINT", "timestamp[ms, tz=UTC]": "TIMESTAMP"}


def _session_class() -> Any:
    try:
        return importlib.import_module("pyspark.sql").SparkSession
    except ImportError:
        raise ConfigError(_NO_PYSPARK) from None


def local_session(
    cores: int = 2,
    *,
    memory: str = "2g",
    conf: Mapping[str, str] | None = None,
    app_name: str = "auditlens",
) -> Any:
    """A Spark session on this machine (``local[cores]``), set up as the detectors expect.

    UTC session time zone (:func:`to_polars` reads Spark's naive times as UTC), no web UI,
    no console progress bar, ``8 × cores`` shuffle partitions that adaptive execution coalesces
    (the default 200 is for clusters; ``cores`` alone spills the sorts of big local lakes),
    ``memory`` for the driver (it is also the executor here), Spark's log at ERROR. ``conf``
    adds or overrides settings. An existing session of this process is returned as it is
    (``getOrCreate``): settings fixed at JVM start (memory) then keep their first value.

    Raises:
        ConfigError: pyspark is not installed, or no ``java`` is on ``PATH``/``JAVA_HOME``.

    Example:
        >>> local_session(cores=0)
        Traceback (most recent call last):
        ...
        auditlens.errors.ConfigError: cores must be 1 or more, got 0
    """
    if cores < 1:
        raise ConfigError(f"cores must be 1 or more, got {cores}")
    session_class = _session_class()
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and Path(java_home, "bin", "java").exists()):
        raise ConfigError(
            "a local Spark session needs Java 17 or later: none on PATH or in JAVA_HOME "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        # 8 per core, which adaptive execution coalesces back for small data: a sort of 10M
        # entries in 2 partitions overflows the memory of each task and spills (measured:
        # unusual_access on 10M 37.8 s with 2 partitions, 27.6 s with 16)
        "spark.sql.shuffle.partitions": str(8 * cores),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.driver.memory": memory,
        **dict(conf or {}),
    }
    builder = session_class.builder.master(f"local[{cores}]").appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def remote_session(url: str) -> Any:
    """A Spark Connect session (``sc://host:15002``), its time zone set to UTC.

    Raises:
        ConfigError: ``url`` is not ``sc://…``, the Connect client's packages are missing
            (``pip install 'pyspark[connect]'``), or the server cannot be reached.

    Example:
        >>> remote_session("http://spark:15002")
        Traceback (most recent call last):
        ...
        auditlens.errors.ConfigError: Spark Connect URL must start with sc://, got 'http://spark:15002'
    """
    if not url.startswith("sc://"):
        raise ConfigError(f"Spark Connect URL must start with sc://, got {url!r}")
    session_class = _session_class()
    missing = "Spark Connect needs its client packages: pip install 'pyspark[connect]'"
    if importlib.util.find_spec("grpc") is None:  # pyspark would sys.exit(0) in some hosts
        raise ConfigError(f"{missing} (grpcio is missing)")
    try:
        session = session_class.builder.remote(url).getOrCreate()
        session.conf.set("spark.sql.session.timeZone", "UTC")
    except (ImportError, SystemExit) as exc:  # pyspark exits when its doctest check fails
        raise ConfigError(f"{missing} ({exc or 'a package is missing'})") from None
    except Exception as exc:  # py4j/gRPC errors: the server is unreachable or refused us
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"Spark Connect at {url}: cannot connect ({first})") from None
    return session


def _utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _remote_partition(url: str) -> str:
    """A remote lake's time partition from its manifests, read through
    :class:`~auditlens.lake.layout.LakeStorage` (``s3://``, ``s3a://``, ``s3n://``).

    Raises:
        ConfigError: another scheme (``gs://``, ``abfss://``, ``dbfs:``…) or storage this
            process cannot reach: the caller names the partition (``partition=``) rather
            than a guess that matches no file.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("s3", "s3a", "s3n"):
        try:
            return read_state(LakeStorage.at(f"s3://{rest}")).partition
        except Exception as exc:  # the cluster may reach storage we don't
            reason = f"its manifests could not be read here ({exc})"
    else:
        reason = "this process reads manifests on s3:// only"
    raise ConfigError(
        f"{url}: pass partition='date' or partition='month' (the lake's time partition); {reason}"
    )


def read_lake(
    session: Any,
    path: str | os.PathLike[str],
    *,
    organization_id: str | Sequence[str] | None = None,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
    partition: str | None = None,
) -> SparkFrame:
    """The entries of a lake (:func:`auditlens.sync_lake`'s folder) as a Spark DataFrame.

    Columns: :data:`auditlens.frames.COLUMNS` (``timestamp`` a timestamp, UTC; ``seq`` a
    long), what :func:`detect` takes. A local folder is read through its manifests:
    exactly the files they list, never a half-written or replaced file. A URI (``s3a://…``,
    ``abfss://…``, ``dbfs:/…``: whatever the session's file systems read) is read as
    ``<path>/organization_id=*/<partition>=*/*.parquet`` and deduplicated on
    ``(organization_id, seq)``, since a reader that lists folders during a compaction may
    see a file and its replacement; ``partition`` names the lake's time partition there
    (``date`` or ``month``; by default the manifests' own: a remote lake's are read through
    ``pyarrow.fs`` for ``s3://``/``s3a://``, other schemes need ``partition=``).
    ``organization_id``, ``start`` (inclusive) and ``end`` (exclusive; naive times are UTC)
    prune partitions and filter rows.

    Raises:
        ArchiveError: a local ``path`` is not a folder or its manifests are unreadable.
        ConfigError: ``partition`` is neither ``date`` nor ``month``, or is not given for a
            remote lake whose manifests this process cannot read.

    Example:
        >>> read_lake(None, "/no/such/lake")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        auditlens.errors.ArchiveError: /no/such/lake: no such folder (a lake is a folder ...)
    """
    text = os.fspath(path)
    remote = "://" in text or text.startswith("dbfs:")
    if remote:
        time_col = partition or _remote_partition(text)
        root = text.rstrip("/")
        files = [f"{root}/organization_id=*/{time_col}=*/*.parquet"]
    else:
        folder = Path(text)
        if not folder.is_dir():
            raise ArchiveError(f"{folder}: no such folder (a lake is a folder sync_lake wrote)")
        state = read_state(folder)
        time_col = partition or state.partition
        root = str(folder)
        files = [str(folder / f) for f in sorted(state.files)]
    if time_col not in ("date", "month"):
        raise ConfigError(f"partition must be 'date' or 'month', got {time_col!r}")
    columns = [f"`{f.name}` {_SQL_TYPES[str(f.type)]}" for f in FRAME_SCHEMA]
    schema = ", ".join([*columns, "`ip_key` STRING", f"`{time_col}` STRING"])
    if not files:  # a lake synced from an empty store
        return session.createDataFrame([], schema).select(*COLUMNS)
    F = importlib.import_module("pyspark.sql.functions")
    df = session.read.schema(schema).option("basePath", root).parquet(*files)
    fmt = "%Y-%m-%d" if time_col == "date" else "%Y-%m"
    if organization_id is not None:
        orgs = [organization_id] if isinstance(organization_id, str) else list(organization_id)
        df = df.filter(F.col("organization_id").isin(*orgs))
    if start is not None:
        lo = _utc(start)
        df = df.filter((F.col(time_col) >= lo.strftime(fmt)) & (F.col("timestamp") >= F.lit(lo)))
    if end is not None:
        hi = _utc(end)
        df = df.filter((F.col(time_col) <= hi.strftime(fmt)) & (F.col("timestamp") < F.lit(hi)))
    if remote:
        df = df.dropDuplicates(["organization_id", "seq"])
    return df.select(*COLUMNS)


def lake_context(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The detectors' context (time zones, hours, people) from a lake's context entries, as
    :func:`auditlens.context.detector_context` reads it from a store (read with polars: a
    handful of rows, pushed into the Parquet scan).

    Example:
        >>> import tempfile
        >>> lake_context(tempfile.mkdtemp())["off_hours"]["timezones"]
        {}
    """
    from auditlens.context import (  # lazy: context and lake are needed only here
        CONTEXT_ACTIONS,
        context_of,
        entries_of_frame,
    )
    from auditlens.lake.read import open_lake  # lazy: as above

    rows = open_lake(path).query(actions=list(CONTEXT_ACTIONS), order="asc")
    return context_of(entries_of_frame(rows))


def detect_lake(
    path: str | os.PathLike[str],
    detectors: str | Sequence[str] = "all",
    *,
    params: Mapping[str, Mapping[str, object]] | None = None,
    since: timedelta | None = None,
    remote: str | None = None,
    session: Any = None,
    context: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[pl.DataFrame, int]:
    """Run the ported detectors on a lake with Spark: ``(findings, entries read)``.

    What ``auditlens detect --engine spark --lake PATH`` runs. The session is ``session``,
    else a Spark Connect one for ``remote`` (``sc://…``), else the process's active session,
    else a new :func:`local_session`; one this call starts, it also stops. ``since``: only
    entries newer than now − ``since``.
    The findings are a polars findings frame (:func:`to_polars`), the same rows as
    :func:`auditlens.detect.run_all` on the same entries for the ported detectors.

    Raises:
        ConfigError: no pyspark/Java, or the Connect server is unreachable.
        DetectorError: a detector that is not ported (see :data:`PORTED`).

    Example:
        >>> detect_lake("/no/such/lake", ["sigma_rules"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        auditlens.errors.DetectorError: detector(s) sigma_rules not available on spark; ported: ...
    """
    names = _ported_names(detectors, [*(params or {})])
    owned = session is None
    if remote and session is None:
        session = remote_session(remote)
    elif session is None:  # this process's session if it has one (kept running), else a new one
        active = _session_class().getActiveSession()
        owned = active is None
        session = local_session() if owned else active
    try:
        start = datetime.now(UTC) - since if since is not None else None
        entries = read_lake(session, path, start=start)
        if context is None:  # the organizations' context, from the lake's own context entries
            context = lake_context(path)
        per: dict[str, Any] = {k: dict(v) for k, v in (params or {}).items()}
        found = detect(session, entries, names, context=context, **per)
        return to_polars(found), int(entries.count())
    finally:
        if owned:
            session.stop()
