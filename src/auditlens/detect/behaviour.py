"""Behaviour detectors: activity outside business hours, and unusual access
(new network or user-agent family, a dormant account waking up, any activity
after a suspension or removal).

Example:
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> at = datetime(2025, 1, 7, 2, 40, tzinfo=UTC)
    >>> df = pl.DataFrame({"audit_id": ["a"], "timestamp": [at],
    ...     "action": ["user.role_changed"], "result": ["success"], "organization_id": ["o"],
    ...     "actor_email": ["admin@x.io"], "actor_type": ["user"]})
    >>> off_hours(df, timezone="Europe/Berlin")[["severity", "count"]].rows()
    [('high', 1)]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, time, timedelta
from typing import Any, NamedTuple, cast

import polars as pl

from auditlens.context import DAYS, parse_hours, parse_workdays
from auditlens.context import _zone as _check_zone
from auditlens.detect.agents import family_expr
from auditlens.detect.findings import (
    FrameT,
    as_polars,
    build_findings,
    empty_findings,
    evidence_order,
    parse_window,
    positive_int,
    return_like,
    subject_expr,
)
from auditlens.errors import ContextError, FilterError
from auditlens.schema import ACTIONS

__all__ = ["OffHoursPlan", "off_hours", "resolve_off_hours", "unusual_access", "user_agent_family"]

SENSITIVE = sorted(a for a, info in ACTIONS.items() if info.sensitive)
_ROUTINE_AUTH = ["auth.login", "auth.logout", "auth.failed"]


def _hours(spec: str, where: str = "business_hours") -> tuple[time, time]:
    try:
        return parse_hours(spec, where)
    except ContextError as exc:
        raise FilterError(str(exc)) from None


_WEEKDAYS = 0b0011111  # bit 0 = Monday … bit 6 = Sunday
_ALL = 0b1111111


def _minutes(span: tuple[time, time]) -> tuple[int, int]:
    return span[0].hour * 60 + span[0].minute, span[1].hour * 60 + span[1].minute


def _day_mask(days: Iterable[str]) -> int:
    try:
        names = parse_workdays(days)
    except ContextError as exc:
        raise FilterError(str(exc)) from None
    return sum(1 << DAYS.index(d) for d in names)


def _per_org(spans: Mapping[str, tuple[int, int]], i: int, default: int) -> pl.Expr:
    lookup = {o: s[i] for o, s in spans.items()}
    return pl.col("organization_id").replace_strict(lookup, default=default, return_dtype=pl.Int64)


def _hhmm(minutes: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    return (
        (minutes // 60).cast(pl.Utf8).str.zfill(2),
        (minutes % 60).cast(pl.Utf8).str.zfill(2),
    )


def _zone(name: str, where: str = "timezone") -> str:
    try:
        return _check_zone(name, where)
    except ContextError as exc:
        raise FilterError(str(exc)) from None


class OffHoursPlan(NamedTuple):
    """:func:`off_hours`'s parameters checked and resolved (shared with the Spark port)."""

    default_zone: str
    #: overrides and organization zones: email (lower case), user id or organization → zone
    mapping: dict[str, str]
    #: ``"<organization id>:<email>"`` (lower case) → the person's own zone
    people: dict[str, str]
    #: business hours as minutes of the day, ``[start, end)``
    default_minutes: tuple[int, int]
    #: workdays as a bit mask, bit 0 = Monday … bit 6 = Sunday
    default_days: int
    org_hours: dict[str, tuple[int, int]]
    org_days: dict[str, int]
    holidays: set[date]


