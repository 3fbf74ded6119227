"""Failure bursts: many failed calls of *any* action from one actor or one source.

Failed sign-ins have their own detector (:func:`~auditlens.detect.bursts.failed_login_spikes`),
so ``auth.failed`` is left out by default. What remains is the rest of a failure storm:
an attacker probing what a stolen key may do (``AccessDenied`` on call after call), a
script enumerating secrets (32 of 34 ``GetPasswordData`` calls failing in 8 seconds),
a tool trying webhook after webhook.

Example:
    >>> import polars as pl
    >>> from datetime import datetime, timedelta, UTC
    >>> t0 = datetime(2025, 1, 1, 9, tzinfo=UTC)
    >>> df = pl.DataFrame({"audit_id": [str(i) for i in range(12)],
    ...     "timestamp": [t0 + timedelta(seconds=i) for i in range(12)],
    ...     "action": ["ec2.get_password_data"] * 12, "result": ["failure"] * 12,
    ...     "organization_id": ["o"] * 12, "actor_email": ["ci@x.io"] * 12,
    ...     "ip_address": ["198.51.100.7"] * 12})
    >>> failure_bursts(df)[["subject_type", "count"]].rows()
    [('actor', 12)]
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import cast

import polars as pl

from auditlens.detect.findings import (
    FrameT,
    as_polars,
    build_findings,
    empty_findings,
    human,
    merge_flagged_windows,
    parse_window,
    positive_int,
    return_like,
    rolling_count,
)
from auditlens.detect.networks import check_prefix, network_expr
from auditlens.errors import FilterError

__all__ = ["failure_bursts"]


def _error(frame: pl.DataFrame) -> pl.Expr:
    """The error code an importer or application recorded in ``details``, if any."""
    if "details" not in frame.columns:
        return pl.lit(None, pl.Utf8)
    d = pl.col("details").cast(pl.Utf8)
    return pl.coalesce(
        d.str.json_path_match("$.error_code"),
        d.str.json_path_match("$.errorCode"),
        d.str.json_path_match("$.reason"),
    )


def failure_bursts(
    df: FrameT,
    threshold: int = 10,
    window: str | timedelta = "5m",
    by: Iterable[str] | str = ("actor", "ip"),
    exclude: Iterable[str] = ("auth.failed",),
    group_by_network: bool = False,
    network_prefix: tuple[int, int] | int = (24, 64),
) -> FrameT:
    """More than ``threshold`` failed calls (any action but ``exclude``) in any ``window``,
    per actor and per source IP.

    A person retrying a forbidden page fails a few times; more than ten failures in five
    minutes is a script or someone mapping what a credential may do. Windows slide
    ("more than N in *any* W", the window ``(t − W, t]``), and overlapping windows of one
    burst are one finding. Rows without an actor (``by="actor"``) or without an address
    (``by="ip"``) have no one to attribute the failures to and are skipped. A source
    finding whose evidence is all inside an actor finding is left out (the same storm told
    once). ``group_by_network`` counts sources by network (``network_prefix``, /24 and
    /64 by default). Severity: ``medium``, ``high`` from 3 × the threshold.
    """
    frame, kind = as_polars(df)
    threshold = positive_int(threshold, "threshold")
    span = parse_window(window)
    keys = (by,) if isinstance(by, str) else tuple(by)
    if not keys or any(b not in ("actor", "ip") for b in keys):
        raise FilterError(f"by must be 'actor' and/or 'ip', got {by!r}")
    prefix = check_prefix(network_prefix)
    skip = [exclude] if isinstance(exclude, str) else list(exclude)
    failed = frame.filter((pl.col("result") == "failure") & ~pl.col("action").is_in(skip))
    if failed.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    failed = failed.with_columns(_error(failed).alias("_error"))
    parts: list[pl.DataFrame] = []
    for b in keys:
        if b == "actor":
            key: pl.Expr = pl.coalesce("actor_email", "actor_user_id")
            subject_type = "actor"
        elif group_by_network:
            key, subject_type = network_expr("ip_address", prefix), "network"
        else:
            key, subject_type = pl.col("ip_address"), "ip"
        ev = failed.select(
            "organization_id", key.alias("key"), "timestamp", "audit_id", "seq", "action", "_error"
        ).filter(pl.col("key").is_not_null())
        if ev.is_empty():
            continue
        rows = merge_flagged_windows(
            rolling_count(
                ev.select("organization_id", "key", "timestamp", "audit_id", "seq"), span
            ),
            pl.col("_n") > threshold,
            span,
        )
        if rows.is_empty():
            continue
        what = _what(rows, ev)
        rows = rows.join(what, on=["organization_id", "key", "window_start"], how="left")
        parts.append(
            build_findings(
                rows,
                "failure_bursts",
                pl.when(pl.col("count") >= 3 * threshold)
                .then(pl.lit("high"))
                .otherwise(pl.lit("medium")),
                subject_type,
                pl.format(
                    "{} failed calls by {} {} within {} s ({}; more than {} in {})",
                    pl.col("count"),
                    pl.lit(subject_type),
                    pl.col("key"),
                    (pl.col("window_end") - pl.col("window_start")).dt.total_seconds(),
                    pl.col("_top"),
                    pl.lit(threshold),
                    pl.lit(human(span)),
                ),
                pl.struct(
                    pl.col("_actions").alias("actions"), pl.col("_errors").alias("errors")
                ).struct.json_encode(),
            )
        )
    if not parts:
        return cast(FrameT, return_like(empty_findings(), kind))
    out = pl.concat(parts)
    if len(parts) > 1:
        out = _drop_retold(out)
    return cast(FrameT, return_like(out, kind))


def _what(rows: pl.DataFrame, ev: pl.DataFrame) -> pl.DataFrame:
    """Per burst: its actions with counts (most first) and its distinct error codes."""
    members = rows.select("organization_id", "key", "window_start", "audit_ids").explode(
        "audit_ids"
    )
    joined = members.join(
        ev.select(
            "organization_id", "key", pl.col("audit_id").alias("audit_ids"), "action", "_error"
        ),
        on=["organization_id", "key", "audit_ids"],
    )
    per_action = (
        joined.group_by(["organization_id", "key", "window_start", "action"])
        .agg(pl.len().alias("n"))
        .sort(["n", "action"], descending=[True, False])
    )
    actions = per_action.group_by(
        ["organization_id", "key", "window_start"], maintain_order=True
    ).agg(
        pl.struct(pl.col("action"), pl.col("n").alias("count")).alias("_actions"),
        pl.format("{} ×{}", pl.col("action"), pl.col("n")).head(3).str.join(", ").alias("_top"),
    )
    errors = joined.group_by(["organization_id", "key", "window_start"]).agg(
        pl.col("_error").drop_nulls().unique().sort().alias("_errors")
    )
    return actions.join(errors, on=["organization_id", "key", "window_start"])


def _drop_retold(out: pl.DataFrame) -> pl.DataFrame:
    """Drop source findings whose every entry is already in an actor finding."""
    told = (
        out.filter(pl.col("subject_type") == "actor")
        .select("organization_id", pl.col("audit_ids").alias("audit_id"))
        .explode("audit_id")
        .unique()
        .with_columns(pl.lit(True).alias("_told"))
    )
    sources = out.filter(pl.col("subject_type") != "actor")
    if told.is_empty() or sources.is_empty():
        return out
    retold = (
        sources.select("finding_id", "organization_id", pl.col("audit_ids").alias("audit_id"))
        .explode("audit_id")
        .join(told, on=["organization_id", "audit_id"], how="left")
        .group_by("finding_id")
        .agg(pl.col("_told").fill_null(False).all().alias("_all"))
        .filter(pl.col("_all"))
    )
    return out.filter(~pl.col("finding_id").is_in(retold["finding_id"].implode()))
