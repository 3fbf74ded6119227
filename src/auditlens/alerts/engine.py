"""Alert state, deliveries, backtests and the live watch.

State lives in the store (``alert_state``, ``alert_deliveries``), so a spike notifies
once, a restarted watch neither repeats nor loses alerts, and a delivery that fails
is recorded and retried later (1 min, 5 min, 30 min, then hourly), never dropped.
A burst is one alert: a later window of the same rule and group that starts before
the previous one ended plus the cooldown is folded into it.

Example:
    >>> import auditlens as al
    >>> from auditlens.alerts.rules import parse_rules
    >>> store = al.open_store("sqlite://")
    >>> rules = parse_rules('alert: X\\ntrigger: {action: auth.failed, count: "> 2"}\\n'
    ...                     'notification: {email: a@b.io}\\n')
    >>> check(store, rules.rules, since="1h")
    []
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select, update

from auditlens.alerts.channels import DeliveryError, NotifierConfig, send
from auditlens.alerts.evaluate import Alert, evaluate
from auditlens.alerts.rules import Rule
from auditlens.alerts.tables import alert_deliveries, alert_state
from auditlens.errors import ConfigError
from auditlens.store.backend import entries

if TYPE_CHECKING:
    from auditlens.store.store import Store

__all__ = ["Delivery", "check", "deliveries", "notify", "retry_pending", "watch"]

_RETRY_AFTER = [60, 300, 1800, 3600]
_CURSOR = ("__watch__", "cursor")
_D = alert_deliveries.c
_S = alert_state.c


@dataclass(frozen=True)
class Delivery:
    """One alert sent (or to be sent) to one target."""

    alert_id: str
    rule: str
    channel: str
    target: str
    status: str
    attempts: int
    last_error: str | None


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _suppress(
    alerts: Sequence[Alert], rules: dict[str, Rule], state: dict[tuple[str, str], int]
) -> list[Alert]:
    """Fold alerts into earlier ones of the same burst.

    ``state`` maps (rule, group) to the end of the last notified window (epoch ms).
    """
    out = []
    for a in sorted(alerts, key=lambda a: a.window_start):
        key = (a.rule, f"{a.organization_id}|{a.group}")
        last = state.get(key)
        cooldown = rules[a.rule].cooldown
        if last is not None and _ms(a.window_start) < last + int(cooldown.total_seconds() * 1000):
            state[key] = max(last, _ms(a.window_end))
            continue
        state[key] = _ms(a.window_end)
        out.append(a)
    return out


def check(
    store: Store,
    rules: Sequence[Rule],
    *,
    since: str | datetime | timedelta = "24h",
    until: str | datetime | None = None,
) -> list[Alert]:
    """Backtest: the alerts the rules would have sent over a past period (nothing is sent)."""
    by_name = {r.name: r for r in rules}
    found: list[Alert] = []
    for rule in rules:
        found.extend(evaluate(store, rule, since=since, until=until))
    return _suppress(found, by_name, {})


def _load_state(store: Store) -> dict[tuple[str, str], int]:
    with store.connect() as conn:
        return {
            (r, g): int(e)
            for r, g, e in conn.execute(select(_S.rule, _S.group_key, _S.last_window_end_ms))
        }


def _save_state(
    store: Store, changed: dict[tuple[str, str], int], ids: dict[tuple[str, str], str]
) -> None:
    now = int(time.time() * 1000)
    with store.transaction() as conn:
        for (rule, group), end in changed.items():
            exists = conn.execute(
                select(func.count())
                .select_from(alert_state)
                .where(and_(_S.rule == rule, _S.group_key == group))
            ).scalar_one()
            values = {
                "last_window_end_ms": end,
                "fired_at_ms": now,
                "last_alert_id": ids.get((rule, group), ""),
            }
            if exists:
                conn.execute(
                    update(alert_state)
                    .where(and_(_S.rule == rule, _S.group_key == group))
                    .values(**values)
                )
            else:
                conn.execute(alert_state.insert().values(rule=rule, group_key=group, **values))


def notify(
    store: Store,
    alerts: Sequence[Alert],
    rules: Sequence[Rule],
    config: NotifierConfig | None = None,
) -> list[Alert]:
    """Send the alerts that are new (not part of a burst already notified) and record them.

    Returns the alerts that were new. Each (alert, channel, target) is recorded once
    in ``alert_deliveries``; failures stay there as ``failed`` with the next retry time.
    """
    cfg = config or NotifierConfig.from_env()
    by_name = {r.name: r for r in rules}
    state = _load_state(store)
    before = dict(state)
    fresh = _suppress(alerts, by_name, state)
    changed = {k: v for k, v in state.items() if before.get(k) != v}
    ids = {(a.rule, f"{a.organization_id}|{a.group}"): a.alert_id for a in fresh}
    now = int(time.time() * 1000)
    with store.transaction() as conn:
        for a in fresh:
            note = by_name[a.rule].notification
            for channel, targets in (
                ("email", note.email),
                ("slack", note.slack),
                ("webhook", note.webhook),
            ):
                for target in targets:
                    seen = conn.execute(
                        select(func.count())
                        .select_from(alert_deliveries)
                        .where(
                            and_(
                                _D.alert_id == a.alert_id,
                                _D.channel == channel,
                                _D.target == target,
                            )
                        )
                    ).scalar_one()
                    if not seen:
                        conn.execute(
                            alert_deliveries.insert().values(
                                alert_id=a.alert_id,
                                rule=a.rule,
                                channel=channel,
                                target=target,
                                status="pending",
                                attempts=0,
                                last_error=None,
                                next_attempt_ms=now,
                                payload=json.dumps(a.to_json()),
                                created_ms=now,
                                sent_ms=None,
                            )
                        )
    _save_state(store, changed, ids)
    retry_pending(store, cfg)
    return fresh


def _from_payload(payload: str) -> Alert:
    d = json.loads(payload)
    return Alert(
        d["alert_id"],
        d["rule"],
        d["severity"],
        d["organization_id"],
        d["group_by"],
        d["group"],
        datetime.fromisoformat(d["window_start"]),
        datetime.fromisoformat(d["window_end"]),
        int(d["count"]),
        list(d["audit_ids"]),
        d["summary"],
    )


def retry_pending(
    store: Store, config: NotifierConfig | None = None, *, force: bool = False
) -> int:
    """Send every pending or failed delivery that is due; returns how many were sent now."""
    cfg = config or NotifierConfig.from_env()
    now = int(time.time() * 1000)
    cond = _D.status != "sent"
    if not force:
        cond = and_(cond, _D.next_attempt_ms <= now)
    with store.connect() as conn:
        due = conn.execute(
            select(_D.id, _D.channel, _D.target, _D.payload, _D.attempts)
            .where(cond)
            .order_by(_D.id)
        ).all()
    sent = 0
    for row_id, channel, target, payload, attempts in due:
        status, error = "sent", None
        sent_ms: int | None = int(time.time() * 1000)
        try:
            send(cfg, channel, target, _from_payload(payload))
            sent += 1
        except (DeliveryError, ConfigError) as exc:
            status, error, sent_ms = "failed", str(exc), None
        wait = _RETRY_AFTER[min(attempts, len(_RETRY_AFTER) - 1)] * 1000
        with store.transaction() as conn:
            conn.execute(
                update(alert_deliveries)
                .where(_D.id == row_id)
                .values(
                    status=status,
                    attempts=attempts + 1,
                    last_error=error,
                    sent_ms=sent_ms,
                    next_attempt_ms=int(time.time() * 1000) + wait,
                )
            )
    return sent


def deliveries(store: Store) -> list[Delivery]:
    """Every recorded delivery, oldest first."""
    with store.connect() as conn:
        return [
            Delivery(*r)
            for r in conn.execute(
                select(
                    _D.alert_id,
                    _D.rule,
                    _D.channel,
                    _D.target,
                    _D.status,
                    _D.attempts,
                    _D.last_error,
                ).order_by(_D.id)
            )
        ]


def _cursor(store: Store) -> int | None:
    with store.connect() as conn:
        v = conn.execute(
            select(_S.last_window_end_ms).where(
                and_(_S.rule == _CURSOR[0], _S.group_key == _CURSOR[1])
            )
        ).scalar()
    return int(v) if v is not None else None


def watch(
    store: Store,
    rules: Sequence[Rule],
    config: NotifierConfig | None = None,
    *,
    poll_interval: float = 1.0,
    stop: threading.Event | None = None,
    on_alert: Callable[[Alert], Any] | None = None,
) -> None:
    """Follow new entries and notify as rules fire, until ``stop`` is set.

    The position in the log is saved in the store after each round, so a restart
    picks up the entries appended while it was down (and sends nothing twice).
    """
    cfg = config or NotifierConfig.from_env()
    stop = stop or threading.Event()
    last_id = _cursor(store)
    if last_id is None:
        with store.connect() as conn:
            last_id = store.stream_top(conn)
        _save_state(store, {_CURSOR: last_id}, {})
    while not stop.is_set():
        with store.connect() as conn:
            safe = store.stream_top(conn)  # below it every entry has committed (PostgreSQL)
            top, lo, hi = conn.execute(
                select(
                    func.max(entries.c.id), func.min(entries.c.ts), func.max(entries.c.ts)
                ).where(entries.c.id > last_id, entries.c.id <= safe)
            ).one()
        if top is not None:
            since = datetime.fromtimestamp(lo / 1000, UTC)
            until = datetime.fromtimestamp(hi / 1000, UTC) + timedelta(milliseconds=1)
            found = []
            for rule in rules:
                found.extend(evaluate(store, rule, since=since, until=until))
            for a in notify(store, found, rules, cfg):
                if on_alert is not None:
                    on_alert(a)
            last_id = int(top)
            _save_state(store, {_CURSOR: last_id}, {})
        else:
            retry_pending(store, cfg)
        stop.wait(poll_interval)
