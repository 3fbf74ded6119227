"""GitHub audit log: the JSON and CSV exports of an organization or enterprise, the
REST API's pages, and audit log streaming (gzipped JSON Lines in a bucket).

Example:
    >>> from auditlens.resources import samples_dir
    >>> e = next(read(samples_dir() / "github" / "export.json"))
    >>> e["actor"]["user_id"], e["action"]
    ('octocat', 'repo.create')
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from auditlens.errors import IngestError
from auditlens.importers import entries_only
from auditlens.importers.entries import (
    FieldRule,
    SourceMapping,
    action_name,
    fit_details,
    iso_ms,
    organization_for,
    split_address,
    stable_id,
)
from auditlens.importers.files import iter_files, json_records, mapped, open_text
from auditlens.ingest import SourceRecord
from auditlens.schema import DEFAULT_MAX_DETAILS_BYTES, format_timestamp

__all__ = ["FORMAT", "MAPPING", "read", "records"]

FORMAT = "github"

#: sign-in events of GitHub Enterprise Server → the catalogue
NORMALISED = {
    "user.login": "auth.login",
    "user.failed_login": "auth.failed",
    "user.logout": "auth.logout",
}
_NUMERIC = frozenset(
    {
        "@timestamp",
        "created_at",
        "actor_id",
        "org_id",
        "repo_id",
        "user_id",
        "business_id",
        "token_id",
        "team_id",
    }
)
BULKY = ("config", "config_was", "events", "events_were", "data", "content_type")

MAPPING = SourceMapping(
    format=FORMAT,
    title="GitHub audit log",
    inputs="the organization/enterprise export as JSON (an array) or CSV (nested values "
    "as quoted JSON or dotted column names), REST API pages, and audit log streaming "
    "files (JSON Lines, `.json.gz`, folders).",
    fields=(
        FieldRule(
            "`_document_id`",
            "audit_id",
            "UUID5 over (`github`, _document_id); without it, over the SHA-256 of the record",
        ),
        FieldRule("`@timestamp` (else `created_at`)", "timestamp", "epoch milliseconds or ISO"),
        FieldRule(
            "`action`",
            "action",
            "as written (`repo.create`, `org.add_member`), deeper dots → `_` "
            "(`org.sso_response` stays); GHES `user.login` / `user.failed_login` / "
            "`user.logout` → `auth.login` / `auth.failed` / `auth.logout`",
        ),
        FieldRule(
            "`action`",
            "result",
            "`failure` when the action names a failure (`failed`, `failure`), else "
            "`success` (GitHub records no outcome)",
        ),
        FieldRule(
            "`actor` (else `actor_id`)",
            "actor.user_id",
            "the login as GitHub shows it; `actor_id` in details",
        ),
        FieldRule(
            "`external_identity_nameid`",
            "actor.email",
            "when it is an email address (SAML SSO)",
        ),
        FieldRule(
            "`actor_is_bot`, `[bot]` suffix, no actor",
            "actor.type",
            "bots and apps → `service_account`; no actor → `system`; else `user`",
        ),
        FieldRule("`actor_ip`", "ip_address", "when IP disclosure is on"),
        FieldRule("`user_agent`", "user_agent", "as written"),
        FieldRule(
            "`repo`, else `user`, `team`, `org`",
            "resource",
            "`repository`, `user`, `team` or `organization` with the name as id",
        ),
        FieldRule(
            "`org_id` (else `business_id`)",
            "organization_id",
            "`--org`, else UUID5 over the GitHub organization (enterprise) id",
        ),
        FieldRule("every other field", "details", "the native record minus `@timestamp`"),
    ),
    notes=(
        "Rejects are written as JSON Lines of the native records (CSV rows as objects), "
        "which this importer reads back.",
    ),
)


def records(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    organization_id: str | None = None,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
) -> Iterator[SourceRecord]:
    """Every audit event as an entry (or why it cannot be one), with file and line."""
    for path in iter_files(paths):
        rows = _csv_rows(path) if _is_csv(path) else json_records(path, ("events",))
        yield from mapped(
            path,
            rows,
            lambda rec, raw: to_entry(rec, organization_id, max_details_bytes, raw),
            lambda rec: f"_document_id {rec.get('_document_id')!r}",
        )


def read(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """The entries of GitHub audit log files (options as :func:`records`).

    Raises:
        IngestError: at the first record that cannot be an entry (file:line: reason).
    """

    return entries_only(records(paths, **options))


def _is_csv(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(".csv")


def _csv_rows(path: Path) -> Iterator[tuple[int, Any, bytes]]:
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            line = reader.line_num
            record: dict[str, Any] = {}
            try:
                for key, cell in row.items():
                    if key is None or cell is None or cell == "":
                        continue
                    _put(record, key, _cell(key, cell))
            except ValueError as exc:
                yield line, IngestError(str(exc)), orjson.dumps(row)
                continue
            yield line, record, orjson.dumps(record)


def _cell(key: str, cell: str) -> Any:
    if cell[:1] in "{[":
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError:
            raise ValueError(f"column {key!r} holds broken JSON: {cell[:80]!r}") from None
    if key in _NUMERIC and cell.isdigit():
        return int(cell)
    if cell in ("true", "false"):
        return cell == "true"
    return cell


def _put(record: dict[str, Any], key: str, value: Any) -> None:
    if "." in key and not key.startswith("@"):
        head, _, rest = key.partition(".")
        inner = record.setdefault(head, {})
        if isinstance(inner, dict):
            _put(inner, rest, value)
            return
    record[key] = value


def _time(ev: dict[str, Any]) -> str:
    value = ev.get("@timestamp", ev.get("created_at"))
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_timestamp(int(value))
    if value is None:
        raise ValueError("@timestamp is missing")
    return iso_ms(value)


def to_entry(
    ev: dict[str, Any], organization_id: str | None, max_details_bytes: int, raw: bytes
) -> dict[str, Any]:
    """One audit event as an entry (the rules of :data:`MAPPING`)."""
    native = ev.get("action")
    if not isinstance(native, str) or not native:
        raise ValueError("action is missing")
    doc_id = ev.get("_document_id")
    if isinstance(doc_id, str) and doc_id:
        audit_id = stable_id(FORMAT, doc_id)
    else:
        digest = hashlib.sha256(orjson.dumps(ev, option=orjson.OPT_SORT_KEYS)).hexdigest()
        audit_id = stable_id(FORMAT, "sha256", digest)
    head, _, rest = native.lower().partition(".")
    action = NORMALISED.get(native) or action_name(head, rest.replace(".", "_") or "event")
    failed = "fail" in native.lower()

    login = ev.get("actor")
    user_id = login if isinstance(login, str) and login else None
    if user_id is None and ev.get("actor_id") is not None:
        user_id = f"github:{ev['actor_id']}"
    if user_id is None:
        actor_type = "system"
    elif ev.get("actor_is_bot") is True or user_id.endswith("[bot]"):
        actor_type = "service_account"
    else:
        actor_type = "user"
    nameid = ev.get("external_identity_nameid")
    email = nameid if isinstance(nameid, str) and "@" in nameid else None

    org = organization_id
    if org is None:
        if ev.get("org_id") is not None:
            org = organization_for("github-org", str(ev["org_id"]))
        elif ev.get("business_id") is not None:
            org = organization_for("github-enterprise", str(ev["business_id"]))
        else:
            raise ValueError("no org_id or business_id to derive the organization from; pass --org")

    ip, _ = split_address(ev.get("actor_ip") if isinstance(ev.get("actor_ip"), str) else None)
    agent = ev.get("user_agent")
    details = {k: v for k, v in ev.items() if k != "@timestamp"}
    details = fit_details(details, max_details_bytes, BULKY, raw=raw)
    return {
        "audit_id": audit_id,
        "timestamp": _time(ev),
        "actor": {"user_id": user_id, "email": email, "type": actor_type},
        "action": action,
        "resource": _resource(ev),
        "organization_id": org,
        "ip_address": ip,
        "user_agent": agent[:2048] if isinstance(agent, str) and agent else None,
        "details": details,
        "result": "failure" if failed else "success",
    }


def _resource(ev: dict[str, Any]) -> dict[str, Any] | None:
    for key, rtype in (
        ("repo", "repository"),
        ("user", "user"),
        ("team", "team"),
        ("org", "organization"),
    ):
        value = ev.get(key)
        if isinstance(value, str) and value:
            return {"type": rtype, "id": value[:256], "name": value[:512]}
    return None
