"""Evaluating rules over a time range of the store: which alerts fire.

Count rules use the same sliding windows as the detectors (``> N in any W`` per group,
overlapping windows merged); ``<``/``<=`` rules ("fewer than N per W") use
consecutive windows over the range, for every group seen in it. Detector rules run
their detector. Filters and time ranges are pushed down into SQL.

Example:
    >>> import auditlens as al
    >>> from auditlens.alerts.rules import parse_rules
    >>> store = al.open_store("sqlite://")
    >>> rule = parse_rules('alert: X\\ntrigger: {action: auth.failed, count: "> 2", window: 5m}\\n'
    ...                    'notification: {email: a@b.io}\\n').rules[0]
    >>> evaluate(store, rule, since="24h")
    []
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from auditlens import detect
from auditlens.alerts.rules import Rule
from auditlens.context import with_context
from auditlens.detect.findings import merge_flagged_windows, rolling_count
from auditlens.query.filters import parse_duration, parse_when

if TYPE_CHECKING:
    from auditlens.store.store import Store

__all__ = ["Alert", "evaluate"]

_LOOKBACK = {"unusual_access": timedelta(days=30), "off_hours": timedelta(hours=1)}


@dataclass(frozen=True)
class Alert:
    """One firing of one rule for one group and time window."""

    alert_id: str
    rule: str
    severity: str
    organization_id: str
    group_by: str
    group: str
    window_start: datetime
    window_end: datetime
    count: int
    audit_ids: list[str] = field(default_factory=list)
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict (what webhooks receive)."""
        return {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "severity": self.severity,
            "organization_id": self.organization_id,
            "group_by": self.group_by,
            "group": self.group,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "count": self.count,
            "audit_ids": self.audit_ids,
            "summary": self.summary,
        }


def _alert_id(rule: str, org: str, group: str, start: datetime) -> str:
    raw = f"{rule}|{org}|{group}|{int(start.timestamp() * 1000)}".encode()
    return hashlib.sha256(raw).hexdigest()[:24]


def _key(group_by: str) -> pl.Expr:
    return {
        "actor": pl.coalesce("actor_email", "actor_user_id", pl.lit("(unknown)")),
        "ip": pl.coalesce("ip_address", pl.lit("(no ip)")),
        "organization": pl.col("organization_id"),
        "resource": pl.coalesce("resource_id", "resource_name", pl.lit("(none)")),
        "action": pl.col("action"),
    }[group_by]


def _when(value: str | datetime | timedelta | None, now: datetime) -> datetime:
    if value is None:
        return now
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, timedelta):
        return now - value
    if value[:1].isdigit() and value[-1:].isalpha() and "-" not in value:
        return now - parse_duration(value)

    return datetime.fromtimestamp(parse_when(value) / 1000, UTC)


def evaluate(
    store: Store,
    rule: Rule,
    *,
    since: str | datetime | timedelta = "24h",
    until: str | datetime | None = None,
    now: datetime | None = None,
) -> list[Alert]:
    """Alerts of ``rule`` whose window ends in [since, until] (a backtest over history)."""
    now = now or datetime.now(UTC)
    start, end = _when(since, now), _when(until, now)
    if rule.trigger.detector is not None:
        return _detector_alerts(store, rule, start, end)
    if rule.trigger.sigma is not None:
        from auditlens.sigma import (
            detect as sigma_detect,  # lazy: auditlens.sigma imports the alert rules
        )

        return _alerts_of(rule, sigma_detect(store, rule.trigger.sigma, since=start, until=end))
    return _count_alerts(store, rule, start, end)


def _frame(store: Store, rule: Rule, start: datetime, end: datetime) -> pl.DataFrame:
    t = rule.trigger
    filters: dict[str, Any] = {"start": start, "end": end}
    if t.actions:
        filters["actions"] = list(t.actions)
    frame: pl.DataFrame = store.query(t.query, backend="polars", order="asc", **filters)
    return frame


