"""The append-only, hash-chained store of audit entries (SQLite or PostgreSQL).

The storage layer: it imports no feature. Its names load on first use (PEP 562), so
``auditlens.store.tables`` (which :mod:`auditlens.query.compile` reads) can be imported
without the store class, and the query layer stays below the store.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from auditlens.store.store import AppendedEntry, Page, Stats, Store, Where

__all__ = ["AppendedEntry", "Page", "Stats", "Store", "Where"]


def __getattr__(name: str) -> object:
    """Load a public name from :mod:`auditlens.store.store` on first use."""
    if name not in __all__:
        raise AttributeError(f"module 'auditlens.store' has no attribute {name!r}")
    value: object = getattr(_importlib.import_module("auditlens.store.store"), name)
    globals()[name] = value
    return value
