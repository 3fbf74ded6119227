"""Answers to the support questions the audit trail exists for.

* "Why did this webhook stop receiving events?" → :func:`resource_history` (every
  change with its before/after diff, tests that failed, the deletion) and
  :func:`webhook_diagnosis` (a plain-language reading of that history).
* "Who changed this application's settings?" → :func:`who_changed`.
* "Why can't user X access resource Y?" → :func:`access_investigation`.

Every answer is about **one organization**: ``organization_id`` (an id, or the
organization's name) chooses it; without it, the organization is the one the name or id
belongs to, and a name or id found in several organizations raises
:class:`~auditlens.errors.AmbiguousOrganizationError` listing them, rather than mixing
tenants. Each answer is an object with ``summary`` (plain sentences), ``timeline`` (the
entries it read, oldest first) and ``found``; ``str()`` gives the summary.

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
    >>> troubleshoot.resource_history(store, "wh-1").timeline["changes"].to_list()
    ['enabled: True → False']
    >>> print(troubleshoot.webhook_diagnosis(store, "wh-1"))
    Orders (wh-1): disabled by jane@company.com at ... (enabled: True → False).
    >>> troubleshoot.webhook_diagnosis(store, "wh-2").found
    False
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from auditlens.errors import AmbiguousOrganizationError, FilterError

if TYPE_CHECKING:
    from auditlens.store.store import Store

__all__ = [
    "AmbiguousOrganizationError",
    "Answer",
    "Changes",
    "Investigation",
    "ResourceHistory",
    "WebhookDiagnosis",
    "access_investigation",
    "describe_change",
    "diff",
    "organization_names",
    "resource_history",
    "webhook_diagnosis",
    "who_changed",
]

_FMT = "%Y-%m-%d %H:%M UTC"
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


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


# -- organizations ------------------------------------------------------------------------


def organization_names(store: Store, organization_ids: Iterable[str]) -> dict[str, str]:
    """Each organization's name as its own latest ``organization`` entry gives it (the id
    itself when the trail records no name).

    Example:
        >>> import auditlens as al
        >>> organization_names(al.open_store("sqlite://"), ["2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"])
        {'2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11': '2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11'}
    """
    out: dict[str, str] = {}
    for org in organization_ids:
        named = store.query(
            organization_id=org, resource_type="organization", backend="polars", limit=1
        )["resource_name"].drop_nulls()
        out[org] = str(named[0]) if named.len() else org
    return out


def _labels(store: Store, orgs: Sequence[str]) -> list[str]:
    names = organization_names(store, orgs)
    return [org if names[org] == org else f"{names[org]} ({org})" for org in orgs]


def _resolve_org(store: Store, organization_id: str | None) -> str | None:
    """An organization id from an id or a name (``None`` stays ``None``)."""
    if organization_id is None or not organization_id.strip():
        return None
    value = organization_id.strip()
    if _UUID_RE.match(value):
        return value.lower()
    named = store.query(
        resource_type="organization", resource_name=value, backend="polars", limit=1000
    )
    orgs = sorted(set(named["organization_id"].to_list()))
    if not orgs:
        raise FilterError(
            f"no organization is named {value!r} in the trail; pass its id (a UUID) as "
            "organization_id (store.organizations() lists them)"
        )
    if len(orgs) > 1:
        raise AmbiguousOrganizationError(value, orgs, _labels(store, orgs))
    return str(orgs[0])


def _one_org(store: Store, frames: Sequence[pl.DataFrame], name: str) -> str | None:
    """The one organization the rows belong to (None when there are none); several → error."""
    orgs = sorted({o for f in frames for o in f["organization_id"].unique().to_list()})
    if len(orgs) > 1:
        raise AmbiguousOrganizationError(name, orgs, _labels(store, orgs))
    return orgs[0] if orgs else None


def _query(store: Store, org: str | None, **filters: Any) -> pl.DataFrame:
    if org is not None:
        filters["organization_id"] = org
    frame: pl.DataFrame = store.query(backend="polars", order="asc", **filters)
    return frame


# -- answers ------------------------------------------------------------------------------


def _timeline(frame: pl.DataFrame, *extra: str) -> pl.DataFrame:
    return frame.sort("timestamp", maintain_order=True).select(
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
        "organization_id",
        "audit_id",
        *extra,
    )


@dataclass(frozen=True, eq=False)
class Answer:
    """What every troubleshooting helper returns.

    Attributes:
        summary: the reading, in plain sentences (also ``str(answer)``).
        timeline: the entries read, oldest first (``timestamp``, ``actor``, ``action``,
            ``result``, ``resource_*``, ``changes`` as ``path: old → new``, ``details`` …).
        organization_id: the organization answered for (``None`` when nothing was found).
    """

    summary: str
    timeline: pl.DataFrame
    organization_id: str | None

    @property
    def found(self) -> bool:
        """Whether the trail holds anything about what was asked."""
        return not self.timeline.is_empty()

    @property
    def title(self) -> str:
        """What was asked about (the heading of the notebook rendering)."""
        return "answer"

    def __str__(self) -> str:
        return self.summary

    def _repr_markdown_(self) -> str:
        # names come from the entries (attacker-controlled): no raw HTML in notebooks
        count = f"{self.timeline.height} entr{'y' if self.timeline.height == 1 else 'ies'}"
        return (
            f"**{html.escape(self.title)}** — {html.escape(self.summary)}\n\n"
            f"*{count} in `.timeline`*"
        )


def _label(frame: pl.DataFrame, ident: str) -> str:
    """``name (id)`` of the resource ``ident`` (an id or a name) names in ``frame``."""
    rows = frame.filter((pl.col("resource_id") == ident) | (pl.col("resource_name") == ident))
    rows = frame if rows.is_empty() else rows
    names, ids = rows["resource_name"].drop_nulls(), rows["resource_id"].drop_nulls()
    rid = str(ids[-1]) if ids.len() else ident
    name = str(names[-1]) if names.len() else rid
    return rid if name == rid else f"{name} ({rid})"


def _in_org(store: Store, org: str | None) -> str:
    """`` in organization Name (id)`` for a not-found sentence ("" without an organization)."""
    return f" in organization {_labels(store, [org])[0]}" if org else ""


@dataclass(frozen=True, eq=False)
class ResourceHistory(Answer):
    """Every entry about one resource in one organization (see :func:`resource_history`)."""

    resource: str = ""

    @property
    def title(self) -> str:
        return _label(self.timeline, self.resource) if self.found else self.resource


def resource_history(
    store: Store, resource: str, *, organization_id: str | None = None
) -> ResourceHistory:
    """Every entry about one resource (its id or its name), oldest first, with a ``changes``
    column (before → after).

    Example:
        >>> import auditlens as al
        >>> h = resource_history(al.open_store("sqlite://"), "wh-1")
        >>> h.found, h.summary
        (False, 'No entry mentions wh-1.')
    """
    org = _resolve_org(store, organization_id)
    frame = _query(store, org, resource=resource)
    org = org or _one_org(store, [frame], resource)
    timeline = _timeline(frame)
    if timeline.is_empty():
        where = _in_org(store, org)
        return ResourceHistory(f"No entry mentions {resource}{where}.", timeline, org, resource)
    first, last = timeline.row(0, named=True), timeline.row(-1, named=True)
    changed = timeline.filter(pl.col("changes") != "").height
    failed = timeline.filter(pl.col("result") == "failure").height
    summary = (
        f"{_label(timeline, resource)}: {timeline.height} entr"
        f"{'y' if timeline.height == 1 else 'ies'} from {first['timestamp']:%Y-%m-%d} to "
        f"{last['timestamp']:%Y-%m-%d}, {changed} with a recorded change, {failed} failed; "
        f"the last, {last['action']} by {last['actor']} at {last['timestamp']:{_FMT}}."
    )
    return ResourceHistory(summary, timeline, org, resource)


_CHANGING = (".created", ".updated", ".deleted", ".member_added", ".settings_updated")


@dataclass(frozen=True, eq=False)
class Changes(Answer):
    """The configuration changes of one application or resource (see :func:`who_changed`)."""

    target: str = ""

    @property
    def title(self) -> str:
        return _label(self.timeline, self.target) if self.found else self.target

    @property
    def actors(self) -> list[str]:
        """Who made the changes, in the order of their first change."""
        return self.timeline["actor"].unique(maintain_order=True).to_list()


def who_changed(
    store: Store,
    *,
    application_id: str | None = None,
    resource_id: str | None = None,
    organization_id: str | None = None,
) -> Changes:
    """Who changed an application's (or any resource's) configuration: updates, creations,
    deletions and member changes, oldest first, with what changed.

    Example:
        >>> import auditlens as al
        >>> who_changed(al.open_store("sqlite://"), application_id="app-1").summary
        'No change to app-1 is recorded.'
    """
    if application_id is None and resource_id is None:
        raise FilterError("name the application_id or the resource_id to look at")
    org = _resolve_org(store, organization_id)
    frames = []
    if application_id is not None:
        frames.append(_query(store, org, application_id=application_id))
        frames.append(_query(store, org, resource_id=application_id))
    if resource_id is not None:
        frames.append(_query(store, org, resource_id=resource_id))
    frame = pl.concat(frames).unique("audit_id", maintain_order=True)
    frame = frame.filter(pl.any_horizontal([pl.col("action").str.ends_with(s) for s in _CHANGING]))
    target = str(application_id or resource_id)
    org = org or _one_org(store, [frame], target)
    timeline = _timeline(frame)
    if timeline.is_empty():
        where = _in_org(store, org)
        return Changes(f"No change to {target} is recorded{where}.", timeline, org, target)
    actors = timeline["actor"].unique(maintain_order=True).to_list()
    last = timeline.row(-1, named=True)
    what = f": {last['changes']}" if last["changes"] else f" ({last['action']})"
    summary = (
        f"{_label(timeline, target)}: {timeline.height} change"
        f"{'' if timeline.height == 1 else 's'} by {', '.join(actors)} between "
        f"{timeline['timestamp'][0]:%Y-%m-%d} and {last['timestamp']:%Y-%m-%d}; "
        f"the last by {last['actor']} at {last['timestamp']:{_FMT}}{what}."
    )
    return Changes(summary, timeline, org, target)


@dataclass(frozen=True, eq=False)
class WebhookDiagnosis(Answer):
    """Why a webhook may have stopped receiving events (see :func:`webhook_diagnosis`).

    ``cause`` is one of ``deleted``, ``disabled``, ``url_changed``, ``events_changed``,
    ``failing``, ``unclear`` (entries, but none of the above) or ``not_found``.
    """

    webhook_id: str = ""
    cause: str = "not_found"

    @property
    def title(self) -> str:
        return _label(self.timeline, self.webhook_id) if self.found else self.webhook_id


def webhook_diagnosis(
    store: Store, webhook_id: str, *, organization_id: str | None = None
) -> WebhookDiagnosis:
    """A plain-language reason a webhook may have stopped receiving events: deleted, disabled
    (and not re-enabled), its URL or event filter changed, or its tests failing.

    Example:
        >>> import auditlens as al
        >>> d = webhook_diagnosis(al.open_store("sqlite://"), "wh-9")
        >>> d.found, d.cause, d.summary
        (False, 'not_found', 'No entry mentions webhook wh-9.')
    """
    h = resource_history(store, webhook_id, organization_id=organization_id)
    timeline, org = h.timeline, h.organization_id
    if timeline.is_empty():
        where = _in_org(store, org)
        return WebhookDiagnosis(
            f"No entry mentions webhook {webhook_id}{where}.", timeline, org, webhook_id
        )
    label = _label(timeline, webhook_id)
    last = timeline.row(-1, named=True)
    when = last["timestamp"].strftime(_FMT)

    def answer(cause: str, text: str) -> WebhookDiagnosis:
        return WebhookDiagnosis(f"{label}: {text}", timeline, org, webhook_id, cause)

    if last["action"].endswith(".deleted"):
        return answer("deleted", f"deleted by {last['actor']} at {when}.")
    enabled_seen = False  # a newer re-enabling cancels an older disabling
    for row in timeline.reverse().iter_rows(named=True):  # one resource, newest first
        ch = row["changes"] or ""
        at = row["timestamp"].strftime(_FMT)
        if "enabled: False → True" in ch:
            enabled_seen = True
        if "enabled: True → False" in ch and not enabled_seen:
            return answer("disabled", f"disabled by {row['actor']} at {at} ({ch}).")
        if "url:" in ch:
            return answer(
                "url_changed",
                f"its URL was changed by {row['actor']} at {at} ({ch}); "
                "events now go to the new address.",
            )
        if "events" in ch:
            return answer(
                "events_changed", f"its event filter was changed by {row['actor']} at {at} ({ch})."
            )
    failed = timeline.filter(pl.col("result") == "failure")
    if failed.height:
        f = failed.row(-1, named=True)
        return answer(
            "failing",
            f"{failed.height} failed {f['action']} entr{'y' if failed.height == 1 else 'ies'}, "
            f"the last at {f['timestamp'].strftime(_FMT)}; the receiving endpoint may be down.",
        )
    return answer(
        "unclear",
        f"no deletion, disabling or URL change recorded; last entry {last['action']} at {when}.",
    )


# -- access -------------------------------------------------------------------------------

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
#: actions that give an account back after a suspension or removal
_REINSTATING = ("user.reactivated", "user.unsuspended", "user.restored", "user.joined")


@dataclass(frozen=True, eq=False)
class Investigation(Answer):
    """Everything that bears on one user's access in one organization, in order, and its
    reading (see :func:`access_investigation`).

    ``timeline`` has a ``relation`` column: ``to`` (done to the user by someone else, or by
    themselves: ``self``), ``sign-in`` (their own sign-ins), ``by`` (done by the user to
    someone or something else) and ``resource`` (the resource's own access changes).
    """

    user: str = ""
    resource: str | None = None

    @property
    def title(self) -> str:
        return self.user

    @property
    def found(self) -> bool:
        """Whether any entry is by or about the user."""
        return bool(self.timeline.filter(pl.col("relation") != "resource").height)

    @property
    def events(self) -> pl.DataFrame:
        """The same frame as ``timeline``."""
        return self.timeline

    @property
    def to_user(self) -> pl.DataFrame:
        """Entries done to the user (suspension, removal, role changes, …) and their sign-ins."""
        return self.timeline.filter(pl.col("relation").is_in(["to", "self", "sign-in"]))

    @property
    def by_user(self) -> pl.DataFrame:
        """Entries the user did to other people or resources (not about their own access)."""
        return self.timeline.filter(pl.col("relation") == "by")


def access_investigation(
    store: Store,
    user: str,
    *,
    resource: str | None = None,
    organization_id: str | None = None,
) -> Investigation:
    """Why can't ``user`` (email or user id) get in: failed sign-ins, role changes,
    suspensions, removals and memberships, oldest first, with a plain-language summary that
    keeps what was done *to* the user apart from what the user did to others.

    ``resource`` (an id or name) adds that resource's own access changes. The organization
    is ``organization_id``, else the user's, else the resource's; a user or resource found
    in several organizations raises :class:`~auditlens.errors.AmbiguousOrganizationError`.

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
        >>> _ = store.append([{"action": "user.suspended", "result": "success",
        ...     "organization_id": org, "timestamp": "2025-01-10T11:00:00Z",
        ...     "actor": {"email": "ada@acme.example", "type": "user"},
        ...     "resource": {"type": "user", "id": "u-2", "name": "bob@acme.example"}}])
        >>> print(access_investigation(store, "bob@acme.example"))
        ada@acme.example suspended bob@acme.example on 2025-01-10; no later entry reinstates ...
        >>> print(access_investigation(store, "ada@acme.example"))
        Nothing in the trail blocks ada@acme.example. ada@acme.example suspended bob@acme.example...
    """
    user = user.strip()
    if not user:
        raise FilterError("name the user by email or user id")
    org = _resolve_org(store, organization_id)
    actions = list(_ACCESS_ACTIONS)
    as_actor = _query(store, org, actor=user, actions=actions)
    aliases = {user, user.lower()}
    aliases |= set(as_actor["actor_user_id"].drop_nulls().to_list())
    aliases |= set(as_actor["actor_email"].drop_nulls().to_list())
    as_target = _query(store, org, resource=sorted(aliases), actions=actions)
    own = [as_actor, as_target]
    org = org or _one_org(store, own, user)
    parts = [f.filter(pl.col("organization_id") == org) if org else f for f in own]
    if resource is not None:
        about = _query(
            store, org, resource=resource, actions=["application.member_added", "*.deleted"]
        )
        org = org or _one_org(store, [about], resource)
        parts.append(about)
    frame = pl.concat(parts).unique("audit_id", maintain_order=True)
    lowered = sorted({a.lower() for a in aliases})
    is_actor = (
        pl.col("actor_email").str.to_lowercase().is_in(lowered)
        | pl.col("actor_user_id").str.to_lowercase().is_in(lowered)
    ).fill_null(False)
    is_target = (
        (pl.col("resource_type") == "user")
        & (
            pl.col("resource_id").str.to_lowercase().is_in(lowered)
            | pl.col("resource_name").str.to_lowercase().is_in(lowered)
        )
    ).fill_null(False)
    relation = (
        pl.when(is_actor & pl.col("action").str.starts_with("auth."))
        .then(pl.lit("sign-in"))
        .when(is_actor & is_target)
        .then(pl.lit("self"))
        .when(is_target)
        .then(pl.lit("to"))
        .when(is_actor)
        .then(pl.lit("by"))
        .otherwise(pl.lit("resource"))
    )
    timeline = _timeline(frame.with_columns(relation.alias("relation")), "relation")
    summary = _read(user, set(lowered), timeline, resource, _in_org(store, org))
    return Investigation(summary, timeline, org, user, resource)


def _day(row: dict[str, Any]) -> str:
    return f"{row['timestamp']:%Y-%m-%d}"


def _target(row: dict[str, Any]) -> str:
    return str(row["resource_name"] or row["resource_id"] or "(unnamed)")


def _member(details: str | None) -> str | None:
    try:
        d = json.loads(details or "")
    except ValueError:
        return None
    if isinstance(d, dict) and "member" in d:
        return str(d["member"]).lower()
    return None


def _read(user: str, aliases: set[str], ev: pl.DataFrame, resource: str | None, where: str) -> str:
    about_resource = _resource_sentences(user, aliases, ev, resource) if resource else []
    mine = ev.filter(pl.col("relation") != "resource")
    if mine.is_empty():
        lead = (
            f"No sign-in, membership or role entry mentions {user}{where}: check the address or id."
        )
        return " ".join([lead, *(text for text, _ in about_resource)])
    said: list[str] = []
    to = ev.filter(pl.col("relation").is_in(["to", "self"]))

    def last(frame: pl.DataFrame, actions: Sequence[str]) -> dict[str, Any] | None:
        part = frame.filter(pl.col("action").is_in(list(actions)))
        return part.row(-1, named=True) if part.height else None

    blocking = False
    blocked = last(to, ["user.removed", "user.suspended"])
    if blocked is not None:
        verb = "removed" if blocked["action"] == "user.removed" else "suspended"
        later = to.filter(
            (pl.col("timestamp") > blocked["timestamp"])
            & pl.col("action").is_in(list(_REINSTATING))
        )
        text = f"{blocked['actor']} {verb} {user} on {_day(blocked)}"
        if later.height:
            back = later.row(0, named=True)
            said.append(
                f"{text}; {back['actor']} reinstated the account on {_day(back)} "
                f"({back['action']})."
            )
        else:
            blocking = True
            said.append(f"{text}; no later entry reinstates the account.")
            ins = ev.filter(
                (pl.col("relation") == "sign-in")
                & (pl.col("action") == "auth.login")
                & (pl.col("result") == "success")
                & (pl.col("timestamp") > blocked["timestamp"])
            )
            if ins.height:
                said.append(
                    f"Yet {user} signed in successfully on {_day(ins.row(0, named=True))}, "
                    f"after being {verb}: check how."
                )
    role = last(to, ["user.role_changed"])
    if role is not None:
        change = role["changes"] or "see details"
        if role["relation"] == "self":
            said.append(f"{user} changed their own role on {_day(role)} ({change}).")
        else:
            said.append(f"{role['actor']} last changed {user}'s role on {_day(role)} ({change}).")
    signins = ev.filter(pl.col("relation") == "sign-in")
    fails = signins.filter(pl.col("action") == "auth.failed")
    login = last(signins.filter(pl.col("result") == "success"), ["auth.login"])
    if fails.height:
        tail = fails.row(-1, named=True)
        recent = f"{fails.height} failed sign-in(s), the last on {tail['timestamp']:%Y-%m-%d %H:%M}"
        if login is None or login["timestamp"] < tail["timestamp"]:
            blocking = True
            said.append(
                recent + ", with no successful sign-in since: a password or MFA problem, "
                "or someone else trying the account."
            )
        else:
            said.append(recent + f"; signed in successfully on {_day(login)}.")
    elif login is not None and blocked is None:
        said.append(f"Last successful sign-in on {login['timestamp']:%Y-%m-%d %H:%M}.")
    said += [text for text, _ in about_resource]
    blocking = blocking or any(blocks for _, blocks in about_resource)
    if not blocking:
        said.insert(0, f"Nothing in the trail blocks {user}.")
    said += _by_sentences(user, ev.filter(pl.col("relation") == "by"))
    return " ".join(said)


def _resource_sentences(
    user: str, aliases: set[str], ev: pl.DataFrame, resource: str
) -> list[tuple[str, bool]]:
    """What the trail says of ``resource`` for ``user``: (sentence, whether it blocks)."""
    about = ev.filter((pl.col("resource_id") == resource) | (pl.col("resource_name") == resource))
    deleted = about.filter(pl.col("action").str.ends_with(".deleted"))
    if deleted.height:
        row = deleted.row(-1, named=True)
        return [(f"{row['actor']} deleted {resource} on {_day(row)}.", True)]
    added = about.filter(pl.col("action") == "application.member_added")
    mine = [r for r in added.iter_rows(named=True) if _member(r["details"]) in aliases]
    if mine:
        row = mine[-1]
        return [(f"{row['actor']} added {user} as a member of {resource} on {_day(row)}.", False)]
    return [(f"No entry adds {user} as a member of {resource}.", True)]


def _by_sentences(user: str, by: pl.DataFrame) -> list[str]:
    said: list[str] = []
    for action, verb in (("user.suspended", "suspended"), ("user.removed", "removed")):
        rows = list(by.filter(pl.col("action") == action).iter_rows(named=True))
        for row in rows[-3:]:
            said.append(f"{user} {verb} {_target(row)} on {_day(row)}.")
        if len(rows) > 3:
            said.append(f"{user} {verb} {len(rows) - 3} more user(s) before that.")
    counts = [
        (by.filter(pl.col("action") == a).height, text)
        for a, text in (
            ("user.role_changed", "changed the role of {} user(s)"),
            ("user.invited", "invited {} user(s)"),
            ("application.member_added", "added {} application member(s)"),
        )
    ]
    done = [text.format(n) for n, text in counts if n]
    if done:
        also = " also" if said else ""
        joined = ", ".join(done[:-1]) + (" and " if len(done) > 1 else "") + done[-1]
        said.append(f"{user}{also} {joined}.")
    return said