def resolve_off_hours(
    business_hours: str = "08:00-18:00",
    timezone: str = "UTC",
    timezones: Mapping[str, str] | None = None,
    weekends: bool = True,
    holidays: Iterable[date | str] = (),
    person_timezones: Mapping[str, str] | None = None,
    hours: Mapping[str, str] | str | None = None,
    workdays: Mapping[str, Iterable[str] | str] | str | None = None,
) -> OffHoursPlan:
    """Check :func:`off_hours`'s parameters (``FilterError`` names the bad one) and resolve
    them into lookups: zones, hours and workdays per organization, holidays.

    Example:
        >>> plan = resolve_off_hours(hours={"o": "09:00-17:30"}, timezones={"A@x.io": "UTC"})
        >>> plan.org_hours, plan.mapping
        ({'o': (540, 1050)}, {'a@x.io': 'UTC'})
    """
    if isinstance(hours, str):  # one span for every organization (e.g. --param off_hours.hours=…)
        business_hours, hours = hours, None
    default_days = _WEEKDAYS if weekends else _ALL
    if isinstance(workdays, str):  # one set of days for every organization
        default_days, workdays = _day_mask(workdays), None
    default_hours = _hours(business_hours)
    default = _zone(timezone)
    mapping = {
        k.lower() if "@" in k else k: _zone(v, f"timezones[{k}]")
        for k, v in (timezones or {}).items()
    }
    people = {
        k.lower(): _zone(v, f"person_timezones[{k}]") for k, v in (person_timezones or {}).items()
    }
    off_days = {d if isinstance(d, date) else date.fromisoformat(d) for d in holidays}
    org_hours = {o: _minutes(_hours(h, f"hours[{o}]")) for o, h in (hours or {}).items()}
    org_days = {o: _day_mask(d) for o, d in (workdays or {}).items()}
    return OffHoursPlan(
        default,
        mapping,
        people,
        _minutes(default_hours),
        default_days,
        org_hours,
        org_days,
        off_days,
    )


