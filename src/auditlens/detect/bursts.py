"""Burst detectors: failed-login spikes, brute force ending in success, password spray,
bulk deletions. All use true sliding windows ("more than N in any W"), computed with
polars rolling windows per subject; overlapping windows of one burst merge into one finding.

Example:
    >>> import polars as pl
    >>> from datetime import datetime, timedelta, UTC
    >>> t0 = datetime(2025, 1, 1, 9, tzinfo=UTC)
    >>> df = pl.DataFrame({"audit_id": [str(i) for i in range(7)],
    ...     "timestamp": [t0 + timedelta(seconds=30 * i) for i in range(7)],
    ...     "action": ["auth.failed"] * 7, "result": ["failure"] * 7,
    ...     "organization_id": ["o"] * 7, "actor_email": ["jane@x.io"] * 7})
    >>> failed_login_spikes(df)[["subject", "count"]].rows()
    [('jane@x.io', 7)]
"""

from __future__ import annotations

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
    subject_expr,
)
from auditlens.detect.networks import network_expr
from auditlens.errors import FilterError

__all__ = ["brute_force_success", "bulk_deletions", "failed_login_spikes", "password_spray"]


def _rolling(ev: pl.DataFrame, window: timedelta, agg: pl.Expr) -> pl.DataFrame:
    """Add one column: ``agg`` over each row's window (t − window, t] within its subject.

    Rows with equal (organization, key, time) have identical windows, so sorting the
    rolling output the same way as the input lines the values up row for row.
    """
    order = ["organization_id", "key", "timestamp"]
    ev = ev.sort(order)
    out = (
        ev.rolling(
            index_column="timestamp",
            period=window,
            closed="right",
            group_by=["organization_id", "key"],
        )
        .agg(agg)
        .sort(order)
    )
    name = out.columns[-1]
    return ev.with_columns(out[name])


def _bursts(
    frame: pl.DataFrame, condition: pl.Expr, key: pl.Expr, span: timedelta, threshold: int
) -> pl.DataFrame | None:
    """Bursts of more than ``threshold`` matching events per subject in any ``span``.

    None when no event matches at all.
    """
    ev = frame.filter(condition).select(
        "organization_id", key.alias("key"), "timestamp", "audit_id", "seq"
    )
    if ev.is_empty():
        return None
    return merge_flagged_windows(rolling_count(ev, span), pl.col("_n") > threshold, span)


def _escalate(threshold: int, factor: int) -> pl.Expr:
    """``critical`` from ``factor`` × the threshold, else ``high``."""
    return (
        pl.when(pl.col("count") >= factor * threshold)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("high"))
    )


def failed_login_spikes(
    df: FrameT,
    threshold: int = 5,
    window: str | timedelta = "5m",
    by: str = "actor",
    group_by_network: bool = False,
    network_prefix: tuple[int, int] | int = (24, 64),
) -> FrameT:
    """More than ``threshold`` failed sign-ins in any ``window`` for one actor, IP or organization.

    Default 5 in 5 minutes: a person mistyping a password fails once or twice; five
    quick failures is a script or someone guessing. With ``by="ip"`` and
    ``group_by_network``, addresses count by network (``network_prefix``: /24 for IPv4,
    /64 for IPv6), so a guesser spread over neighbouring addresses is one source.
    """
    frame, kind = as_polars(df)
    threshold = positive_int(threshold, "threshold")
    span = parse_window(window)
    key, subject_type = subject_expr(by)
    if group_by_network and by == "ip":
        key, subject_type = network_expr("ip_address", network_prefix), "network"
    rows = _bursts(frame, pl.col("action") == "auth.failed", key, span, threshold)
    if rows is None:
        return cast(FrameT, return_like(empty_findings(), kind))
    out = build_findings(
        rows,
        "failed_login_spikes",
        _escalate(threshold, 4),
        subject_type,
        pl.format(
            "{} failed sign-ins for {} {} within {} (more than {} in {})",
            pl.col("count"),
            pl.lit(subject_type),
            pl.col("key"),
            (pl.col("window_end") - pl.col("window_start")).dt.total_seconds().cast(pl.Utf8)
            + pl.lit(" s"),
            pl.lit(threshold),
            pl.lit(human(span)),
        ),
    )
    return cast(FrameT, return_like(out, kind))


