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
import hashlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from auditlens.errors import ConfigError, ValidationError
from auditlens.schema import normalize_entries, normalize_entry

if TYPE_CHECKING:
    from auditlens.store.store import Store

__all__ = ["check_review", "record_review", "review_entries", "reviewer"]

#: the organization of the trial entry :func:`check_review` validates (never stored)
_PROBE_ORG = "00000000-0000-4000-8000-000000000000"
#: longest text kept whole in a review entry's details; longer text is cut, with its digest
MAX_DETAIL_TEXT = 4096


def reviewer() -> dict[str, Any]:
    """The actor of review entries: ``$AUDITLENS_ACTOR`` if it is an email, else the system.

    A value without ``@`` (or none) means the system actor (the OS user goes into the
    details). A value with ``@`` that is not a usable email address raises
    :class:`~auditlens.errors.ConfigError`: a mistyped reviewer must not become anonymous.
    """
    who = os.environ.get("AUDITLENS_ACTOR", "").strip()
    if "@" not in who:
        return {"type": "system"}
    actor = {"email": who, "type": "user"}
    probe = {"actor": actor, "action": "audit_log.viewed", "organization_id": _PROBE_ORG}
    try:
        normalize_entry({**probe, "result": "success"})
    except ValidationError as exc:
        why = "; ".join(p.message for p in exc.problems)
        raise ConfigError(
            f"AUDITLENS_ACTOR={who!r} is not a usable email address ({why}); set it to the "
            "reviewer's email, or unset it to record the OS user as a system actor"
        ) from None
    return actor


def _fit(value: Any) -> tuple[Any, dict[str, Any]]:
    """``value``, or text cut to :data:`MAX_DETAIL_TEXT` plus what identifies the whole."""
    if isinstance(value, str) and len(value) > MAX_DETAIL_TEXT:
        whole = value.encode()
        return value[:MAX_DETAIL_TEXT], {
            "truncated": True,
            "length": len(value),
            "sha256": hashlib.sha256(whole).hexdigest(),
        }
    return value, {}


def _fit_details(details: Mapping[str, Any], limit: int) -> dict[str, Any]:
    """Details that fit in ``limit`` bytes: long text values (top level, and in a nested
    object such as ``filters``) are cut, each with ``<key>_sha256`` and ``<key>_length``
    of the whole, so the review still identifies exactly what was asked."""
    out = dict(details)
    if len(orjson.dumps(out, option=orjson.OPT_SORT_KEYS)) <= limit:
        return out
    for key, value in details.items():
        if isinstance(value, Mapping):
            inner: dict[str, Any] = {}
            for k, v in value.items():
                inner[k], note = _fit(v)
                if note:
                    inner[f"{k}_sha256"], inner[f"{k}_length"] = note["sha256"], note["length"]
            out[key] = inner
            continue
        out[key], note = _fit(value)
        if note:
            out[f"{key}_sha256"], out[f"{key}_length"] = note["sha256"], note["length"]
            out[f"{key}_truncated"] = True
    return out


def review_entries(
    store: Store,
    action: str,
    counts: Mapping[str, int],
    details: Mapping[str, Any],
    resource_name: str,
) -> list[dict[str, Any]]:
    """The ``action`` entries (one per organization in ``counts``), built and validated.

    Raises:
        ConfigError: ``$AUDITLENS_ACTOR`` is not a usable email address.
        ValidationError: the entries would be refused by the store.
    """
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = None
    actor = reviewer()
    entries = [
        {
            "actor": actor,
            "action": action,
            "organization_id": org,
            "result": "success",
            "resource": {"type": "audit_log", "id": org, "name": resource_name},
            "details": _fit_details(
                {**details, "rows": n, "os_user": os_user}, store.max_details_bytes
            ),
        }
        for org, n in sorted(counts.items())
    ]
    normalize_entries(
        entries, strict_actions=store.strict_actions, max_details_bytes=store.max_details_bytes
    )
    return entries


def check_review(store: Store, action: str, details: Mapping[str, Any], resource_name: str) -> None:
    """Raise now if the review entry of work about to be done could not be recorded.

    For callers that must not do the work (write an export) without its record: the
    reviewer and the details are checked before anything is written.
    """
    review_entries(store, action, {_PROBE_ORG: 0}, details, resource_name)


def record_review(
    store: Store,
    action: str,
    counts: Mapping[str, int],
    details: Mapping[str, Any],
    resource_name: str,
) -> int:
    """Append one ``action`` entry per organization in ``counts``; returns how many.

    Long text in ``details`` (a query of any length) is cut to :data:`MAX_DETAIL_TEXT`
    characters, with the SHA-256 and length of the whole.
    """
    entries = review_entries(store, action, counts, details, resource_name)
    if entries:
        store.append(entries)
    return len(entries)
