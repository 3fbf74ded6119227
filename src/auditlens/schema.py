"""The audit entry: its JSON interchange shape, the action catalogue and validation.

An entry travels as JSON in exactly this shape (``docs/ENTRY.md``)::

    {"audit_id": "uuid", "timestamp": "2025-01-20T10:30:00.123Z",
     "actor": {"user_id": "uuid", "email": "jane@company.com", "type": "user"},
     "action": "webhook.created",
     "resource": {"type": "webhook", "id": "wh-123", "name": "Production Webhook"},
     "organization_id": "uuid", "application_id": "uuid",
     "ip_address": "192.168.1.100", "user_agent": "Mozilla/5.0...",
     "details": {"conditions": {}, "actions": {}}, "result": "success"}

``actor.user_id`` is the source's stable identifier of the actor: a UUID, or any other
text that is not an email (``arn:aws:iam::123456789012:user/alice``, an Okta id
``00u1a2b3c4``, ``sshd:web-1:root``), so imported trails need no invented emails.

and is stored as one flat row (:data:`ROW_FIELDS`). :func:`normalize_entry` turns
the first into the second, :func:`row_to_entry` goes back.

Example:
    >>> row = normalize_entry({
    ...     "timestamp": "2025-01-20T10:30:00.123Z",
    ...     "actor": {"email": "jane@company.com", "type": "user"},
    ...     "action": "webhook.created",
    ...     "resource": {"type": "webhook", "id": "wh-123", "name": "Production Webhook"},
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11",
    ...     "result": "success"})
    >>> row["category"], row["ts"]
    ('webhooks', 1737369000123)
    >>> row_to_entry(row)["timestamp"]
    '2025-01-20T10:30:00.123Z'
"""

from __future__ import annotations

import functools
import ipaddress
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from auditlens.errors import EntryProblem, ValidationError
from auditlens.fields import ENTRY_FIELDS, ROW_FIELDS

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "DEFAULT_MAX_DETAILS_BYTES",
    "ENTRY_FIELDS",
    "MAX_TS_MS",
    "MAX_USER_ID",
    "MIN_TS_MS",
    "ROW_FIELDS",
    "ActionInfo",
    "ActorType",
    "Result",
    "category_of",
    "check_ts_range",
    "format_timestamp",
    "ip_key",
    "normalize_entries",
    "normalize_entry",
    "parse_timestamp",
    "row_to_entry",
]


class ActorType(StrEnum):
    """Who acted: a person, a machine credential or the platform itself."""

    USER = "user"
    SERVICE_ACCOUNT = "service_account"
    #: an assumed role or federated session: temporary credentials a person or a workload
    #: took on (AWS AssumedRole); who is behind it is in ``details``, not in the actor
    ROLE = "role"
    SYSTEM = "system"


class Result(StrEnum):
    """Outcome of the action."""

    SUCCESS = "success"
    FAILURE = "failure"
    PARTIAL = "partial"


@dataclass(frozen=True)
class ActionInfo:
    """One action of the catalogue."""

    action: str
    category: str
    description: str
    sensitive: bool = False


#: prefix of an action (``webhook`` in ``webhook.created``) → category name.
CATEGORY_OF_PREFIX: dict[str, str] = {
    "auth": "authentication",
    "user": "user_management",
    "webhook": "webhooks",
    "application": "applications",
    "billing": "billing",
    "organization": "organization",
    "audit_log": "audit_log",
}

#: category name → human label.
CATEGORIES: dict[str, str] = {
    "authentication": "Authentication",
    "user_management": "User management",
    "webhooks": "Webhooks",
    "applications": "Applications",
    "billing": "Billing",
    "organization": "Organization",
    "audit_log": "Audit log access",
}

