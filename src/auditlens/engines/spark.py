"""Detectors on the PySpark DataFrame API: the same findings as :mod:`auditlens.detect`.

:func:`detect` takes a Spark DataFrame of entries (the columns of
:data:`auditlens.frames.COLUMNS`, ``timestamp`` a timestamp) and returns a Spark DataFrame
with the columns of :data:`~auditlens.detect.findings.FINDING_SCHEMA`. It is written with
constructs that hold on a distributed engine: range windows over epoch milliseconds with
explicit bounds (``rangeBetween(-(w - 1), 0)`` is the polars window ``(t − w, t]``, ties
included), ``lag`` plus a running sum to merge overlapping windows into bursts, an
equi-join plus a range filter for a burst's evidence, ``size(collect_set(x))`` over a
window for distinct counts (Spark refuses ``COUNT(DISTINCT)`` over a window), and brute
force as one range window over the preceding failures.

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

from auditlens.detect import evasion
from auditlens.detect.exfiltration import EXPORT_ACTIONS
from auditlens.detect.findings import FINDING_SCHEMA, human, parse_window, positive_int
from auditlens.errors import ArchiveError, ConfigError, DetectorError, FilterError
from auditlens.frames import COLUMNS, FRAME_SCHEMA
from auditlens.lake.layout import read_state

__all__ = [
    "PORTED",
    "detect",
    "detect_lake",
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
    joined = ev.join(bursts, on=list(_PART)).filter(
        (F.col("_t") > F.col("_blo")) & (F.col("_t") <= F.col("_bhi"))
    )
    rows = joined.groupBy(*_PART, "_burst").agg(
        F.min("timestamp").alias("window_start"),
        F.max("timestamp").alias("window_end"),
        F.min("_t").alias("_ws"),
        F.max("_t").alias("_we"),
        F.count(F.lit(1)).alias("count"),
        _evidence(api, "_t", "seq", "audit_id").alias("audit_ids"),
        *extra,
    )
    return rows, joined


def _findings(
    api: SparkApi,
    rows: SparkFrame,
    detector: str,
    severity: SparkColumn,
    subject_type: str,
    summary: SparkColumn,
    details: SparkColumn | None = None,
) -> SparkFrame:
    """Burst rows → findings, with :func:`~auditlens.detect.findings.finding_id`'s ids."""
    F = api.F
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
        F.lit(subject_type),
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
        F.lit(subject_type).alias("subject_type"),
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
    range filter."""
    F = api.F
    failures = positive_int(failures, "failures")
    span = parse_window(window)
    ms = _ms(span)
    keys = (by,) if isinstance(by, str) else tuple(by)
    if not keys:
        raise FilterError("by needs at least one of 'actor', 'ip'")
    parts: list[SparkFrame] = []
    seen: SparkFrame | None = None
    for b in keys:
        if b not in ("actor", "ip"):
            raise FilterError(f"by must be 'actor' and/or 'ip', got {b!r}")
        key, subject_type = _subject(api, b)
        auth = frame.filter(F.col("action").isin("auth.failed", "auth.login")).select(
            "organization_id",
            key.alias("key"),
            "timestamp",
            "_t",
            "seq",
            "audit_id",
            "action",
            "result",
            F.when(F.col("action") == "auth.failed", F.lit(1)).otherwise(F.lit(0)).alias("_fail"),
        )
        before = F.coalesce(F.sum("_fail").over(_range(api, -ms, -1)), F.lit(0))
        wins = auth.withColumn("_fails", before).filter(
            (F.col("action") == "auth.login")
            & (F.col("result") == "success")
            & (F.col("_fails") >= failures)
        )
        if seen is not None:
            wins = wins.join(seen, on="audit_id", how="left_anti")
        fails = auth.filter(F.col("_fail") == 1).select(
            "organization_id",
            "key",
            F.col("timestamp").alias("_tsf"),
            F.col("_t").alias("_tf"),
            F.col("seq").alias("_sf"),
            F.col("audit_id").alias("_af"),
        )
        pairs = (
            wins.select("organization_id", "key", "audit_id", "timestamp", "_t")
            .join(fails, on=list(_PART))
            .filter((F.col("_tf") < F.col("_t")) & (F.col("_tf") >= F.col("_t") - F.lit(ms)))
        )
        hits = pairs.groupBy(*_PART, "audit_id", "timestamp", "_t").agg(
            F.count(F.lit(1)).alias("_nf"),
            F.min("_tsf").alias("window_start"),
            F.min("_tf").alias("_ws"),
            _evidence(api, "_tf", "_sf", "_af").alias("_fail_ids"),
        )
        rows = hits.select(
            "organization_id",
            "key",
            "window_start",
            F.col("timestamp").alias("window_end"),
            "_ws",
            (F.col("_nf") + 1).alias("count"),
            F.concat(F.col("_fail_ids"), F.array(F.col("audit_id"))).alias("audit_ids"),
        )
        summary = _text(
            api,
            "successful sign-in for ",
            subject_type,
            " ",
            F.col("key"),
            " after ",
            F.col("count") - 1,
            f" failures within {human(span)}",
        )
        parts.append(
            _findings(api, rows, "brute_force_success", F.lit("critical"), subject_type, summary)
        )
        flagged = hits.select("audit_id")
        seen = flagged if seen is None else seen.unionByName(flagged)
    return _union(parts)


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
            "organization_id",
            key.alias("key"),
            "timestamp",
            "_t",
            "seq",
            "audit_id",
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
    actions = ranked.select(
        *burst,
        _text(
            api, "[", F.array_join(F.transform(F.col("_items"), lambda x: x["json"]), ","), "]"
        ).alias("_actions"),
        F.array_join(F.slice(F.transform(F.col("_items"), lambda x: x["top"]), 1, 3), ", ").alias(
            "_top"
        ),
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
) -> SparkFrame:
    """:func:`auditlens.detect.mass_export` on Spark (rows and exports summed over one range
    window; ``actions`` matched with ``rlike``)."""
    F = api.F
    row_limit = positive_int(rows, "rows")
    export_limit = positive_int(exports, "exports")
    span = parse_window(window)
    ms = _ms(span)
    d = F.col("details")
    volume = None
    for path in _VOLUME_PATHS:
        text = _json_text(api, d, path)
        # a whole number, else null (polars' non-strict cast); DuckDB's cast would fail
        number = F.when(text.rlike(r"^-?[0-9]{1,18}$"), text.cast("long"))
        volume = number if volume is None else F.coalesce(volume, number)
    actor, _ = _subject(api, "actor")
    ev = frame.filter(F.col("action").rlike(actions) & (F.col("result") == "success")).select(
        "organization_id",
        actor.alias("key"),
        "timestamp",
        "_t",
        "seq",
        "audit_id",
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
) -> SparkFrame:
    """:func:`auditlens.detect.defence_evasion` on Spark (actions matched with ``rlike``;
    episodes by ``lag`` and a running sum)."""
    F, W = api.F, api.Window
    span = parse_window(window)
    ms = _ms(span)
    for pattern, name in (
        (logging_actions, "logging_actions"),
        (mfa_actions, "mfa_actions"),
        (alerting_actions, "alerting_actions"),
        (alert_destinations, "alert_destinations"),
    ):
        _check_regex(pattern, name)
    action = F.col("action")
    d = F.col("details")
    setting = _json_text(api, d, "$.setting")
    after = F.coalesce(_json_text(api, d, "$.after.value"), _json_text(api, d, "$.after"))
    is_setting = action.rlike(evasion._SETTINGS_UPDATED)
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
    webhook_off = action.rlike(evasion._WEBHOOK_GONE) | (
        action.rlike(evasion._WEBHOOK_CHANGED) & F.coalesce(switched_off, F.lit(False))
    )
    mfa = action.rlike(mfa_actions) & ~F.lower(action).contains("mfa_reset")
    reason = (
        F.when(
            action.rlike(logging_actions) | (is_setting & setting.rlike(evasion._LOG_SETTING)),
            F.lit("logging_disabled"),
        )
        .when(
            mfa | (is_setting & setting.rlike(evasion._MFA_SETTING) & after.rlike(evasion._OFF)),
            F.lit("mfa_disabled"),
        )
        .when(
            action.rlike(alerting_actions) | (webhook_off & destination), F.lit("alerting_disabled")
        )
    )
    actor, _ = _subject(api, "actor")
    ev = frame.select(
        "organization_id",
        actor.alias("key"),
        "timestamp",
        "_t",
        "seq",
        "audit_id",
        "action",
        reason.alias("_reason"),
        # polars' all() skips nulls: a null result counts as failed here
        F.coalesce((F.col("result") == "failure").cast("int"), F.lit(1)).alias("_failed"),
    ).filter(F.col("_reason").isNotNull())
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
        F.min("timestamp").alias("window_start"),
        F.max("timestamp").alias("window_end"),
        F.min("_t").alias("_ws"),
        F.count(F.lit(1)).alias("count"),
        _evidence(api, "_t", "seq", "audit_id").alias("audit_ids"),
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


def _check_regex(pattern: str, name: str) -> None:
    import re

    try:
        re.compile(pattern)
    except re.error as exc:
        raise FilterError(f"{name} is not a valid regular expression: {exc}") from None


def _union(parts: Sequence[SparkFrame]) -> SparkFrame:
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


#: detector name → its port to the PySpark DataFrame API.
PORTED: dict[str, Callable[..., SparkFrame]] = {
    "failed_login_spikes": failed_login_spikes,
    "brute_force_success": brute_force_success,
    "password_spray": password_spray,
    "bulk_deletions": bulk_deletions,
    "failure_bursts": failure_bursts,
    "mass_export": mass_export,
    "defence_evasion": defence_evasion,
}


def detect(
    session: object,
    df: SparkFrame,
    detectors: str | Sequence[str] = "all",
    **params: Mapping[str, object],
) -> SparkFrame:
    """Run detectors on a Spark (or SQLFrame) DataFrame of entries.

    ``detectors``: ``"all"`` (every detector in :data:`PORTED`), one name or a list of
    names; ``params``: per detector name, its parameters (as in
    :func:`auditlens.detect.run_all`'s ``config``), e.g. ``failed_login_spikes={"threshold":
    3}``. ``session`` is the session that owns ``df`` (kept for engines that must build
    frames). The result is a lazy DataFrame with the columns of ``FINDING_SCHEMA``;
    :func:`to_polars` collects it.

    Example:
        >>> detect(None, object())
        Traceback (most recent call last):
        ...
        auditlens.errors.DetectorError: not a Spark DataFrame: object (use PySpark or SQLFrame)
    """
    api = spark_api(df)
    names = (
        list(PORTED)
        if detectors == "all"
        else [detectors]
        if isinstance(detectors, str)
        else list(detectors)
    )
    unknown = [n for n in [*names, *params] if n not in PORTED]
    if unknown:
        raise DetectorError(
            f"detector(s) {', '.join(sorted(set(unknown)))} not available on spark; "
            f"ported: {', '.join(PORTED)}"
        )
    if not names:
        raise DetectorError("detectors needs at least one detector name")
    frame = _prepare(api, df)
    parts = []
    for name in names:
        try:
            parts.append(PORTED[name](api, frame, **dict(params.get(name, {}))))
        except TypeError as exc:
            raise DetectorError(f"detector {name}: {exc}") from None
    return _union(parts)


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
    spark_api(findings)
    rows = [r.asDict() for r in findings.select(*FINDING_SCHEMA).collect()]
    for row in rows:
        row["audit_ids"] = list(row["audit_ids"] or [])
    frame = pl.DataFrame(rows, schema=FINDING_SCHEMA, orient="row")
    return frame.sort("finding_id")


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
    no console progress bar, ``cores`` shuffle partitions (the default 200 is for clusters),
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
        "spark.sql.shuffle.partitions": str(cores),
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
    (``date``, the default, or ``month``). ``organization_id``, ``start`` (inclusive) and
    ``end`` (exclusive; naive times are UTC) prune partitions and filter rows.

    Raises:
        ArchiveError: a local ``path`` is not a folder or its manifests are unreadable.
        ConfigError: ``partition`` is neither ``date`` nor ``month``.

    Example:
        >>> read_lake(None, "/no/such/lake")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        auditlens.errors.ArchiveError: /no/such/lake: no such folder (a lake is a folder ...)
    """
    text = os.fspath(path)
    remote = "://" in text or text.startswith("dbfs:")
    if remote:
        time_col = partition or "date"
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


def detect_lake(
    path: str | os.PathLike[str],
    detectors: str | Sequence[str] = "all",
    *,
    params: Mapping[str, Mapping[str, object]] | None = None,
    since: timedelta | None = None,
    remote: str | None = None,
    session: Any = None,
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
        >>> detect_lake("/no/such/lake", ["off_hours"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        auditlens.errors.DetectorError: detector(s) off_hours not available on spark; ported: ...
    """
    names = (
        list(PORTED)
        if detectors == "all"
        else [detectors]
        if isinstance(detectors, str)
        else list(detectors)
    )
    unknown = [n for n in [*names, *(params or {})] if n not in PORTED]
    if unknown:
        raise DetectorError(
            f"detector(s) {', '.join(sorted(set(unknown)))} not available on spark; "
            f"ported: {', '.join(PORTED)}"
        )
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
        found = detect(session, entries, names, **{k: dict(v) for k, v in (params or {}).items()})
        return to_polars(found), int(entries.count())
    finally:
        if owned:
            session.stop()
