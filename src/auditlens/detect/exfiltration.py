"""Data exfiltration-like exports: one actor exporting or downloading a lot, quickly.

An export is a successful action whose name says export, download, dump, clone or
snapshot (``audit_log.exported``, ``s3.get_object``, ``ec2.create_snapshot``,
``repo.download_zip``…; ``actions`` is the pattern). Its volume is the row count its
details record (``rows``, ``row_count``, ``records``, ``count``) — ``audit_log.exported``
entries carry ``rows`` — and entries that record none count as one export without rows.

Example:
    >>> import polars as pl
    >>> from datetime import datetime, timedelta, UTC
    >>> t0 = datetime(2025, 1, 7, 9, tzinfo=UTC)
    >>> df = pl.DataFrame({"audit_id": ["a", "b"], "timestamp": [t0, t0 + timedelta(minutes=5)],
    ...     "action": ["audit_log.exported"] * 2, "result": ["success"] * 2,
    ...     "organization_id": ["o"] * 2, "actor_email": ["eve@x.io"] * 2,
    ...     "details": ['{"rows": 8000}', '{"rows": 9000}']})
    >>> print(mass_export(df)["summary"][0])  # doctest: +NORMALIZE_WHITESPACE
    eve@x.io exported 17000 rows in 2 export(s) within 5 minutes
    (limit: 10000 rows, 20 exports per 1 hour)
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import polars as pl

from auditlens.detect.findings import (
    FrameT,
    actions_matching,
    as_polars,
    build_findings,
    empty_findings,
    human,
    merge_flagged_windows,
    parse_window,
    positive_int,
    return_like,
)

__all__ = ["EXPORT_ACTIONS", "mass_export"]

#: actions that take data out
EXPORT_ACTIONS = (
    r"(?i)(export|download|dump|get_object$|clone|create_snapshot|copy_snapshot"
    r"|create_db_snapshot|modify_(db_)?snapshot_attribute|takeout)"
)
_VOLUME_PATHS = ("$.rows", "$.row_count", "$.records", "$.count")


def mass_export(
    df: FrameT,
    rows: int = 10_000,
    exports: int = 20,
    window: str | timedelta = "1h",
    actions: str = EXPORT_ACTIONS,
) -> FrameT:
    """More than ``rows`` exported rows, or more than ``exports`` exports, by one actor in
    any ``window`` (sliding, ``(t − window, t]``).

    A person pulls a report or two a day; tens of thousands of rows, or twenty exports in
    an hour, is a copy of the data leaving. Severity ``high``, ``critical`` from 10 × the
    row limit. Routine jobs (a nightly backup export) belong in the allow-list.
    """
    frame, kind = as_polars(df)
    row_limit = positive_int(rows, "rows")
    export_limit = positive_int(exports, "exports")
    span = parse_window(window)
    exported = actions_matching(frame, actions, "actions")
    d = pl.col("details").cast(pl.Utf8) if "details" in frame.columns else pl.lit(None, pl.Utf8)
    volume = pl.coalesce(
        *(d.str.json_path_match(p).cast(pl.Int64, strict=False) for p in _VOLUME_PATHS)
    )
    ev = (
        frame.filter(pl.col("action").is_in(exported) & (pl.col("result") == "success"))
        .select(
            "organization_id",
            pl.coalesce("actor_email", "actor_user_id", pl.lit("(unknown)")).alias("key"),
            "timestamp",
            "audit_id",
            "seq",
            volume.fill_null(0).clip(0).alias("_rows"),
        )
        .sort("timestamp")
    )
    if ev.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    ones = pl.col("timestamp").dt.epoch("ms") * 0 + 1
    group = ["organization_id", "key"]
    ev = ev.with_columns(
        ones.rolling_sum_by("timestamp", window_size=span, closed="right").over(group).alias("_n"),
        pl.col("_rows")
        .rolling_sum_by("timestamp", window_size=span, closed="right")
        .over(group)
        .alias("_v"),
    )
    bursts = merge_flagged_windows(
        ev, (pl.col("_v") > row_limit) | (pl.col("_n") > export_limit), span
    )
    if bursts.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    totals = (
        bursts.select(*group, "window_start", pl.col("audit_ids").alias("audit_id"))
        .explode("audit_id")
        .join(ev.select(*group, "audit_id", "_rows"), on=[*group, "audit_id"])
        .group_by([*group, "window_start"])
        .agg(pl.col("_rows").sum().alias("total_rows"))
    )
    bursts = bursts.join(totals, on=[*group, "window_start"])
    out = build_findings(
        bursts,
        "mass_export",
        pl.when(pl.col("total_rows") >= 10 * row_limit)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("high")),
        "actor",
        pl.format(
            "{} exported {} rows in {} export(s) within {} (limit: {} rows, {} exports per {})",
            pl.col("key"),
            pl.col("total_rows"),
            pl.col("count"),
            pl.col("window_end")
            .sub(pl.col("window_start"))
            .map_batches(_spans, return_dtype=pl.Utf8),
            pl.lit(row_limit),
            pl.lit(export_limit),
            pl.lit(human(span)),
        ),
        pl.struct(pl.col("total_rows").alias("rows")).struct.json_encode(),
    )
    return cast(FrameT, return_like(out, kind))


def _spans(spans: pl.Series) -> pl.Series:
    return pl.Series([human(s) if s else "0 seconds" for s in spans.to_list()], dtype=pl.Utf8)