_CATALOGUE: list[tuple[str, str, bool]] = [
    ("auth.login", "A user signed in.", False),
    ("auth.logout", "A user signed out.", False),
    ("auth.failed", "A sign-in attempt failed (wrong password, unknown user, MFA failure).", False),
    ("auth.password_reset", "A user's password was reset.", True),
    ("auth.mfa_enabled", "Multi-factor authentication was enabled for a user.", True),
    ("auth.mfa_reset", "A user's multi-factor authentication was reset.", True),
    ("auth.sessions_revoked", "A user's sessions were revoked (signed out everywhere).", True),
    ("user.invited", "A user was invited to the organization.", True),
    ("user.joined", "An invited user accepted and joined.", False),
    ("user.suspended", "A user was suspended and can no longer act.", True),
    ("user.removed", "A user was removed from the organization.", True),
    ("user.role_changed", "A user's role changed (details carry before/after).", True),
    ("webhook.created", "A webhook was created.", False),
    ("webhook.updated", "A webhook's configuration changed (details carry before/after).", False),
    ("webhook.deleted", "A webhook was deleted.", True),
    ("webhook.tested", "A test event was sent to a webhook.", False),
    ("application.created", "An application was created.", False),
    ("application.updated", "An application's settings changed.", False),
    ("application.deleted", "An application was deleted.", True),
    ("application.member_added", "A member was added to an application.", True),
    ("billing.plan_changed", "The subscription plan changed.", True),
    ("billing.payment_succeeded", "A payment succeeded.", False),
    ("billing.payment_failed", "A payment failed.", False),
    ("organization.settings_updated", "Organization settings changed.", True),
    ("organization.plan_changed", "The organization's plan changed.", True),
    (
        "organization.profile_changed",
        "The organization's name, time zone, business hours or workdays changed.",
        True,
    ),
    ("organization.person_set", "A person's time zone, name, role or manager was set.", True),
    ("organization.person_removed", "A person was removed from the organization's people.", True),
    ("organization.application_created", "An application was created in the organization.", False),
    ("audit_log.exported", "Audit entries were exported.", True),
    ("audit_log.viewed", "Audit entries were searched or viewed.", False),
    ("audit_log.retention_applied", "Entries past retention were archived and removed.", True),
    ("audit_log.restored", "Archived entries were restored for querying.", True),
    (
        "audit_log.finding_triaged",
        "A detector finding was triaged (false positive, resolved or accepted risk).",
        True,
    ),
]

#: the action catalogue: action name → :class:`ActionInfo`.
ACTIONS: dict[str, ActionInfo] = {
    name: ActionInfo(name, CATEGORY_OF_PREFIX[name.split(".", 1)[0]], desc, sensitive)
    for name, desc, sensitive in _CATALOGUE
}

DEFAULT_MAX_DETAILS_BYTES = 64 * 1024
_MAX_TEXT = 2048
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
#: longest ``actor.user_id`` (an AWS ARN can reach 2,048 characters in theory; real
#: principal ARNs and every other source's ids stay far below)
MAX_USER_ID = 256
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: dotted-quad IPv4 exactly as :mod:`ipaddress` writes it (no leading zeros, ASCII digits):
#: such text is its own canonical form, so it needs no parse
IPV4_CANONICAL_RE = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
#: a bare email address: an id with a scheme or a path that ends in one (an SSO session
#: ARN ``…:assumed-role/AWSReservedSSO_Admin/jane@company.com``, ``sshd:host:a@b.c``) is an id
_BARE_EMAIL_RE = re.compile(r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+$")
_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
#: earliest and latest storable instants (UTC epoch ms): what ``datetime`` can represent
#: in UTC, so every stored ``ts`` can be formatted and read back.
MIN_TS_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MS
MAX_TS_MS = (datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC) - _EPOCH) // _MS
_TS_RANGE = "0001-01-01T00:00:00.000Z … 9999-12-31T23:59:59.999Z"
_NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"
_ACTOR_KEYS = frozenset({"user_id", "email", "type"})
_RESOURCE_KEYS = frozenset({"type", "id", "name"})
_ENTRY_KEYS = frozenset(ENTRY_FIELDS)
_ACTOR_TYPES = frozenset(a.value for a in ActorType)
_RESULTS = frozenset(r.value for r in Result)


def category_of(action: str) -> str:
    """Category of an action: the catalogue's, else the action's prefix.

    Example:
        >>> category_of("auth.failed"), category_of("report.generated")
        ('authentication', 'report')
    """
    prefix = action.split(".", 1)[0]
    return CATEGORY_OF_PREFIX.get(prefix, prefix)


