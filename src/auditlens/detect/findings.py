"""The findings frame every detector returns, and the helpers detectors share.

Columns: ``finding_id`` (deterministic: see :func:`finding_id`),
``detector``, ``severity`` (low/medium/high/critical), ``organization_id``,
``subject_type``, ``subject``, ``window_start``, ``window_end``, ``count``,
``audit_ids`` (the evidence, a list), ``summary`` (one sentence), ``details`` (JSON).

Example:
    >>> empty_findings().columns[:3]
    ['finding_id', 'detector', 'severity']
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

if TYPE_CHECKING:
    import pandas as pd

from auditlens.errors import FilterError
from auditlens.query.filters import parse_duration

#: a detector returns the kind of frame it was given: polars in, polars out; pandas in, pandas out.
FrameT = TypeVar("FrameT", bound="pl.DataFrame | pd.DataFrame")

__all__ = [
    "FINDING_SCHEMA",
    "SEVERITIES",
    "FrameT",
    "as_polars",
    "check_regex",
    "empty_findings",
    "evidence_order",
    "finding_id",
    "finding_id_expr",
    "merge_flagged_windows",
    "parse_window",
    "return_like",
    "rolling_count",
    "subject_expr",
]

SEVERITIES = ("low", "medium", "high", "critical")

FINDING_SCHEMA: dict[str, Any] = {
    "finding_id": pl.Utf8,
    "detector": pl.Utf8,
    "severity": pl.Utf8,
    "organization_id": pl.Utf8,
    "subject_type": pl.Utf8,
    "subject": pl.Utf8,
    "window_start": pl.Datetime("ms", "UTC"),
    "window_end": pl.Datetime("ms", "UTC"),
    "count": pl.Int64,
    "audit_ids": pl.List(pl.Utf8),
    "summary": pl.Utf8,
    "details": pl.Utf8,
}

_REQUIRED = ("audit_id", "timestamp", "action", "result", "organization_id")


def empty_findings() -> pl.DataFrame:
    """A findings frame with no rows."""
    return pl.DataFrame(schema=FINDING_SCHEMA)


def finding_id(
    detector: str,
    organization_id: str,
    subject_type: str,
    subject: str,
    window_start_ms: int,
    first_evidence: str,
    variant: str = "",
) -> str:
    """Deterministic id of a finding, from what it is about and its evidence.

    The parts are the detector, the organization, the subject (type and value), the
    window start (the first evidence's time), the first evidence entry's ``audit_id`` and
    the finding's variant (``details.reason`` and ``details.stop_audit_id`` when the
    detector sets them: two kinds of unusual access about the same first action stay
    two findings). Nothing depends on row order or on when detection ran, and a burst
    that grows with later entries keeps its id (its start and first entry do not move).

    Example:
        >>> finding_id("password_spray", "org-1", "ip", "10.0.0.1", 0, "e1")
        'c11bfd058d2eae84'
    """
    raw = "|".join(
        (detector, organization_id, subject_type, subject, str(window_start_ms), first_evidence)
    )
    return hashlib.sha256(f"{raw}|{variant}".encode()).hexdigest()[:16]


def finding_id_expr() -> pl.Expr:
    """:func:`finding_id` of every row of a findings frame, computed column-wise."""
    import polars_hash  # noqa: F401 - registers the .chash namespace  # lazy: only for finding ids

    details = pl.col("details").fill_null("{}")
    variant = pl.concat_str(
        details.str.json_path_match("$.reason").fill_null(""),
        pl.lit("/"),
        details.str.json_path_match("$.stop_audit_id").fill_null(""),
    )
    raw = pl.concat_str(
        pl.col("detector"),
        pl.col("organization_id"),
        pl.col("subject_type"),
        pl.col("subject"),
        pl.col("window_start").dt.epoch("ms").cast(pl.Utf8),
        pl.col("audit_ids").list.first(),
        pl.when(variant == "/").then(pl.lit("")).otherwise(variant),
        separator="|",
    )
    digest: pl.Expr = raw.chash.sha2_256()  # type: ignore[attr-defined]
    return digest.str.slice(0, 16)


def parse_window(window: str | timedelta, name: str = "window") -> timedelta:
    """A positive duration from ``"5m"`` or a timedelta, with a clear error otherwise."""

    span = parse_duration(window) if isinstance(window, str) else window
    if not isinstance(span, timedelta) or span.total_seconds() <= 0:
        raise FilterError(f"{name} must be a positive duration like '5m', got {window!r}")
    return span


def positive_int(value: object, name: str) -> int:
    """Validate a count parameter."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise FilterError(f"{name} must be a whole number ≥ 1, got {value!r}")
    return value


