"""Plans and how long each keeps entries (model layer: no imports from the rest of auditlens).

Retention (:mod:`auditlens.retention`) removes entries older than the plan allows, through the
archive; on PostgreSQL the archive-first removal function (:mod:`auditlens.store.roles`) checks
the same numbers inside the database, so both read them from here.

Example:
    >>> RETENTION_DAYS["starter"], RETENTION_DAYS["enterprise"]
    (30, None)
"""

from __future__ import annotations

__all__ = ["RETENTION_DAYS"]

#: days each plan keeps entries; ``None``: the organization sets it (enterprise).
RETENTION_DAYS: dict[str, int | None] = {"free": 7, "starter": 30, "pro": 365, "enterprise": None}
