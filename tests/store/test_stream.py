"""Streaming new entries, also when another process appends them."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import auditlens as al
from auditlens.alerts import Alert, NotifierConfig, parse_rules, watch
from auditlens.retention import apply_retention, set_plan
from tests.helpers import ORG, ORG2, make_entry


def _append_later(url: str, n: int) -> None:
    time.sleep(0.3)
    store = al.open_store(url)
    store.append([make_entry(action="auth.failed", result="failure") for _ in range(n)])
    store.append([make_entry(action="auth.login")])
    store.close()


def test_stream_yields_new_matching_entries_from_another_process(store_url: str) -> None:
    store = al.open_store(store_url)
    store.append(make_entry(action="auth.failed", result="failure"))  # before: not streamed
    proc = mp.get_context("spawn").Process(target=_append_later, args=(store_url, 3))
    proc.start()
    got = list(store.stream(actions=["auth.failed"], poll_interval=0.05, max_events=3))
    proc.join(60)
    assert [e["action"] for e in got] == ["auth.failed"] * 3
    assert [e["seq"] for e in got] == [2, 3, 4]
    store.close()


def test_stream_since_beginning_and_stop_event(store: al.AuditStore) -> None:
    store.append([make_entry(), make_entry(action="auth.failed", result="failure")])
    stop = threading.Event()
    seen: list[dict[str, Any]] = []

    def consume() -> None:
        al.stream_audit_events(
            store,
            filter="failed",
            callback=seen.append,
            poll_interval=0.02,
            since="beginning",
            stop=stop,
        )

    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(0.2)
    store.append(make_entry(action="auth.failed", result="failure"))
    deadline = time.time() + 5
    while len(seen) < 2 and time.time() < deadline:
        time.sleep(0.02)
    stop.set()
    worker.join(5)
    assert not worker.is_alive()
    assert [e["seq"] for e in seen] == [2, 3]


def _reuse_setup(store: al.AuditStore) -> None:
    """The newest ids belong to entries retention will remove: ORG's plan change, then a
    backfill of ORG's old entries, all appended after ORG2's entries."""
    store.append([make_entry(organization_id=ORG2) for _ in range(3)])
    set_plan(store, ORG, "free")  # 7 days
    store.append(  # more of them than the test appends afterwards
        [
            make_entry(timestamp=f"2025-01-{1 + i:02d}T10:00:00.000Z", details={"i": i})
            for i in range(12)
        ]
    )


def _remove_every_org_entry(store: al.AuditStore, archive: Path) -> None:
    """Retention a year and more later: every entry of ORG is archived and removed."""
    later = datetime.now(UTC) + timedelta(days=400)
    [res] = apply_retention(store, archive, organization_id=ORG, now=later)
    assert res.rows >= 12 and store.count(organization_id=ORG, action="webhook.created") == 0


def test_stream_keeps_up_after_retention_removed_the_newest_ids(
    store: al.AuditStore, tmp_path: Path
) -> None:
    _reuse_setup(store)
    polls = iter(range(100))  # bounds the polls of a stream that missed entries (no hang)
    stream = store.stream(since="beginning", poll_interval=0.01, stop=lambda: next(polls) >= 99)
    stored = store.count()
    assert len([next(stream) for _ in range(stored)]) == stored  # the cursor is at the top
    _remove_every_org_entry(store, tmp_path / "archive")
    fresh = [make_entry(organization_id=ORG2, action="auth.login") for _ in range(6)]
    store.append(fresh)
    got = list(itertools.islice(stream, 7))
    assert [e["action"] for e in got] == ["audit_log.retention_applied"] + ["auth.login"] * 6
    assert [e["audit_id"] for e in got[1:]] == [e["audit_id"] for e in fresh]


class _StopAfter(threading.Event):
    """A ``stop`` for ``alerts.watch`` that ends it after ``rounds`` rounds (no waiting)."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.left = rounds

    def wait(self, timeout: float | None = None) -> bool:
        self.left -= 1
        if self.left <= 0:
            self.set()
        return super().wait(0)


def test_alerts_watch_keeps_up_after_retention_removed_the_newest_ids(
    store: al.AuditStore, tmp_path: Path
) -> None:
    rule = parse_rules(
        'alert: Failed Login Spike\ntrigger:\n  action: auth.failed\n  count: "> 5"\n'
        "  window: 5m\n  group_by: actor\nseverity: high\nnotification:\n  email: sec@x.io\n"
    ).rules
    cfg = NotifierConfig(smtp_host="127.0.0.1", smtp_port=9)  # deliveries fail: not under test
    _reuse_setup(store)
    watch(store, rule, cfg, poll_interval=0, stop=_StopAfter(1))  # saves its position: the top
    _remove_every_org_entry(store, tmp_path / "archive")
    now = datetime.now(UTC)
    store.append(
        [
            make_entry(
                organization_id=ORG2,
                action="auth.failed",
                result="failure",
                resource=None,
                actor={"email": "mallory@company.com", "type": "user"},
                timestamp=(now - timedelta(seconds=60 - 5 * i)).isoformat(),
            )
            for i in range(7)
        ]
    )
    found: list[Alert] = []
    watch(store, rule, cfg, poll_interval=0, stop=_StopAfter(2), on_alert=found.append)
    assert [(a.organization_id, a.group) for a in found] == [(ORG2, "mallory@company.com")]


def test_stream_delivers_an_entry_whose_lower_id_committed_last(store_url: str) -> None:
    """Two writers on two organizations; the one holding the lower id commits last. On
    PostgreSQL the second does not wait for the first (per-organization append locks), and
    the stream still delivers both entries, each exactly once, in id order."""
    store = al.open_store(store_url)
    first, second = al.open_store(store_url), al.open_store(store_url)
    early, late = make_entry(organization_id=ORG), make_entry(organization_id=ORG2)
    inserted, release, second_done = threading.Event(), threading.Event(), threading.Event()

    def hold_first_open() -> None:
        with first._write(orgs=[ORG]):
            first.append(early)  # a savepoint of the open transaction: not committed yet
            inserted.set()
            release.wait(30)

    def append_second() -> None:
        second.append(late)
        second_done.set()

    got: list[dict[str, Any]] = []
    stop = threading.Event()
    consumer = threading.Thread(
        target=lambda: got.extend(store.stream(since="beginning", poll_interval=0.02, stop=stop))
    )
    consumer.start()
    holder = threading.Thread(target=hold_first_open)
    holder.start()
    assert inserted.wait(30)
    writer = threading.Thread(target=append_second)
    writer.start()
    if store.dialect == "postgresql":
        assert second_done.wait(30), "an append to another organization waited for the first"
        time.sleep(0.3)  # the stream polls while only the higher id has committed
    release.set()
    holder.join(30)
    writer.join(60)
    deadline = time.time() + 10
    while len(got) < 2 and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # more polls: nothing is delivered twice
    stop.set()
    consumer.join(10)
    assert [e["audit_id"] for e in got] == [early["audit_id"], late["audit_id"]]
    for s in (store, first, second):
        s.close()
