"""Seed-compatible helpers: the two functions of the original product sketch.

They are thin, documented aliases of the store's own methods, kept because the seed's
examples call them; new code uses the methods (one name per concept):

- ``query_audit_trail(store, start_date=…, end_date=…, actions=…)`` is
  ``store.entries(start=…, end=…, actions=…, order="asc")`` (a list of entries in the
  JSON shape; ``store.query`` gives the same entries as a dataframe);
- ``stream_audit_events(store, filter=…, callback=…)`` is ``for e in store.stream(where):
  callback(e)`` (``filter`` is the seed's name for ``where``).

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> al.query_audit_trail(store, start_date="2025-01-01", end_date="2025-01-31",
    ...                      actions=["auth.failed"], limit=100)
    []
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Unpack

from auditlens.query.filters import Filter
from auditlens.query.keywords import FilterKeywords, When
from auditlens.store.store import Store

__all__ = ["query_audit_trail", "stream_audit_events"]


def query_audit_trail(
    store: Store,
    *,
    start_date: When | None = None,
    end_date: When | None = None,
    limit: int | None = 100,
    **filters: Unpack[FilterKeywords],
) -> list[dict[str, Any]]:
    """Entries between two dates (inclusive; date-only ends cover the whole day) in the JSON shape.

    ``actions`` (exact names or ``webhook.*``) and any other keyword filter of
    :meth:`Store.query` may be added.
    """
    period = Filter.from_kwargs(start=start_date, end=end_date)
    return store.entries(period, limit=limit, order="asc", **filters)


def stream_audit_events(
    store: Store,
    *,
    filter: Filter | Mapping[str, Any] | str | None = None,
    callback: Callable[[dict[str, Any]], object],
    poll_interval: float = 1.0,
    since: str | datetime | timedelta | None = None,
    stop: threading.Event | None = None,
    max_events: int | None = None,
) -> int:
    """Call ``callback(entry)`` for each new matching entry until ``stop`` is set.

    Runs until stopped (Ctrl-C, ``stop.set()`` from another thread, or
    ``max_events`` reached) and returns the number of entries delivered. ``filter`` is
    the ``where`` of :meth:`auditlens.store.Store.stream` (a search string, mapping of
    keyword filters or :class:`~auditlens.query.Filter`).
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