def as_polars(df: Any) -> tuple[pl.DataFrame, str]:
    """The frame as polars (and which kind it was) with the columns detectors need."""
    kind = type(df).__module__.split(".")[0]
    if kind == "pandas":
        frame = pl.from_pandas(df)
    elif isinstance(df, pl.DataFrame):
        frame = df
    else:
        raise FilterError(f"detectors take a pandas or polars DataFrame, got {type(df).__name__}")
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise FilterError(
            f"the entries frame lacks column(s) {', '.join(missing)}; "
            "use store.query(...) to load entries"
        )
    for col in (
        "actor_email",
        "actor_user_id",
        "actor_type",
        "ip_address",
        "user_agent",
        "resource_type",
        "resource_id",
        "resource_name",
    ):
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Utf8).alias(col))
        elif frame.schema[col] != pl.Utf8:
            frame = frame.with_columns(pl.col(col).cast(pl.Utf8))
    if "seq" not in frame.columns:  # ties in time are ordered by seq, then audit_id
        frame = frame.with_columns(pl.lit(None, pl.Int64).alias("seq"))
    if frame.schema["timestamp"] != pl.Datetime("ms", "UTC"):
        frame = frame.with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))
    return frame, kind


def return_like(findings: pl.DataFrame, kind: str) -> pl.DataFrame | pd.DataFrame:
    """Findings as the kind of frame the caller passed in."""
    findings = findings.select(list(FINDING_SCHEMA)).sort(["window_start", "detector", "subject"])
    return findings.to_pandas() if kind == "pandas" else findings


def subject_expr(by: str) -> tuple[pl.Expr, str]:
    """Grouping key for ``by`` = actor | ip | organization, and its subject type."""
    if by == "actor":
        return pl.coalesce("actor_email", "actor_user_id", pl.lit("(unknown)")), "actor"
    if by == "ip":
        return pl.coalesce("ip_address", pl.lit("(no ip)")), "ip"
    if by == "organization":
        return pl.col("organization_id"), "organization"
    raise FilterError(f"by must be 'actor', 'ip' or 'organization', got {by!r}")


def merge_flagged_windows(events: pl.DataFrame, flag: pl.Expr, window: timedelta) -> pl.DataFrame:
    """Merge the flagged sliding windows of each (organization, key) into bursts.

    ``events`` has ``organization_id``, ``key``, ``timestamp``, ``audit_id`` and is sorted by
    key then time; ``flag`` marks the rows whose window (t − window, t] crossed the
    threshold. Overlapping windows of one burst become one row with the evidence of
    every event inside them: ``organization_id, key, window_start, window_end, count, audit_ids``.
    """
    ev = events.with_columns(flag.alias("_flag"))
    flagged = ev.filter(pl.col("_flag")).with_columns((pl.col("timestamp") - window).alias("_lo"))
    if flagged.is_empty():
        return pl.DataFrame(
            schema={
                "organization_id": pl.Utf8,
                "key": pl.Utf8,
                "window_start": pl.Datetime("ms", "UTC"),
                "window_end": pl.Datetime("ms", "UTC"),
                "count": pl.UInt32,
                "audit_ids": pl.List(pl.Utf8),
            }
        )
    # intervals (lo, t] of flagged rows; a new burst starts where lo passes the running end
    iv = (
        flagged.sort(["organization_id", "key", "timestamp"])
        .with_columns(
            pl.col("timestamp").shift(1).over(["organization_id", "key"]).alias("_prev_end")
        )
        .with_columns(
            (pl.col("_prev_end").is_null() | (pl.col("_lo") >= pl.col("_prev_end")))
            .cast(pl.Int32)
            .cum_sum()
            .over(["organization_id", "key"])
            .alias("_burst")
        )
    )
    bursts = iv.group_by(["organization_id", "key", "_burst"]).agg(
        pl.col("_lo").min().alias("lo"), pl.col("timestamp").max().alias("hi")
    )
    joined = ev.join(bursts, on=["organization_id", "key"]).filter(
        (pl.col("timestamp") > pl.col("lo")) & (pl.col("timestamp") <= pl.col("hi"))
    )
    return (
        joined.group_by(["organization_id", "key", "_burst"])
        .agg(
            pl.col("timestamp").min().alias("window_start"),
            pl.col("timestamp").max().alias("window_end"),
            pl.len().alias("count"),
            pl.col("audit_id").sort_by(evidence_order(ev)).alias("audit_ids"),
        )
        .drop("_burst")
    )