def bulk_deletions(df: FrameT, threshold: int = 10, window: str | timedelta = "10m") -> FrameT:
    """More than ``threshold`` deletions by one actor in any ``window``.

    Deletions are ``*.deleted`` actions and ``user.removed`` that did not fail.
    """
    frame, kind = as_polars(df)
    threshold = positive_int(threshold, "threshold")
    span = parse_window(window)
    key, _ = subject_expr("actor")
    deletion = (
        pl.col("action").str.ends_with(".deleted") | (pl.col("action") == "user.removed")
    ) & (pl.col("result") != "failure")
    rows = _bursts(frame, deletion, key, span, threshold)
    if rows is None:
        return cast(FrameT, return_like(empty_findings(), kind))
    out = build_findings(
        rows,
        "bulk_deletions",
        _escalate(threshold, 3),
        "actor",
        pl.format(
            "{} deleted {} resources between {} and {}",
            pl.col("key"),
            pl.col("count"),
            pl.col("window_start").dt.strftime("%H:%M"),
            pl.col("window_end").dt.strftime("%H:%M UTC"),
        ),
    )
    return cast(FrameT, return_like(out, kind))


def password_spray(
    df: FrameT,
    accounts: int = 10,
    window: str | timedelta = "10m",
    group_by_network: bool = False,
    network_prefix: tuple[int, int] | int = (24, 64),
) -> FrameT:
    """One IP failing to sign in as at least ``accounts`` different accounts within ``window``.

    ``group_by_network``: one *network* (``network_prefix``, /24 and /64 by default)
    instead of one address, for a sprayer rotating through neighbouring addresses.
    """
    frame, kind = as_polars(df)
    accounts = positive_int(accounts, "accounts")
    span = parse_window(window)
    actor, _ = subject_expr("actor")
    source = (
        network_expr("ip_address", network_prefix) if group_by_network else pl.col("ip_address")
    )
    ev = frame.filter(
        (pl.col("action") == "auth.failed") & pl.col("ip_address").is_not_null()
    ).select(
        "organization_id",
        source.alias("key"),
        "timestamp",
        "audit_id",
        "seq",
        actor.alias("account"),
    )
    if ev.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    ev = _rolling(ev, span, pl.col("account").n_unique().alias("_u"))
    rows = merge_flagged_windows(ev, pl.col("_u") >= accounts, span)
    if rows.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    n_accounts = (
        ev.join(
            rows.explode("audit_ids").rename({"audit_ids": "audit_id"}),
            on=["organization_id", "key", "audit_id"],
        )
        .group_by(["organization_id", "key", "window_start"])
        .agg(pl.col("account").n_unique().alias("accounts"))
    )
    rows = rows.join(n_accounts, on=["organization_id", "key", "window_start"])
    out = build_findings(
        rows,
        "password_spray",
        "high",
        "network" if group_by_network else "ip",
        pl.format(
            "{} failed to sign in as {} different accounts ({} attempts)",
            pl.col("key"),
            pl.col("accounts"),
            pl.col("count"),
        ),
    )
    return cast(FrameT, return_like(out, kind))