def _count_alerts(store: Store, rule: Rule, start: datetime, end: datetime) -> list[Alert]:
    t = rule.trigger
    df = _frame(store, rule, start - t.window, end)
    if df.is_empty() and t.op not in ("<", "<="):
        return []
    ev = df.select("organization_id", _key(t.group_by).alias("key"), "timestamp", "audit_id")
    alerts: list[Alert] = []
    if t.op in (">", ">=", "=="):
        ev = rolling_count(ev, t.window)
        cond = {
            ">": pl.col("_n") > t.count,
            ">=": pl.col("_n") >= t.count,
            "==": pl.col("_n") == t.count,
        }[t.op]
        rows = merge_flagged_windows(ev, cond, t.window).filter(pl.col("window_end") >= start)
        for r in rows.sort("window_start").iter_rows(named=True):
            alerts.append(
                _make(
                    rule,
                    r["organization_id"],
                    r["key"],
                    r["window_start"],
                    r["window_end"],
                    int(r["count"]),
                    list(r["audit_ids"]),
                )
            )
        return alerts
    # fewer than N per window: consecutive windows over [start, end] for every group seen
    groups = ev.select("organization_id", "key").unique().sort(["organization_id", "key"]).rows()
    n_windows = max(1, int((end - start) / t.window))
    for org, key in groups:
        mine = ev.filter((pl.col("organization_id") == org) & (pl.col("key") == key))
        for i in range(n_windows):
            ws, we = start + i * t.window, start + (i + 1) * t.window
            inside = mine.filter((pl.col("timestamp") >= ws) & (pl.col("timestamp") < we))
            n = inside.height
            if (n < t.count) if t.op == "<" else (n <= t.count):
                alerts.append(_make(rule, org, key, ws, we, n, inside["audit_id"].to_list()))
    return alerts


def _make(
    rule: Rule, org: str, key: str, ws: datetime, we: datetime, n: int, ids: list[str]
) -> Alert:
    t = rule.trigger
    what = " or ".join(t.actions) if t.actions else f"entries matching {t.query!r}"
    summary = (
        f"{rule.name}: {n} × {what} for {t.group_by} {key} between "
        f"{ws:%Y-%m-%d %H:%M:%S} and {we:%H:%M:%S} UTC (fires when {t.op} {t.count} "
        f"in {int(t.window.total_seconds() // 60)} min)"
    )
    return Alert(
        _alert_id(rule.name, org, key, ws),
        rule.name,
        rule.severity,
        org,
        t.group_by,
        key,
        ws,
        we,
        n,
        ids,
        summary,
    )


def _detector_alerts(store: Store, rule: Rule, start: datetime, end: datetime) -> list[Alert]:

    t = rule.trigger
    assert t.detector is not None
    lookback = max(t.window, _LOOKBACK.get(t.detector, timedelta(hours=1)))
    df = store.query(backend="polars", order="asc", start=start - lookback, end=end)
    # the stored organization context (time zones, hours, people) first; the rule overrides
    findings = detect.run(t.detector, df, **with_context(store, t.params, t.detector))
    return _alerts_of(rule, findings.filter(pl.col("window_end") >= start))


def _alerts_of(rule: Rule, findings: pl.DataFrame) -> list[Alert]:
    """A findings frame (detector or Sigma rule) as alerts of ``rule``."""
    out = []
    for f in findings.iter_rows(named=True):
        out.append(
            Alert(
                _alert_id(rule.name, f["organization_id"], f["subject"], f["window_start"]),
                rule.name,
                max(rule.severity, f["severity"], key=["low", "medium", "high", "critical"].index),
                f["organization_id"],
                f["subject_type"],
                f["subject"],
                f["window_start"],
                f["window_end"],
                int(f["count"]),
                list(f["audit_ids"]),
                f"{rule.name}: {f['summary']}",
            )
        )
    return out
