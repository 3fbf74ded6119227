"""Backtests, notifications over real loopback servers, delivery state, retries and the live watch."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

import auditlens as al
from auditlens.alerts import (
    NotifierConfig,
    check,
    deliveries,
    evaluate,
    notify,
    parse_rules,
    retry_pending,
    watch,
)
from tests.alerts.servers import http_server, smtp_env, smtp_server
from tests.helpers import make_entry

NOW = datetime.now(UTC).replace(microsecond=0)


def failures(
    n: int, start: datetime, actor: str = "jane@company.com", step: float = 20
) -> list[dict]:
    return [
        make_entry(
            action="auth.failed",
            result="failure",
            resource=None,
            actor={"user_id": None, "email": actor, "type": "user"},
            timestamp=(start + timedelta(seconds=step * i)).isoformat(),
        )
        for i in range(n)
    ]


def rules(notification: str = "email: security@company.com", extra: str = "") -> list:
    return parse_rules(f"""alert: Failed Login Spike
trigger:
  action: auth.failed
  count: "> 5"
  window: 5m
  group_by: actor
severity: high
notification:
  {notification}
{extra}""").rules


def test_backtest_finds_each_burst_once(store: al.AuditStore) -> None:
    store.append(
        failures(8, NOW - timedelta(hours=3))
        + failures(5, NOW - timedelta(hours=2))
        + failures(7, NOW - timedelta(hours=1), actor="bob@company.com")
    )
    found = check(store, rules(), since="24h")
    assert [(a.group, a.count) for a in found] == [("jane@company.com", 8), ("bob@company.com", 7)]
    assert all(a.severity == "high" and len(a.audit_ids) == a.count for a in found)
    assert check(store, rules(), since="90m")[0].group == "bob@company.com"


def test_fewer_than_rule_and_detector_rule(store: al.AuditStore) -> None:
    store.append(
        [
            make_entry(
                action="billing.payment_succeeded", timestamp=(NOW - timedelta(days=3)).isoformat()
            )
        ]
    )
    quiet = parse_rules(
        "alert: No payments\ntrigger: {action: billing.payment_succeeded, count: '< 1', window: 1d}\n"
        "notification: {email: a@x.io}\ncooldown: 1m\n"
    ).rules
    windows = evaluate(store, quiet[0], since=NOW - timedelta(days=4), until=NOW)
    assert [a.count for a in windows] == [0, 0, 0]  # the three days without a payment
    found = check(store, quiet, since=NOW - timedelta(days=4), until=NOW)
    assert [a.window_start for a in found] == [windows[0].window_start, windows[1].window_start]
    store.append(
        [
            make_entry(
                action="webhook.deleted",
                timestamp=(NOW - timedelta(minutes=30, seconds=-i)).isoformat(),
            )
            for i in range(12)
        ]
    )
    det = parse_rules(
        "alert: Bulk\ntrigger: {detector: bulk_deletions}\nnotification: {email: a@x.io}\n"
    ).rules
    [alert] = check(store, det, since="2h")
    assert alert.count == 12 and alert.severity == "high"


def test_email_slack_and_signed_webhook_carry_the_evidence(
    store: al.AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append(failures(7, NOW - timedelta(minutes=20)))
    with smtp_env(monkeypatch) as box, http_server() as (rec, base):
        monkeypatch.setenv(
            "AUDITLENS_SLACK_WEBHOOKS", f"#security-alerts={base}/slack/T000/B000/secretpath"
        )
        monkeypatch.setenv("AUDITLENS_WEBHOOK_SECRET", "s3cret")
        rs = rules(
            "email: security@company.com\n  slack: '#security-alerts'\n  webhook: " + base + "/hook"
        )
        found = check(store, rs, since="1h")
        sent = notify(store, found, rs, NotifierConfig.from_env())
        assert len(sent) == 1
        [mail] = box.messages
        assert box.recipients == [["security@company.com"]]
        assert mail["Subject"] == "[auditlens high] Failed Login Spike: jane@company.com (7)"
        body = mail.get_payload()
        assert "Count:        7" in body and all(a in body for a in found[0].audit_ids)
        by_path = {r["path"]: r for r in rec.requests}
        slack = json.loads(by_path["/slack/T000/B000/secretpath"]["body"])
        assert "Failed Login Spike" in slack["text"] and slack["channel"] == "#security-alerts"
        hook = by_path["/hook"]
        payload = json.loads(hook["body"])["alert"]
        assert payload["count"] == 7 and payload["audit_ids"] == found[0].audit_ids
        ts = hook["headers"]["x-auditlens-timestamp"]
        expected = hmac.new(
            b"s3cret", ts.encode() + b"." + hook["body"], hashlib.sha256
        ).hexdigest()
        assert hook["headers"]["x-auditlens-signature"] == f"sha256={expected}"
        assert {d.status for d in deliveries(store)} == {"sent"}
        # the same spike again (another run, another process): nothing is sent twice
        assert notify(store, check(store, rs, since="1h"), rs, NotifierConfig.from_env()) == []
        assert len(box.messages) == 1


def test_failed_delivery_is_recorded_and_retried_not_dropped(store: al.AuditStore) -> None:
    store.append(failures(7, NOW - timedelta(minutes=20)))
    with http_server() as (rec, base):
        rec.fail_next = 10
        rs = rules(f"webhook: {base}/hook")
        cfg = NotifierConfig(attempts=2, backoff=0.01)
        notify(store, check(store, rs, since="1h"), rs, cfg)
        [d] = deliveries(store)
        assert d.status == "failed" and d.attempts == 1 and "HTTP 500" in (d.last_error or "")
        assert retry_pending(store, cfg) == 0  # not due yet: it waits before trying again
        rec.fail_next = 0
        assert retry_pending(store, cfg, force=True) == 1
        [d] = deliveries(store)
        assert d.status == "sent" and d.attempts == 2 and len(rec.requests) == 1


class Rounds(threading.Event):
    """A ``stop`` event for ``watch`` that counts the watch's completed rounds.

    ``watch`` ends every round (read new entries, evaluate, notify, save its position)
    with ``stop.wait(poll_interval)``, so each call here is one finished round.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self.done = 0

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            self.done += 1
            self._cond.notify_all()
        return super().wait(timeout)

    def await_rounds(self, n: int) -> None:
        """Block until ``n`` more rounds have finished (a deadline only against a hang)."""
        with self._cond:
            target = self.done + n
            assert self._cond.wait_for(lambda: self.done >= target, timeout=60), "watch hung"


