"""Okta System Log: LogEvent objects as the System Log API returns them (a JSON array
per page), or one per line (JSON Lines, e.g. a SIEM export).

Example:
    >>> from auditlens.resources import samples_dir
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> e = next(read(samples_dir() / "okta", organization_id=org))
    >>> e["actor"], e["action"], e["result"]
    ({'user_id': None, 'email': 'admin@acme.example', 'type': 'user'}, 'auth.failed', 'failure')
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from auditlens.errors import IngestError
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

FORMAT = "okta"

#: outcome.result → result
RESULTS = {
    "SUCCESS": "success",
    "ALLOW": "success",
    "FAILURE": "failure",
    "DENY": "failure",
    "CHALLENGE": "partial",
    "SKIPPED": "partial",
    "UNKNOWN": "partial",
}

#: eventType → the catalogue's action (success, failure) so detectors see them
NORMALISED: dict[str, tuple[str, str]] = {
    "user.session.start": ("auth.login", "auth.failed"),
    "user.authentication.sso": ("auth.login", "auth.failed"),
    "user.authentication.auth_via_mfa": ("auth.login", "auth.failed"),
    "user.authentication.verify": ("auth.login", "auth.failed"),
    "user.session.end": ("auth.logout", "auth.logout"),
    "user.account.reset_password": ("auth.password_reset", "auth.password_reset"),
    "user.mfa.factor.activate": ("auth.mfa_enabled", "auth.mfa_enabled"),
    "user.mfa.factor.reset_all": ("auth.mfa_reset", "auth.mfa_reset"),
    "user.session.clear": ("auth.sessions_revoked", "auth.sessions_revoked"),
    "user.lifecycle.suspend": ("user.suspended", "user.suspended"),
    "user.lifecycle.deactivate": ("user.removed", "user.removed"),
}

#: actor.type → actor type
ACTOR_TYPES = {
    "User": "user",
    "PublicClientApp": "service_account",
    "AppInstance": "service_account",
    "Client": "service_account",
    "SystemPrincipal": "system",
}

BULKY = ("debugContext", "target", "authenticationContext", "securityContext", "request")

MAPPING = SourceMapping(
    format=FORMAT,
    title="Okta System Log",
    inputs="LogEvent objects from `GET /api/v1/logs` (a JSON array per page, pages as "
    "separate files or a folder) or JSON Lines; `.gz` read transparently.",
    fields=(
        FieldRule("`uuid`", "audit_id", "UUID5 over (`okta`, uuid)"),
        FieldRule("`published`", "timestamp", "as written"),
        FieldRule(
            "`eventType`",
            "action",
            "sign-in and lifecycle events → the catalogue (`user.session.start` → "
            "`auth.login`/`auth.failed`, `user.session.end` → `auth.logout`, "
            "`user.lifecycle.suspend` → `user.suspended`, …); others: first segment + "
            "the rest joined by `_` (`policy.evaluate_sign_on`, "
            "`application.user_membership_add`)",
        ),
        FieldRule(
            "`outcome.result`",
            "result",
            "SUCCESS, ALLOW → `success`; FAILURE, DENY → `failure`; CHALLENGE, SKIPPED, "
            "UNKNOWN → `partial`; `outcome.reason` kept in details",
        ),
        FieldRule(
            "`actor.id`",
            "actor.user_id",
            "Okta's id (`00u…` users, `0oa…` apps); `unknown` (a sign-in as a user Okta "
            "does not know) → none, the typed name stays as email or id",
        ),
        FieldRule("`actor.alternateId`", "actor.email", "when it is an email address"),
        FieldRule(
            "`actor.type`",
            "actor.type",
            "User → `user`; PublicClientApp, AppInstance, Client → `service_account`; "
            "SystemPrincipal → `system`",
        ),
        FieldRule(
            "`client.ipAddress`",
            "ip_address",
            "when an IP address (else kept in `details.client`)",
        ),
        FieldRule("`client.userAgent.rawUserAgent`", "user_agent", "as written"),
        FieldRule(
            "`target[0]`",
            "resource",
            "type = target type, id = target id, name = displayName or alternateId",
        ),
        FieldRule("—", "organization_id", "`--org` (required: a LogEvent names no tenant)"),
        FieldRule(
            "every other field",
            "details",
            "displayMessage, eventType, outcome, severity, client, target, "
            "authenticationContext, securityContext, debugContext, transaction, request",
        ),
    ),
    notes=(
        "Okta's own `eventType` is always in `details.eventType`.",
        "Details over the limit drop `debugContext`, `target`, `authenticationContext`, "
        "`securityContext`, `request` (largest first), named in `details.truncated`.",
    ),
)


def records(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    organization_id: str | None = None,
    okta_org: str | None = None,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
) -> Iterator[SourceRecord]:
    """Every LogEvent as an entry (or why it cannot be one), with file and line.

    ``okta_org``: your Okta domain (``acme.okta.com``); without ``organization_id`` the
    organization is derived from it.
    """
    if organization_id is None:
        if not okta_org:
            raise IngestError(
                "an Okta LogEvent names no tenant: pass --org (or okta_org=your Okta domain)"
            )
        organization_id = organization_for("okta-org", okta_org.lower())
    org = organization_id
    for path in iter_files(paths):
        yield from mapped(
            path,
            json_records(path, ("events", "items")),
            lambda rec, raw: to_entry(rec, org, max_details_bytes, raw),
            lambda rec: f"uuid {rec.get('uuid')!r}",
        )


def read(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """The entries of Okta System Log files (options as :func:`records`).

    Raises:
        IngestError: at the first record that cannot be an entry (file:line: reason).
    """

    return entries_only(records(paths, **options))


def to_entry(
    ev: dict[str, Any], organization_id: str, max_details_bytes: int, raw: bytes
) -> dict[str, Any]:
    """One LogEvent as an entry (the rules of :data:`MAPPING`)."""
    uid = ev.get("uuid")
    if not isinstance(uid, str) or not uid:
        raise ValueError("uuid is missing")
    etype = ev.get("eventType")
    if not isinstance(etype, str) or not etype:
        raise ValueError("eventType is missing")
    outcome = obj(ev.get("outcome"))
    native = str(outcome.get("result") or "SUCCESS").upper()
    if native not in RESULTS:
        raise ValueError(f"outcome.result {native!r} is not one Okta documents")
    result = RESULTS[native]
    if etype in NORMALISED:
        ok, bad = NORMALISED[etype]
        action = bad if result == "failure" else ok
    else:
        head, _, rest = etype.partition(".")
        action = action_name(head, rest.replace(".", "_") or "event")

    actor = obj(ev.get("actor"))
    actor_type = ACTOR_TYPES.get(str(actor.get("type")), "user")
    alt = actor.get("alternateId")
    email = alt if isinstance(alt, str) and "@" in alt and "." in alt.split("@")[-1] else None
    user_id = actor.get("id") if isinstance(actor.get("id"), str) else None
    if user_id in ("", "unknown"):  # a sign-in as a user Okta does not know
        user_id = None if email else (alt if isinstance(alt, str) and alt else None)
    if user_id is None and email is None and actor_type != "system":
        raise ValueError("actor has neither id nor an email alternateId")

    client = obj(ev.get("client"))
    ip, _ = split_address(client.get("ipAddress"))
    agent = obj(client.get("userAgent")).get("rawUserAgent")

    details = {k: v for k, v in ev.items() if k not in ("published", "actor")}
    details["actor"] = actor
    details = fit_details(details, max_details_bytes, BULKY, raw=raw)
    return {
        "audit_id": stable_id(FORMAT, uid),
        "timestamp": iso_ms(ev.get("published")),
        "actor": {"user_id": user_id, "email": email, "type": actor_type},
        "action": action,
        "resource": _resource(ev.get("target")),
        "organization_id": organization_id,
        "ip_address": ip,
        "user_agent": agent[:2048] if isinstance(agent, str) and agent else None,
        "details": details,
        "result": result,
    }


def _resource(targets: object) -> dict[str, Any] | None:
    if not isinstance(targets, list) or not targets or not isinstance(targets[0], dict):
        return None
    t = targets[0]
    name = t.get("displayName") or t.get("alternateId")
    return {
        "type": str(t.get("type") or "okta_object")[:128],
        "id": str(t.get("id"))[:256] if t.get("id") else None,
        "name": str(name)[:512] if name else None,
    }
