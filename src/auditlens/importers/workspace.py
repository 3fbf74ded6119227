"""Google Workspace Reports API activities (Admin SDK ``activities.list``): the API's
pages (``{"items": [...]}``), a JSON array, or one activity per line. One activity
holds one or more events; each event is one entry.

Example:
    >>> from auditlens.resources import samples_dir
    >>> es = list(read(samples_dir() / "workspace"))
    >>> sorted({e["action"] for e in es})
    ... # doctest: +NORMALIZE_WHITESPACE
    ['admin.create_user', 'admin.grant_admin_privilege', 'auth.failed', 'auth.login',
     'auth.logout', 'auth.password_reset', 'user.suspended']
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from auditlens.importers import entries_only
from auditlens.importers.entries import (
    FieldRule,
    SourceMapping,
    action_name,
    fit_details,
    iso_ms,
    obj,
    organization_for,
    split_address,
    stable_id,
)
from auditlens.importers.files import iter_files, json_records, mapped
from auditlens.ingest import SourceRecord
from auditlens.schema import DEFAULT_MAX_DETAILS_BYTES

__all__ = ["FORMAT", "MAPPING", "read", "records"]

FORMAT = "workspace"

#: (application, event name) → the catalogue's action
NORMALISED = {
    ("login", "login_success"): "auth.login",
    ("login", "login_failure"): "auth.failed",
    ("login", "logout"): "auth.logout",
    ("admin", "SUSPEND_USER"): "user.suspended",
    ("admin", "DELETE_USER"): "user.removed",
    ("admin", "CHANGE_PASSWORD"): "auth.password_reset",
}
#: parameter → resource type (the first present names the resource)
_RESOURCE_PARAMS = (
    ("USER_EMAIL", "user"),
    ("GROUP_EMAIL", "group"),
    ("doc_id", "document"),
    ("APPLICATION_NAME", "application"),
    ("app_name", "application"),
)
BULKY = ("parameters",)

MAPPING = SourceMapping(
    format=FORMAT,
    title="Google Workspace Reports (admin and login activities)",
    inputs='Admin SDK Reports API `activities.list` responses (`{"items": [...]}`), a JSON '
    "array of activities, or JSON Lines; any application (`admin`, `login`, `drive`, "
    "`token`, …).",
    fields=(
        FieldRule(
            "`id.uniqueQualifier`, `id.time`, `id.applicationName`, event index",
            "audit_id",
            "UUID5 over (`workspace`, applicationName, uniqueQualifier, time, index)",
        ),
        FieldRule("`id.time`", "timestamp", "as written"),
        FieldRule(
            "`id.applicationName`, `events[].name`",
            "action",
            "`<application>.<event name>` in snake case (`admin.create_user`); login "
            "`login_success` / `login_failure` / `logout` → `auth.login` / `auth.failed` / "
            "`auth.logout`; admin `SUSPEND_USER` → `user.suspended`, `DELETE_USER` → "
            "`user.removed`, `CHANGE_PASSWORD` → `auth.password_reset`",
        ),
        FieldRule(
            "`events[].name`",
            "result",
            "`failure` when the name says failure (`login_failure`), else `success`",
        ),
        FieldRule(
            "`actor.profileId` (else `actor.key`)",
            "actor.user_id",
            "the Google profile id; `key` for non-user callers",
        ),
        FieldRule("`actor.email`", "actor.email", "as written"),
        FieldRule(
            "`actor.callerType`, `actor.email`",
            "actor.type",
            "USER → `user` (a `…gserviceaccount.com` email → `service_account`); KEY → "
            "`service_account`; no actor → `system`",
        ),
        FieldRule("`ipAddress`", "ip_address", "as written"),
        FieldRule(
            "`events[].parameters` USER_EMAIL, GROUP_EMAIL, doc_id, APPLICATION_NAME",
            "resource",
            "`user`, `group`, `document` (name = doc_title) or `application`",
        ),
        FieldRule(
            "`id.customerId`",
            "organization_id",
            "`--org`, else UUID5 over the Workspace customer id",
        ),
        FieldRule(
            "`events[].parameters`, `events[].type`, `id`, `ownerDomain`",
            "details",
            "parameters as `{name: value}` (value, intValue, boolValue, multiValue, …), the "
            "native `applicationName`, `type` and `name`",
        ),
    ),
)


def records(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    organization_id: str | None = None,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
) -> Iterator[SourceRecord]:
    """Every event of every activity as an entry (or why it cannot be one)."""
    for path in iter_files(paths):
        yield from mapped(
            path,
            json_records(path, ("items",)),
            lambda rec, raw: to_entries(rec, organization_id, max_details_bytes, raw),
            _activity_name,
        )


def _activity_name(rec: dict[str, Any]) -> str:
    ident = rec.get("id")
    qualifier = ident.get("uniqueQualifier") if isinstance(ident, dict) else None
    return f"activity {qualifier!r}"


def read(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """The entries of Reports API files (options as :func:`records`).

    Raises:
        IngestError: at the first record that cannot be an entry (file:line: reason).
    """

    return entries_only(records(paths, **options))


def _param(p: dict[str, Any]) -> Any:
    for key in (
        "value",
        "intValue",
        "boolValue",
        "multiValue",
        "multiIntValue",
        "messageValue",
        "multiMessageValue",
    ):
        if key in p:
            return p[key]
    return None


def to_entries(
    act: dict[str, Any], organization_id: str | None, max_details_bytes: int, raw: bytes
) -> list[dict[str, Any]]:
    """The entries of one activity (one per event; the rules of :data:`MAPPING`)."""
    ident = act.get("id")
    if not isinstance(ident, dict):
        raise ValueError("id is missing")
    app, when, qual = ident.get("applicationName"), ident.get("time"), ident.get("uniqueQualifier")
    if not (isinstance(app, str) and app and when and qual is not None):
        raise ValueError("id needs applicationName, time and uniqueQualifier")
    events = act.get("events")
    if not isinstance(events, list) or not events:
        raise ValueError("events is missing or empty")
    org = organization_id
    if org is None:
        customer = ident.get("customerId")
        if not isinstance(customer, str) or not customer:
            raise ValueError("no id.customerId to derive the organization from; pass --org")
        org = organization_for("google-customer", customer)

    actor = obj(act.get("actor"))
    email = actor.get("email") if isinstance(actor.get("email"), str) else None
    user_id = actor.get("profileId") or actor.get("key")
    caller = actor.get("callerType")
    if not actor:
        actor_type = "system"
    elif caller == "KEY" or (email or "").endswith("gserviceaccount.com"):
        actor_type = "service_account"
    else:
        actor_type = "user"
    ip, _ = split_address(act.get("ipAddress") if isinstance(act.get("ipAddress"), str) else None)
    timestamp = iso_ms(when)

    out = []
    for i, ev in enumerate(events):
        if not isinstance(ev, dict) or not isinstance(ev.get("name"), str):
            raise ValueError(f"events[{i}] has no name")
        name = ev["name"]
        params = {
            str(p.get("name")): _param(p) for p in ev.get("parameters") or [] if isinstance(p, dict)
        }
        action = NORMALISED.get((app, name)) or action_name(app, name)
        details: dict[str, Any] = {
            "id": ident,
            "applicationName": app,
            "type": ev.get("type"),
            "name": name,
            "parameters": params,
        }
        for key in ("ownerDomain", "kind", "etag"):
            if key in act:
                details[key] = act[key]
        details = fit_details(details, max_details_bytes, BULKY, raw=raw)
        out.append(
            {
                "audit_id": stable_id(FORMAT, app, str(qual), str(when), str(i)),
                "timestamp": timestamp,
                "actor": {
                    "user_id": str(user_id) if user_id else None,
                    "email": email,
                    "type": actor_type,
                },
                "action": action,
                "resource": _resource(params),
                "organization_id": org,
                "ip_address": ip,
                "details": details,
                "result": "failure" if "fail" in name.lower() else "success",
            }
        )
    return out


def _resource(params: dict[str, Any]) -> dict[str, Any] | None:
    for key, rtype in _RESOURCE_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value:
            name = params.get("doc_title") if rtype == "document" else value
            return {"type": rtype, "id": value[:256], "name": str(name or value)[:512]}
    return None