def test_watch_notifies_new_spikes_once_across_restarts(
    store: al.AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as (box, port):
        cfg = NotifierConfig(smtp_host="127.0.0.1", smtp_port=port)
        rs = rules()

        def run_watch() -> tuple[Rounds, threading.Thread]:
            stop = Rounds()
            t = threading.Thread(
                target=watch, args=(store, rs, cfg), kwargs={"poll_interval": 0.05, "stop": stop}
            )
            t.start()
            stop.await_rounds(1)  # it has saved its starting position and polled once
            return stop, t

        # a round in progress when entries are appended may have read before them;
        # the round after it starts later, so two finished rounds have seen them
        stop, thread = run_watch()
        store.append(failures(7, datetime.now(UTC) - timedelta(minutes=1), step=1))
        stop.await_rounds(2)
        assert len(box.messages) == 1
        store.append(failures(3, datetime.now(UTC), step=1))  # the same spike goes on: no new mail
        stop.await_rounds(2)
        assert len(box.messages) == 1
        stop.set()
        thread.join(10)
        assert not thread.is_alive()
        # entries appended while the watch is down are seen after a restart, and nothing is repeated
        store.append(
            failures(7, datetime.now(UTC) + timedelta(minutes=30), actor="bob@company.com", step=1)
        )
        stop, thread = run_watch()
        stop.await_rounds(2)
        stop.set()
        thread.join(10)
        assert not thread.is_alive()
        assert [m["Subject"].split(": ")[-1] for m in box.messages] == [
            "jane@company.com (7)",
            "bob@company.com (7)",
        ]


def test_detector_rules_use_the_stored_organization_context(store: al.AuditStore) -> None:
    """An off-hours rule judges a Tokyo admin's 10:00 by Tokyo's clock, not UTC's."""
    org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    day = (NOW - timedelta(days=1)).date()
    while day.weekday() >= 5:  # a workday in Tokyo and in UTC alike
        day -= timedelta(days=1)
    morning_tokyo = datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)  # 10:00 JST
    store.append(
        [
            make_entry(
                actor={"email": "lena.kim@acme.example", "type": "user"},
                action="user.role_changed",
                organization_id=org,
                timestamp=morning_tokyo.isoformat(),
            )
        ]
    )
    rules = parse_rules(
        "alert: Late\ntrigger: {detector: off_hours}\nnotification: {email: a@x.io}\n"
    ).rules
    assert len(check(store, rules, since="7d")) == 1  # 01:00 UTC: off hours by default
    store.set_org_profile(org, timezone="Asia/Tokyo", hours="09:00-18:00")
    assert check(store, rules, since="7d") == []