def off_hours(
    df: FrameT,
    business_hours: str = "08:00-18:00",
    timezone: str = "UTC",
    timezones: Mapping[str, str] | None = None,
    weekends: bool = True,
    holidays: Iterable[date | str] = (),
    actor_types: Iterable[str] = ("user",),
    person_timezones: Mapping[str, str] | None = None,
    hours: Mapping[str, str] | str | None = None,
    workdays: Mapping[str, Iterable[str] | str] | str | None = None,
) -> FrameT:
    """People acting outside business hours, one finding per person and local day.

    Only what a person *did* counts: failed attempts are left out (a failed sign-in at
    03:00 is someone trying a password — the burst detectors look at those — not the
    account's owner working late).

    Local time uses, in order: ``timezones[actor email]``, ``timezones[actor user id]``
    (overrides), ``person_timezones["<organization id>:<email>"]`` (the person's own),
    ``timezones[organization id]``, then ``timezone``; each finding's details say which
    applied (``timezone_source``: override, person, organization or default). Business
    hours and workdays are ``hours[organization id]`` / ``workdays[organization id]``
    (the stored organization context, see :func:`auditlens.context.detector_context`;
    a plain string applies to every organization), else ``business_hours`` and
    Monday–Friday (``weekends=False``: every day is a workday). ``holidays`` count as
    off hours. Severity: ``high`` when a sensitive action (role
    changes, deletions, billing, settings…) is among them, ``medium`` for other
    changes, ``low`` for sign-ins only. Machines (service accounts, the system) are
    left out by default: they work at night by design.
    """
    frame, kind = as_polars(df)
    plan = resolve_off_hours(
        business_hours, timezone, timezones, weekends, holidays, person_timezones, hours, workdays
    )
    default, mapping, people = plan.default_zone, plan.mapping, plan.people
    default_hours, default_days = plan.default_minutes, plan.default_days
    org_hours, org_days, off_days = plan.org_hours, plan.org_days, plan.holidays
    key, _ = subject_expr("actor")
    email = pl.col("actor_email").str.to_lowercase()
    zone_of = [
        ("override", email.replace_strict(mapping, default=None, return_dtype=pl.Utf8)),
        (
            "override",
            pl.col("actor_user_id").replace_strict(mapping, default=None, return_dtype=pl.Utf8),
        ),
        (
            "person",
            (pl.col("organization_id") + pl.lit(":") + email).replace_strict(
                people, default=None, return_dtype=pl.Utf8
            ),
        ),
        (
            "organization",
            pl.col("organization_id").replace_strict(mapping, default=None, return_dtype=pl.Utf8),
        ),
    ]
    source: Any = pl.when(pl.lit(False)).then(pl.lit(None, pl.Utf8))
    for name, expr in zone_of:
        source = source.when(expr.is_not_null()).then(pl.lit(name))
    acted = pl.col("actor_type").is_in(list(actor_types)) & (pl.col("result") != "failure")
    ev = frame.filter(acted).with_columns(
        key.alias("key"),
        pl.coalesce(*(e for _, e in zone_of), pl.lit(default)).alias("tz"),
        source.otherwise(pl.lit("default")).alias("tz_source"),
        _per_org(org_hours, 0, default_hours[0]).alias("_start"),
        _per_org(org_hours, 1, default_hours[1]).alias("_end"),
        pl.col("organization_id")
        .replace_strict(org_days, default=default_days, return_dtype=pl.Int64)
        .alias("_mask"),
    )
    if ev.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    zones = ev["tz"].unique().to_list()
    parts = []
    for tz in zones:  # one conversion per time zone in use (usually a handful)
        group = ev if len(zones) == 1 else ev.filter(pl.col("tz") == tz)
        local = pl.col("timestamp").dt.convert_time_zone(str(tz))
        parts.append(
            group.with_columns(
                (local.dt.hour().cast(pl.Int64) * 60 + local.dt.minute()).alias("_m"),
                local.dt.weekday().alias("_wd"),
                local.dt.date().alias("_day"),
            )
        )
    ev = pl.concat(parts) if len(parts) > 1 else parts[0]
    workday = ((pl.col("_mask") // (2 ** (pl.col("_wd").cast(pl.Int64) - 1))) % 2) == 1
    off = (pl.col("_m") < pl.col("_start")) | (pl.col("_m") >= pl.col("_end")) | ~workday
    if off_days:
        off = off | pl.col("_day").is_in(sorted(off_days))
    hits = ev.filter(off)
    if hits.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    rows = (
        hits.sort(evidence_order(hits))  # ties by seq, then audit_id: the same first evidence
        .group_by(["organization_id", "key", "_day", "tz", "tz_source", "_start", "_end"])
        .agg(
            pl.col("timestamp").min().alias("window_start"),
            pl.col("timestamp").max().alias("window_end"),
            pl.len().alias("count"),
            pl.col("audit_id").alias("audit_ids"),
            pl.col("action").is_in(SENSITIVE).any().alias("_sensitive"),
            (~pl.col("action").is_in(_ROUTINE_AUTH)).any().alias("_change"),
            pl.col("action")
            .filter(pl.col("action").is_in(SENSITIVE))
            .unique()
            .sort()
            .alias("_acts"),
        )
    )
    out = build_findings(
        rows,
        "off_hours",
        pl.when(pl.col("_sensitive"))
        .then(pl.lit("high"))
        .when(pl.col("_change"))
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low")),
        "actor",
        pl.format(
            "{} acted {} time(s) outside business hours on {} ({}){}",
            pl.col("key"),
            pl.col("count"),
            pl.col("_day").cast(pl.Utf8),
            pl.col("tz"),
            pl.when(pl.col("_sensitive"))
            .then(pl.lit(", including ") + pl.col("_acts").list.join(", "))
            .otherwise(pl.lit("")),
        ),
        pl.format(
            '{{"timezone": "{}", "timezone_source": "{}", "local_date": "{}", '
            '"business_hours": "{}:{}-{}:{}"}}',
            pl.col("tz"),
            pl.col("tz_source"),
            pl.col("_day").cast(pl.Utf8),
            *_hhmm(pl.col("_start")),
            *_hhmm(pl.col("_end")),
        ),
    )
    return cast(FrameT, return_like(out, kind))


def user_agent_family(col: str = "user_agent") -> pl.Expr:
    """The family (chrome, firefox, curl, python-requests, aws-cli, terraform, a tool tag
    without its run id…) of a user agent: :func:`auditlens.detect.agents.family_expr`."""
    return family_expr(col)


def unusual_access(
    df: FrameT,
    min_history: int = 20,
    dormant: str | timedelta = "14d",
    new_network: bool = True,
    new_agent: bool = True,
    after_suspension: bool = True,
) -> FrameT:
    """Access that does not fit an actor's history.

    * a successful action from a network (/24 for IPv4, the address for IPv6) or a
      user-agent family (:mod:`auditlens.detect.agents`: a tool's new run id or version is
      not a new client) never seen before for an actor with ``min_history`` earlier
      actions (``high`` when both are new, else ``medium``);
    * an actor with history acting again after ``dormant`` of silence (``medium``);
    * any successful action by a user after they were suspended or removed (``critical``).
    """
    frame, kind = as_polars(df)
    min_history = positive_int(min_history, "min_history")
    quiet = parse_window(dormant, "dormant")
    key, _ = subject_expr("actor")
    users = frame.filter((pl.col("actor_type") == "user") & (pl.col("result") != "failure"))
    parts = []
    if not users.is_empty():
        ev = (
            users.select(
                "organization_id",
                "timestamp",
                "seq",
                "audit_id",
                key.alias("key"),
                pl.coalesce(
                    pl.col("ip_address").str.extract(r"^([0-9]+\.[0-9]+\.[0-9]+)\.[0-9]+$"),
                    pl.col("ip_address"),
                ).alias("net"),
                user_agent_family().alias("family"),
            )
            # time order, ties by seq then audit_id (over() keeps each actor's rows in it): which
            # of two entries at one instant came "first" (history count, gap) is deterministic
            .sort(evidence_order(users))
            .with_columns(
                pl.int_range(pl.len()).over(["organization_id", "key"]).alias("_prior"),
                pl.col("timestamp").diff().over(["organization_id", "key"]).alias("_gap"),
            )
        )
        # first use of each network / client family per actor: group_by, then a small join back
        hour = timedelta(hours=1)
        episodes = []
        for col, enabled, is_net in (("net", new_network, True), ("family", new_agent, False)):
            if not enabled:
                continue
            firsts = (
                ev.filter(pl.col(col).is_not_null())
                .group_by(["organization_id", "key", col])
                .agg(pl.col("timestamp").min().alias("_first"), pl.col("_prior").min().alias("_p"))
                .filter(pl.col("_p") >= min_history)
                .drop("_p")
            )
            if firsts.is_empty():
                continue
            episodes.append(
                ev.join(firsts, on=["organization_id", "key", col])
                .filter(pl.col("timestamp") <= pl.col("_first") + hour)
                .select(
                    "organization_id",
                    "key",
                    "timestamp",
                    "seq",
                    "audit_id",
                    "net",
                    "family",
                    pl.lit(is_net).alias("_in_nn"),
                    pl.lit(not is_net).alias("_in_nf"),
                )
            )
        if episodes:
            hits = (
                pl.concat(episodes)
                .group_by(
                    ["organization_id", "key", "timestamp", "seq", "audit_id", "net", "family"]
                )
                .agg(pl.col("_in_nn").any(), pl.col("_in_nf").any())
                .sort(["organization_id", "key", "timestamp", "seq", "audit_id"])
            )
            hits = hits.with_columns(
                (
                    pl.col("timestamp").diff().over(["organization_id", "key"]).fill_null(hour * 2)
                    > hour
                )
                .cast(pl.Int32)
                .cum_sum()
                .over(["organization_id", "key"])
                .alias("_episode")
            )
            rows = hits.group_by(["organization_id", "key", "_episode"]).agg(
                pl.col("timestamp").min().alias("window_start"),
                pl.col("timestamp").max().alias("window_end"),
                pl.len().alias("count"),
                pl.col("audit_id").alias("audit_ids"),
                pl.col("_in_nn").any().alias("nn"),
                pl.col("_in_nf").any().alias("nf"),
                pl.col("net").filter(pl.col("_in_nn")).first().alias("net"),
                pl.col("family").filter(pl.col("_in_nf")).first().alias("fam"),
            )
            both = pl.col("nn") & pl.col("nf")
            parts.append(
                build_findings(
                    rows,
                    "unusual_access",
                    pl.when(both).then(pl.lit("high")).otherwise(pl.lit("medium")),
                    "actor",
                    pl.format(
                        "{} acted from {}",
                        pl.col("key"),
                        pl.when(both)
                        .then(
                            pl.format(
                                "a new network ({}) with a new client ({})",
                                pl.col("net"),
                                pl.col("fam"),
                            )
                        )
                        .when(pl.col("nn"))
                        .then(pl.format("a new network ({})", pl.col("net")))
                        .otherwise(pl.format("a new client ({})", pl.col("fam"))),
                    ),
                    pl.format(
                        '{{"reason": "{}"}}',
                        pl.when(both)
                        .then(pl.lit("new_network_and_agent"))
                        .when(pl.col("nn"))
                        .then(pl.lit("new_network"))
                        .otherwise(pl.lit("new_agent")),
                    ),
                )
            )
        woke = ev.filter((pl.col("_gap") >= quiet) & (pl.col("_prior") >= min_history))
        if not woke.is_empty():
            rows = woke.select(
                "organization_id",
                "key",
                (pl.col("timestamp") - pl.col("_gap")).alias("window_start"),
                pl.col("timestamp").alias("window_end"),
                pl.lit(1).alias("count"),
                pl.concat_list(pl.col("audit_id")).alias("audit_ids"),
                (pl.col("_gap").dt.total_days()).alias("days"),
            )
            parts.append(
                build_findings(
                    rows,
                    "unusual_access",
                    "medium",
                    "actor",
                    pl.format(
                        "{} acted again after {} days of silence", pl.col("key"), pl.col("days")
                    ),
                    pl.lit(json.dumps({"reason": "dormant_account"})),
                )
            )
    if after_suspension:
        parts.append(_after_suspension(frame, key))
    out = pl.concat(parts) if parts else empty_findings()
    return cast(FrameT, return_like(out, kind))


def _after_suspension(frame: pl.DataFrame, key: pl.Expr) -> pl.DataFrame:
    stops = frame.filter(
        pl.col("action").is_in(["user.suspended", "user.removed"]) & (pl.col("result") == "success")
    ).select(
        "organization_id",
        pl.col("timestamp").alias("stopped_at"),
        pl.col("audit_id").alias("stop_id"),
        pl.col("action").alias("stop_action"),
        pl.col("resource_id").alias("target_id"),
        pl.col("resource_name").str.to_lowercase().alias("target_email"),
    )
    if stops.is_empty():
        return empty_findings()
    acts = frame.filter((pl.col("actor_type") == "user") & (pl.col("result") != "failure")).select(
        "organization_id",
        "timestamp",
        "seq",
        "audit_id",
        key.alias("key"),
        pl.col("actor_user_id"),
        pl.col("actor_email").str.to_lowercase().alias("email"),
    )
    # equi-joins on the stopped identity (by user id, then by email), never a per-organization
    # cross product: one organization may hold millions of actions and thousands of stops
    by_id = acts.join(
        stops.drop("target_email"),
        left_on=["organization_id", "actor_user_id"],
        right_on=["organization_id", "target_id"],
    )
    by_email = acts.join(
        stops.drop("target_id"),
        left_on=["organization_id", "email"],
        right_on=["organization_id", "target_email"],
    )
    hits = (
        pl.concat([by_id, by_email], how="diagonal")
        .filter(pl.col("timestamp") > pl.col("stopped_at"))
        .unique(["audit_id", "stop_id"])
    )
    if hits.is_empty():
        return empty_findings()
    rows = (
        hits.sort(evidence_order(hits))
        .group_by(["organization_id", "key", "stop_id"])
        .agg(
            pl.col("timestamp").min().alias("window_start"),
            pl.col("timestamp").max().alias("window_end"),
            pl.len().alias("count"),
            pl.col("audit_id").alias("audit_ids"),
            pl.col("stop_action").first(),
            pl.col("stopped_at").first(),
        )
    )
    return build_findings(
        rows,
        "unusual_access",
        "critical",
        "actor",
        pl.format(
            "{} performed {} action(s) after {} at {}",
            pl.col("key"),
            pl.col("count"),
            pl.col("stop_action"),
            pl.col("stopped_at").dt.strftime("%Y-%m-%d %H:%M UTC"),
        ),
        pl.format(
            '{{"reason": "activity_after_{}", "stop_audit_id": "{}"}}',
            pl.col("stop_action").str.replace("user.", "", literal=True),
            pl.col("stop_id"),
        ),
    )
