"""Seed-compatible helpers: the two functions of the original product sketch.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> al.query_audit_trail(store, start_date="2025-01-01", end_date="2025-01-31",
    ...                      actions=["auth.failed"], limit=100)
    []
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from auditlens.store.store import Store

__all__ = ["query_audit_trail", "stream_audit_events"]


def query_audit_trail(
    store: Store,
    *,
    start_date: Any = None,
    end_date: Any = None,
    actions: Sequence[str] | str | None = None,
    limit: int | None = 100,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Entries between two dates (inclusive; date-only ends cover the whole day) in the JSON shape.

    Any other keyword filter of :meth:`Store.query` may be added.
    """
    return store.entries(
        start=start_date, end=end_date, actions=actions, limit=limit, order="asc", **filters
    )


def stream_audit_events(
    store: Store,
    *,
    filter: Mapping[str, Any] | str | None = None,
    callback: Callable[[dict[str, Any]], Any],
    poll_interval: float = 1.0,
    since: Any = None,
    stop: threading.Event | None = None,
    max_events: int | None = None,
) -> int:
    """Call ``callback(entry)`` for each new matching entry until ``stop`` is set.

    Runs until stopped (Ctrl-C, ``stop.set()`` from another thread, or
    ``max_events`` reached) and returns the number of entries delivered.
    """
    delivered = 0
    try:
        for entry in store.stream(
            filter, since=since, poll_interval=poll_interval, stop=stop, max_events=max_events
        ):
            callback(entry)
            delivered += 1
    except KeyboardInterrupt:
        pass
    return delivered