def parse_timestamp(value: object) -> int:
    """Parse an ISO 8601 timestamp *with a zone* (or aware datetime) to UTC epoch milliseconds.

    Sub-millisecond digits are truncated.

    Example:
        >>> parse_timestamp("2025-01-20T11:30:00.123456+01:00")
        1737369000123

    Raises:
        ValueError: the value is not a timestamp or has no time zone.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"not an ISO 8601 timestamp: {value!r} (expected e.g. 2025-01-20T10:30:00.123Z)"
            ) from None
    else:
        raise ValueError(f"expected an ISO 8601 string, got {type(value).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"timestamp {value!s} has no time zone; add 'Z' or an offset like +02:00")
    ms = (dt - _EPOCH) // _MS
    check_ts_range(ms, value)
    return ms


def check_ts_range(ms: int, shown: object = None) -> None:
    """Refuse UTC epoch milliseconds outside years 1–9999 (they could never be read back).

    Example:
        >>> check_ts_range(0)
        >>> check_ts_range(MAX_TS_MS + 1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: timestamp 253402300800000 is outside the supported range ... to UTC

    Raises:
        ValueError: naming the value (``shown``, else ``ms``) and the supported range.
    """
    if not MIN_TS_MS <= ms <= MAX_TS_MS:
        raise ValueError(
            f"timestamp {ms if shown is None else shown} is outside the supported range "
            f"{_TS_RANGE} once converted to UTC"
        )


def format_timestamp(ms: int) -> str:
    """Format UTC epoch milliseconds as ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    Example:
        >>> format_timestamp(1737369000123)
        '2025-01-20T10:30:00.123Z'
    """
    dt = _EPOCH + timedelta(milliseconds=ms)
    # isoformat, not strftime: strftime's %Y drops the leading zeros of years < 1000
    return dt.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def ip_key(address: str) -> str:
    """Sortable key of an IP address: 32 hex digits of its IPv6 (IPv4-mapped) form.

    CIDR filters become a ``BETWEEN`` on this key, which any SQL index serves.

    Example:
        >>> ip_key("10.0.0.1")
        '00000000000000000000ffff0a000001'
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        ip = ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + ip.packed)
    return ip.packed.hex()


@functools.lru_cache(maxsize=65_536)
def _parse_ip(raw: str) -> tuple[str, str] | None:
    """Canonical text and key of an address (cached: audit logs repeat addresses a lot)."""
    if IPV4_CANONICAL_RE.fullmatch(raw):  # the usual case, ~10x faster than ipaddress
        a, b, c, d = (int(o) for o in raw.split("."))
        return raw, f"00000000000000000000ffff{a:02x}{b:02x}{c:02x}{d:02x}"
    try:
        canonical = str(ipaddress.ip_address(raw))
    except ValueError:
        return None
    return canonical, ip_key(canonical)


@functools.lru_cache(maxsize=4096)
def _uuid_lower(s: str) -> str | None:
    """``s`` lower-cased if it is a UUID, else None (cached: see ``_Checker.uuid``)."""
    return s.lower() if _UUID_RE.match(s) else None


def _nul_message(value: str) -> str:
    return (
        f"contains a NUL character (\\x00) at position {value.index(_NUL)}; "
        "NUL cannot be stored (PostgreSQL text refuses it), remove it"
    )