def evidence_order(frame: pl.DataFrame, suffix: str = "") -> list[str]:
    """The columns that order a finding's evidence: time, then ``seq``, then ``audit_id``.

    Entries at the same millisecond keep their order in the log (``seq``, when the frame
    has it) and then their id, so every engine lists the same evidence in the same order
    and a finding's first entry (part of its id) does not depend on row order.

    Example:
        >>> evidence_order(pl.DataFrame(schema={"timestamp": pl.Int64, "audit_id": pl.Utf8}))
        ['timestamp', 'audit_id']
    """
    cols = ["timestamp", "seq", "audit_id"]
    return [c + suffix for c in cols if c + suffix in frame.columns]


def rolling_count(ev: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """Add ``_n``: events of the same (organization, key) in (t − window, t]."""
    # rows in time order are in time order within every subject too, so a rolling sum per
    # subject (over) needs no sort by subject — the slow part on string keys
    ev = ev.sort("timestamp")
    ones = pl.col("timestamp").dt.epoch("ms") * 0 + 1
    return ev.with_columns(
        ones.rolling_sum_by("timestamp", window_size=window, closed="right")
        .over(["organization_id", "key"])
        .alias("_n")
    )


def build_findings(
    rows: pl.DataFrame,
    detector: str,
    severity: str | pl.Expr,
    subject_type: str,
    summary: pl.Expr,
    details: pl.Expr | None = None,
) -> pl.DataFrame:
    """Turn rows of ``organization_id, key, window_start, window_end, count, audit_ids``
    into a findings frame."""
    if rows.is_empty():
        return empty_findings()
    sev = pl.lit(severity) if isinstance(severity, str) else severity
    out = rows.with_columns(
        pl.lit(detector).alias("detector"),
        sev.alias("severity"),
        pl.lit(subject_type).alias("subject_type"),
        pl.col("key").alias("subject"),
        pl.col("count").cast(pl.Int64),
        summary.alias("summary"),
        (details if details is not None else pl.lit("{}")).alias("details"),
    )
    return (
        out.with_columns(pl.col("window_start").cast(pl.Datetime("ms", "UTC")))
        .with_columns(finding_id_expr().alias("finding_id"))
        .select(list(FINDING_SCHEMA))
        .cast(
            FINDING_SCHEMA  # type: ignore[arg-type]
        )
    )


def check_regex(pattern: str, name: str = "pattern") -> str:
    """``pattern``, after checking that it compiles as a regular expression; a
    :class:`~auditlens.errors.FilterError` naming the parameter ``name`` if it does not.

    Example:
        >>> check_regex("^auth[.]", "actions")
        '^auth[.]'
        >>> check_regex("(", "actions")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        auditlens.errors.FilterError: actions is not a valid regular expression: ...
    """
    import re  # lazy: only the detectors with regex parameters need it

    try:
        re.compile(pattern)
    except re.error as exc:
        raise FilterError(f"{name} is not a valid regular expression: {exc}") from None
    return pattern


def actions_matching(frame: pl.DataFrame, pattern: str, name: str = "pattern") -> list[str]:
    """The distinct actions of ``frame`` that the regular expression ``pattern`` matches.

    Logs hold a few hundred distinct actions over millions of rows: matching the distinct
    ones and filtering with ``is_in`` costs one hash lookup per row instead of a regex.

    Example:
        >>> actions_matching(pl.DataFrame({"action": ["a.x", "b.y", "a.x"]}), "^a")
        ['a.x']
    """
    check_regex(pattern, name)
    acts = frame.get_column("action").drop_nulls().unique()
    return sorted(acts.filter(acts.str.contains(pattern)).to_list())


def human(span: timedelta) -> str:
    """``timedelta(minutes=5)`` → ``"5 minutes"``."""
    secs = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs % size == 0 and secs >= size:
            n = secs // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{secs} seconds"
