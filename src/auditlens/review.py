"""Who reviewed the log: auditlens records its own use in the audit trail it guards.

Exports, scheduled runs, retention, restores and (by default) CLI searches append
``audit_log.*`` entries — one per organization whose entries were touched — with the
reviewer from ``AUDITLENS_ACTOR`` (an email: a ``user`` actor; otherwise the OS user,
as a ``system`` actor), what was asked and how many entries it returned. "Who looked at
or took out what, and when" is then an ordinary search: ``action:audit_log.*``.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> record_review(store, "audit_log.viewed", {org: 3}, {"query": "failed"}, "search")
    1
    >>> store.entries("action:audit_log.viewed")[0]["details"]["rows"]
    3
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditlens.store.store import AuditStore

__all__ = ["record_review", "reviewer"]


def reviewer() -> dict[str, Any]:
    """The actor of review entries: ``$AUDITLENS_ACTOR`` if it is an email, else the system."""
    who = os.environ.get("AUDITLENS_ACTOR", "").strip()
    if "@" in who:
        return {"email": who, "type": "user"}
    return {"type": "system"}


def record_review(
    store: AuditStore,
    action: str,
    counts: Mapping[str, int],
    details: Mapping[str, Any],
    resource_name: str,
) -> int:
    """Append one ``action`` entry per organization in ``counts``; returns how many."""
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = None
    entries = [
        {
            "actor": reviewer(),
            "action": action,
            "organization_id": org,
            "result": "success",
            "resource": {"type": "audit_log", "id": org, "name": resource_name},
            "details": {**details, "rows": n, "os_user": os_user},
        }
        for org, n in sorted(counts.items())
    ]
    if entries:
        store.append(entries)
    return len(entries)
