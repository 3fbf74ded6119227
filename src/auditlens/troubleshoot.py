"""Answers to the support questions the audit trail exists for.

* "Why did this webhook stop receiving events?" → :func:`resource_history` (every
  change with its before/after diff, tests that failed, the deletion) and
  :func:`webhook_diagnosis` (a plain-language reading of that history).
* "Who changed this application's settings?" → :func:`who_changed`.
* "Why can't user X access resource Y?" → :func:`access_investigation`.

Each query runs in the database (by resource, application or actor), so the answers
are quick on stores of any size.

Example:
    >>> import auditlens as al
    >>> from auditlens import troubleshoot
    >>> store = al.open_store("sqlite://")
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> _ = store.append([{"action": "webhook.updated", "result": "success", "organization_id": org,
    ...     "actor": {"email": "jane@company.com", "type": "user"},
    ...     "resource": {"type": "webhook", "id": "wh-1", "name": "Orders"},
    ...     "details": {"before": {"url": "https://a.example/in", "enabled": True},
    ...                 "after": {"url": "https://a.example/in", "enabled": False}}}])
    >>> troubleshoot.resource_history(store, "wh-1")["changes"].to_list()
    ['enabled: True → False']
    >>> print(troubleshoot.webhook_diagnosis(store, "wh-1"))
    Orders (wh-1): disabled by jane@company.com at ... (enabled: True → False).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from auditlens.store.store import AuditStore

__all__ = [
    "Investigation",
    "access_investigation",
    "describe_change",
    "diff",
    "resource_history",
    "webhook_diagnosis",
    "who_changed",
]

_FMT = "%Y-%m-%d %H:%M UTC"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1] if prefix else "value": value}


def diff(before: Any, after: Any) -> list[str]:
    """What changed between two configurations, one ``path: old → new`` per leaf.

    Example:
        >>> diff({"url": "a", "retries": 3}, {"url": "b", "retries": 3, "secret": "x"})
        ['secret: (none) → x', 'url: a → b']
    """
    b, a = _flatten(before or {}), _flatten(after or {})
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, _MISSING) != b.get(key, _MISSING):
            old = b.get(key, "(none)")
            new = a.get(key, "(none)")
            out.append(f"{key}: {old} → {new}")
    return out


_MISSING = object()


def describe_change(details: str | None) -> str:
    """What a change entry's ``details`` say changed: ``path: old → new; …`` ("" if nothing).

    Example:
        >>> describe_change('{"before": {"url": "a"}, "after": {"url": "b"}}')
        'url: a → b'
        >>> describe_change('{"setting": "allowed_domains", "before": "30", "after": "60"}')
        'allowed_domains: 30 → 60'
    """
    if not details:
        return ""
    try:
        d = json.loads(details)
    except ValueError:
        return ""
    if not isinstance(d, dict) or ("before" not in d and "after" not in d):
        return ""
    if "setting" in d:
        return f"{d['setting']}: {d.get('before')} → {d.get('after')}"
    return "; ".join(diff(d.get("before"), d.get("after")))


def _timeline(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        "timestamp",
        pl.coalesce("actor_email", "actor_user_id", pl.lit("(system)")).alias("actor"),
        "action",
        "result",
        "resource_type",
        "resource_id",
        "resource_name",
        "ip_address",
        # one call per change entry (a resource's history, not a whole table)
        pl.col("details").map_elements(describe_change, return_dtype=pl.Utf8).alias("changes"),
        "details",
        "audit_id",
    )


def resource_history(
    store: AuditStore, resource_id: str, *, organization_id: str | None = None
) -> pl.DataFrame:
    """Every entry about one resource, oldest first, with a ``changes`` column (before → after)."""
    extra: dict[str, Any] = {"organization_id": organization_id} if organization_id else {}
    frame = store.query(resource_id=resource_id, backend="polars", order="asc", **extra)
    return _timeline(frame)


def who_changed(
    store: AuditStore,
    *,
    application_id: str | None = None,
    resource_id: str | None = None,
    organization_id: str | None = None,
) -> pl.DataFrame:
    """Who changed an application's (or any resource's) configuration: updates, creations,
    deletions and member changes, oldest first, with what changed.

    Example:
        >>> import auditlens as al
        >>> who_changed(al.open_store("sqlite://"), application_id="app-1").height
        0
    """
    if application_id is None and resource_id is None:
        from auditlens.errors import FilterError

        raise FilterError("name the application_id or the resource_id to look at")
    extra: dict[str, Any] = {"organization_id": organization_id} if organization_id else {}
    changing = ("*.created", "*.updated", "*.deleted", "*.member_added", "*.settings_updated")
    frames = []
    if application_id is not None:
        frames.append(store.query(application_id=application_id, backend="polars", **extra))
        frames.append(store.query(resource_id=application_id, backend="polars", **extra))
    if resource_id is not None:
        frames.append(store.query(resource_id=resource_id, backend="polars", **extra))
    frame = pl.concat(frames).unique("audit_id").sort("timestamp")
    suffixes = tuple(c[1:] for c in changing)
    frame = frame.filter(pl.any_horizontal([pl.col("action").str.ends_with(s) for s in suffixes]))
    return _timeline(frame)


def webhook_diagnosis(store: AuditStore, webhook_id: str) -> str:
    """A plain-language reason a webhook may have stopped receiving events."""
    h = resource_history(store, webhook_id)
    if h.is_empty():
        return f"No entry mentions webhook {webhook_id}."
    name = h["resource_name"].drop_nulls()
    label = f"{name[-1] if name.len() else webhook_id} ({webhook_id})"
    last = h.row(-1, named=True)
    when = last["timestamp"].strftime(_FMT)
    if last["action"].endswith(".deleted"):
        return f"{label}: deleted by {last['actor']} at {when}."
    for row in h.reverse().iter_rows(named=True):  # a resource's own history, newest first
        ch = row["changes"] or ""
        if "enabled: True → False" in ch:
            return (
                f"{label}: disabled by {row['actor']} at {row['timestamp'].strftime(_FMT)} ({ch})."
            )
        if "url:" in ch:
            return (
                f"{label}: its URL was changed by {row['actor']} at "
                f"{row['timestamp'].strftime(_FMT)} ({ch}); events now go to the new address."
            )
        if "events" in ch:
            return (
                f"{label}: its event filter was changed by {row['actor']} at "
                f"{row['timestamp'].strftime(_FMT)} ({ch})."
            )
    failed = h.filter(pl.col("result") == "failure")
    if failed.height:
        f = failed.row(-1, named=True)
        return (
            f"{label}: {failed.height} failed {f['action']} entr(ies), the last at "
            f"{f['timestamp'].strftime(_FMT)}; the receiving endpoint may be down."
        )
    return (
        f"{label}: no deletion, disabling or URL change recorded; "
        f"last entry {last['action']} at {when}."
    )


@dataclass
class Investigation:
    """Everything that bears on one user's access, in order, and its reading."""

    user: str
    events: pl.DataFrame
    summary: str

    def _repr_markdown_(self) -> str:
        return f"**{self.user}** — {self.summary}"


