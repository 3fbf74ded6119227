"""The append-only, hash-chained store of audit entries (SQLite or PostgreSQL)."""

from __future__ import annotations

from auditlens.store.store import AppendedEntry, AuditStore, Page, Stats, open_store

__all__ = ["AppendedEntry", "AuditStore", "Page", "Stats", "open_store"]
