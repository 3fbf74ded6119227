"""Streaming new entries, also when another process appends them."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import auditlens as al
from tests.helpers import make_entry


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
    seen: list[dict] = []

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