def brute_force_success(
    df: FrameT,
    failures: int = 5,
    window: str | timedelta = "30m",
    by: tuple[str, ...] | str = ("actor", "ip"),
) -> FrameT:
    """A successful sign-in preceded by at least ``failures`` failures within ``window``,
    for the same account or from the same IP: the guess worked (critical)."""
    frame, kind = as_polars(df)
    failures = positive_int(failures, "failures")
    span = parse_window(window)
    keys = (by,) if isinstance(by, str) else tuple(by)
    if not keys:
        raise FilterError("by needs at least one of 'actor', 'ip'")
    parts = []
    seen_success: set[str] = set()
    for b in keys:
        if b not in ("actor", "ip"):
            raise FilterError(f"by must be 'actor' and/or 'ip', got {b!r}")
        key, subject_type = subject_expr(b)
        auth = frame.filter(pl.col("action").is_in(["auth.failed", "auth.login"])).select(
            "organization_id", key.alias("key"), "timestamp", "audit_id", "seq", "action", "result"
        )
        fails = auth.filter(pl.col("action") == "auth.failed").sort(
            ["organization_id", "key", "timestamp"]
        )
        wins = auth.filter((pl.col("action") == "auth.login") & (pl.col("result") == "success"))
        if fails.is_empty() or wins.is_empty():
            continue
        # failures in [t - window, t) = (failures before t) - (failures before t - window),
        # both found with as-of joins on running counts: no pairing of every success with
        # every failure of the account
        fails = fails.with_columns(
            pl.int_range(1, pl.len() + 1).over(["organization_id", "key"]).alias("_cum")
        )
        counts = fails.select("organization_id", "key", "timestamp", "_cum")
        wins = wins.with_columns((pl.col("timestamp") - span).alias("_from")).sort("timestamp")
        upto = wins.join_asof(
            counts.sort("timestamp"),
            on="timestamp",
            by=["organization_id", "key"],
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        ).rename({"_cum": "_before_t"})
        upto = (
            upto.sort("_from")
            .join_asof(
                counts.rename({"timestamp": "_from"}).sort("_from"),
                on="_from",
                by=["organization_id", "key"],
                strategy="backward",
                allow_exact_matches=False,
                check_sortedness=False,
            )
            .rename({"_cum": "_before_from"})
        )
        flagged = upto.with_columns(
            (pl.col("_before_t").fill_null(0) - pl.col("_before_from").fill_null(0)).alias("fails")
        ).filter(pl.col("fails") >= failures)
        if flagged.is_empty():
            continue
        pairs = (
            flagged.select("organization_id", "key", "audit_id", "timestamp", "_from")
            .join(
                fails.select(
                    "organization_id",
                    "key",
                    pl.col("timestamp").alias("timestamp_f"),
                    pl.col("audit_id").alias("audit_id_f"),
                    pl.col("seq").alias("seq_f"),
                ),
                on=["organization_id", "key"],
            )
            .filter(
                (pl.col("timestamp_f") < pl.col("timestamp"))
                & (pl.col("timestamp_f") >= pl.col("_from"))
            )
        )
        hits = pairs.group_by(["organization_id", "key", "audit_id", "timestamp"]).agg(
            pl.len().alias("fails"),
            pl.col("timestamp_f").min().alias("window_start"),
            pl.col("audit_id_f").sort_by(["timestamp_f", "seq_f", "audit_id_f"]).alias("fail_ids"),
        )
        hits = hits.filter(~pl.col("audit_id").is_in(list(seen_success)))
        seen_success.update(hits["audit_id"].to_list())
        if hits.is_empty():
            continue
        rows = hits.select(
            "organization_id",
            "key",
            "window_start",
            pl.col("timestamp").alias("window_end"),
            (pl.col("fails") + 1).alias("count"),
            pl.concat_list("fail_ids", pl.concat_list(pl.col("audit_id"))).alias("audit_ids"),
        )
        parts.append(
            build_findings(
                rows,
                "brute_force_success",
                "critical",
                subject_type,
                pl.format(
                    "successful sign-in for {} {} after {} failures within {}",
                    pl.lit(subject_type),
                    pl.col("key"),
                    pl.col("count") - 1,
                    pl.lit(human(span)),
                ),
            )
        )
    out = pl.concat(parts) if parts else empty_findings()
    return cast(FrameT, return_like(out, kind))
