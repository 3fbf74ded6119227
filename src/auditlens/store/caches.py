"""Named in-memory caches that live as long as one store object.

Features that keep derived state over the entries (the per-organization Merkle trees of
:mod:`auditlens.chain.checkpoints`) keep it here, under a name, instead of in attributes
of the store. Whoever removes or rewrites entries (retention, a test that tampers with
the database) forgets them with :meth:`Caches.invalidate`; the next use rebuilds them.

Example:
    >>> caches = Caches()
    >>> trees = caches.get("merkle_trees")
    >>> trees["org-a"] = "tree"
    >>> caches.get("merkle_trees")
    {'org-a': 'tree'}
    >>> caches.invalidate("merkle_trees")
    >>> caches.get("merkle_trees")
    {}
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["Caches"]


class Caches:
    """A set of named caches (plain dicts), each created empty on first use."""

    def __init__(self) -> None:
        self._slots: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> dict[str, Any]:
        """The cache called ``name``; the same dict on every call until it is invalidated."""
        with self._lock:
            return self._slots.setdefault(name, {})

    def invalidate(self, name: str | None = None) -> None:
        """Forget the cache called ``name``, or every cache when ``name`` is None."""
        with self._lock:
            if name is None:
                self._slots.clear()
            else:
                self._slots.pop(name, None)

    def __repr__(self) -> str:
        return f"Caches({sorted(self._slots)!r})"