_ACCESS_ACTIONS = (
    "auth.failed",
    "auth.login",
    "auth.password_reset",
    "auth.mfa_enabled",
    "user.invited",
    "user.joined",
    "user.suspended",
    "user.removed",
    "user.role_changed",
    "application.member_added",
)


def access_investigation(
    store: AuditStore,
    user: str,
    *,
    resource: str | None = None,
    organization_id: str | None = None,
) -> Investigation:
    """Why can't ``user`` (email or user id) get in: failed sign-ins, role changes,
    suspensions, removals and memberships, oldest first, with a plain-language summary.

    ``resource`` (an id or name) adds that resource's own access changes.
    """
    extra: dict[str, Any] = {"organization_id": organization_id} if organization_id else {}
    as_actor = store.query(actor=user, actions=list(_ACCESS_ACTIONS), backend="polars", **extra)
    as_subject = store.query(
        resource=user, actions=list(_ACCESS_ACTIONS), backend="polars", **extra
    )
    parts = [as_actor, as_subject]
    if resource is not None:
        parts.append(
            store.query(
                resource=resource,
                actions=["application.member_added", "*.deleted"],
                backend="polars",
                **extra,
            )
        )
    frame = pl.concat(parts).unique("audit_id").sort("timestamp")
    events = _timeline(frame)
    return Investigation(user, events, _read(user, events, resource))


def _read(user: str, ev: pl.DataFrame, resource: str | None) -> str:
    if ev.is_empty():
        return f"No sign-in, membership or role entry mentions {user}: check the address or id."
    said: list[str] = []

    def last(action: str) -> dict[str, Any] | None:
        part = ev.filter(pl.col("action") == action)
        return part.row(-1, named=True) if part.height else None

    removed, suspended = last("user.removed"), last("user.suspended")
    if removed:
        said.append(f"{user} was removed by {removed['actor']} on {removed['timestamp']:%Y-%m-%d}.")
    elif suspended:
        said.append(
            f"{user} was suspended by {suspended['actor']} on {suspended['timestamp']:%Y-%m-%d}"
            " and has not been reinstated."
        )
    role = last("user.role_changed")
    if role:
        said.append(
            f"Their role was last changed by {role['actor']} ({role['changes'] or 'see details'})."
        )
    fails = ev.filter(pl.col("action") == "auth.failed")
    login = last("auth.login")
    if fails.height:
        tail = fails.row(-1, named=True)
        recent = f"{fails.height} failed sign-in(s), the last on {tail['timestamp']:%Y-%m-%d %H:%M}"
        if login is None or login["timestamp"] < tail["timestamp"]:
            said.append(
                recent + ", with no successful sign-in since: a password or MFA problem, "
                "or someone else trying the account."
            )
        else:
            said.append(recent + f"; signed in successfully on {login['timestamp']:%Y-%m-%d}.")
    elif login:
        said.append(f"Last successful sign-in on {login['timestamp']:%Y-%m-%d %H:%M}.")
    if resource is not None:
        member = ev.filter(
            (pl.col("action") == "application.member_added")
            & ((pl.col("resource_id") == resource) | (pl.col("resource_name") == resource))
        )
        deleted = ev.filter(pl.col("action").str.ends_with(".deleted"))
        if deleted.height:
            said.append(f"{resource} was deleted on {deleted['timestamp'][-1]:%Y-%m-%d}.")
        elif member.height == 0:
            said.append(f"No entry adds {user} as a member of {resource}.")
    if not said:
        said.append("Nothing in the trail blocks this user.")
    return " ".join(said)