def _find_nul(value: object, path: str) -> tuple[str, str] | None:
    """The first key or string holding a NUL in a JSON value: (dotted path, message)."""
    if isinstance(value, str):
        return (path, _nul_message(value)) if _NUL in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _NUL in key:
                return path, f"has a key that {_nul_message(key)}"
            found = _find_nul(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _find_nul(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


class _Checker:
    """Collects the problems of one entry."""

    __slots__ = ("index", "problems")

    def __init__(self, index: int | None) -> None:
        self.index = index
        self.problems: list[EntryProblem] = []

    def fail(self, field: str, message: str) -> None:
        self.problems.append(EntryProblem(self.index, field, message))

    def text(
        self, value: object, field: str, *, required: bool = False, limit: int = _MAX_TEXT
    ) -> str | None:
        if value is None:
            if required:
                self.fail(field, "is required")
            return None
        if not isinstance(value, str):
            self.fail(field, f"must be a string, got {type(value).__name__}")
            return None
        if required and not value.strip():
            self.fail(field, "must not be empty")
            return None
        if _NUL in value:
            self.fail(field, _nul_message(value))
            return None
        if len(value) > limit:
            self.fail(field, f"is {len(value)} characters long; the limit is {limit}")
            return None
        return value

    def uuid(
        self, value: object, field: str, *, required: bool = False, repeated: bool = False
    ) -> str | None:
        """A UUID, lower-cased; ``repeated``: a value most entries share (an organization),
        whose check is cached."""
        s = self.text(value, field, required=required)
        if s is None:
            return None
        lowered = _uuid_lower(s) if repeated else (s.lower() if _UUID_RE.match(s) else None)
        if lowered is None:
            self.fail(field, f"is not a UUID: {s!r}")
        return lowered

    def actor_id(self, value: object, field: str) -> str | None:
        """A stable actor id: UUIDs are lower-cased, other text is kept as written."""
        s = self.text(value, field, limit=MAX_USER_ID)
        if s is None:
            return None
        if _UUID_RE.match(s):
            return s.lower()
        if not s.strip() or s != s.strip():
            self.fail(field, f"must not be empty or start/end with spaces: {s!r}")
            return None
        if _BARE_EMAIL_RE.match(s):
            self.fail(field, f"is an email address ({s!r}); put it in actor.email")
            return None
        return s


def normalize_entry(
    entry: Mapping[str, Any],
    *,
    index: int | None = None,
    strict_actions: bool = False,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """Validate one entry in the interchange shape and return its flat row.

    ``audit_id`` (a new UUID4) and ``timestamp`` (now) may be omitted. UUIDs are
    lower-cased, IP addresses written in their canonical form, ``details`` stored
    as compact JSON with sorted keys.

    Raises:
        ValidationError: listing every problem of the entry.
    """
    chk = _Checker(index)
    if type(entry) is not dict and not isinstance(entry, Mapping):  # dict: skip the ABC check
        chk.fail("", f"an entry must be a JSON object, got {type(entry).__name__}")
        raise ValidationError(chk.problems)
    if not _ENTRY_KEYS.issuperset(entry):  # one C-level pass in the usual case
        for key in entry:
            if key not in _ENTRY_KEYS:
                chk.fail(str(key), f"unknown field; expected one of {', '.join(ENTRY_FIELDS)}")

    audit_id = chk.uuid(entry.get("audit_id"), "audit_id") if "audit_id" in entry else None
    if audit_id is None and entry.get("audit_id") is None:
        audit_id = str(uuid.uuid4())

    raw_ts = entry.get("timestamp")
    ts: int | None
    if raw_ts is None:
        ts = now_ms if now_ms is not None else (datetime.now(UTC) - _EPOCH) // _MS
    else:
        try:
            ts = parse_timestamp(raw_ts)
        except ValueError as exc:
            chk.fail("timestamp", str(exc))
            ts = None

    actor = entry.get("actor")
    actor_user_id = actor_email = actor_type = None
    if type(actor) is not dict and not isinstance(actor, Mapping):
        chk.fail("actor", "is required and must be an object with type, user_id and/or email")
    else:
        if not _ACTOR_KEYS.issuperset(actor):
            for key in actor:
                if key not in _ACTOR_KEYS:
                    chk.fail(f"actor.{key}", "unknown field; expected user_id, email, type")
        actor_user_id = chk.actor_id(actor.get("user_id"), "actor.user_id")
        actor_email = chk.text(actor.get("email"), "actor.email", limit=320)
        if actor_email is not None and not _EMAIL_RE.match(actor_email):
            chk.fail("actor.email", f"is not an email address: {actor_email!r}")
        actor_type = chk.text(actor.get("type"), "actor.type", required=True)
        if actor_type is not None and actor_type not in _ACTOR_TYPES:
            chk.fail(
                "actor.type",
                f"must be one of {', '.join(sorted(_ACTOR_TYPES))}, got {actor_type!r}",
            )
        if actor_type == "user" and actor_user_id is None and actor_email is None:
            chk.fail("actor", "a user actor needs a user_id or an email")

    action = chk.text(entry.get("action"), "action", required=True, limit=128)
    if action is not None:
        if not _ACTION_RE.match(action):
            chk.fail("action", f"must look like 'category.verb' in lower case, got {action!r}")
        elif strict_actions and action not in ACTIONS:
            chk.fail(
                "action",
                f"{action!r} is not in the action catalogue "
                "(the store was opened with strict_actions=True)",
            )

    resource = entry.get("resource")
    resource_type = resource_id = resource_name = None
    if resource is not None:
        if type(resource) is not dict and not isinstance(resource, Mapping):
            chk.fail("resource", "must be an object with type, id and name")
        else:
            if not _RESOURCE_KEYS.issuperset(resource):
                for key in resource:
                    if key not in _RESOURCE_KEYS:
                        chk.fail(f"resource.{key}", "unknown field; expected type, id, name")
            resource_type = chk.text(
                resource.get("type"), "resource.type", required=True, limit=128
            )
            resource_id = chk.text(resource.get("id"), "resource.id", limit=256)
            resource_name = chk.text(resource.get("name"), "resource.name", limit=512)

    organization_id = chk.uuid(
        entry.get("organization_id"), "organization_id", required=True, repeated=True
    )
    application_id = chk.uuid(entry.get("application_id"), "application_id", repeated=True)

    ip_address = ip_k = None
    raw_ip = chk.text(entry.get("ip_address"), "ip_address", limit=64)
    if raw_ip is not None:
        parsed_ip = _parse_ip(raw_ip)
        if parsed_ip is None:
            chk.fail("ip_address", f"is not an IPv4 or IPv6 address: {raw_ip!r}")
        else:
            ip_address, ip_k = parsed_ip
    user_agent = chk.text(entry.get("user_agent"), "user_agent", limit=_MAX_TEXT)

    details_raw = entry.get("details")
    details = "{}"
    if details_raw is not None:
        if type(details_raw) is not dict and not isinstance(details_raw, Mapping):
            chk.fail("details", f"must be a JSON object, got {type(details_raw).__name__}")
        else:
            try:
                blob = orjson.dumps(details_raw, option=orjson.OPT_SORT_KEYS)
            except (TypeError, orjson.JSONEncodeError) as exc:
                chk.fail("details", f"is not JSON-serialisable: {exc}")
            else:
                if len(blob) > max_details_bytes:
                    chk.fail(
                        "details",
                        f"is {len(blob):,} bytes as JSON; the limit is {max_details_bytes:,} "
                        "(raise max_details_bytes when opening the store)",
                    )
                elif _ESCAPED_NUL in blob and (where := _find_nul(details_raw, "details")):
                    chk.fail(where[0], where[1])
                details = blob.decode()

    result = chk.text(entry.get("result"), "result", required=True)
    if result is not None and result not in _RESULTS:
        chk.fail("result", f"must be one of success, failure, partial, got {result!r}")

    if chk.problems:
        raise ValidationError(chk.problems)
    assert action is not None and organization_id is not None and ts is not None
    return {
        "audit_id": audit_id,
        "ts": ts,
        "actor_user_id": actor_user_id,
        "actor_email": actor_email,
        "actor_type": actor_type,
        "action": action,
        "category": category_of(action),
        "resource_type": resource_type,
        "resource_id": resource_id,
        "resource_name": resource_name,
        "organization_id": organization_id,
        "application_id": application_id,
        "ip_address": ip_address,
        "ip_key": ip_k,
        "user_agent": user_agent,
        "details": details,
        "result": result,
    }


def normalize_entries(
    entries: Iterable[Mapping[str, Any]],
    *,
    strict_actions: bool = False,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
) -> list[dict[str, Any]]:
    """Validate a batch lazily: every problem of every entry is collected, then raised once.

    Example:
        >>> try:
        ...     normalize_entries([{"action": "auth.login"}])
        ... except ValidationError as e:
        ...     sorted(p.field for p in e.problems)
        ['actor', 'organization_id', 'result']
    """
    now_ms = (datetime.now(UTC) - _EPOCH) // _MS
    rows: list[dict[str, Any]] = []
    problems: list[EntryProblem] = []
    for i, entry in enumerate(entries):
        try:
            rows.append(
                normalize_entry(
                    entry,
                    index=i,
                    strict_actions=strict_actions,
                    max_details_bytes=max_details_bytes,
                    now_ms=now_ms,
                )
            )
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems)
    return rows


def row_to_entry(row: Mapping[Any, Any], *, chain: bool = False) -> dict[str, Any]:
    """Turn a stored flat row back into the JSON interchange shape.

    With ``chain=True`` the chain fields (``seq``, ``prev_hash``, ``entry_hash``) are added.
    """
    details = row["details"]
    entry: dict[str, Any] = {
        "audit_id": row["audit_id"],
        "timestamp": format_timestamp(row["ts"]),
        "actor": {
            "user_id": row["actor_user_id"],
            "email": row["actor_email"],
            "type": row["actor_type"],
        },
        "action": row["action"],
        "resource": None
        if row["resource_type"] is None
        else {"type": row["resource_type"], "id": row["resource_id"], "name": row["resource_name"]},
        "organization_id": row["organization_id"],
        "application_id": row["application_id"],
        "ip_address": row["ip_address"],
        "user_agent": row["user_agent"],
        "details": orjson.loads(details) if isinstance(details, str | bytes) else details,
        "result": row["result"],
    }
    if chain:
        entry["seq"] = row["seq"]
        entry["prev_hash"] = row["prev_hash"]
        entry["entry_hash"] = row["entry_hash"]
    return entry
