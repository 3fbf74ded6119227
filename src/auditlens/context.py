"""Organization context: names, time zones, business hours and people, kept in the trail itself.

Context is data the detectors and reports depend on ("was 02:40 off-hours for her?"), so
whoever changes it must leave a trace an auditor can see. auditlens therefore stores it
*as audit entries* of the organization it describes — chained, signed by checkpoints,
protected by the same triggers as every other entry:

- ``organization.profile_changed``: the organization's name, time zone, business hours
  and workdays (details ``{"profile": {...}, "before": {...}}``);
- ``organization.person_set`` / ``organization.person_removed``: one person's time zone,
  name, role and manager (resource ``person``, id = lower-case email).

The current context is the newest entry per organization (and per person). Changing
it is an append like any other: ``action:organization.profile_changed`` lists every
change, who made it and when.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> p = set_org_profile(store, org, name="Acme", timezone="Asia/Tokyo", hours="09:00-18:00")
    >>> (p.name, p.timezone, p.workdays)
    ('Acme', 'Asia/Tokyo', ('mon', 'tue', 'wed', 'thu', 'fri'))
    >>> _ = set_people(store, org, [{"email": "Lena@acme.example", "timezone": "Europe/Berlin"}])
    >>> [(x.email, x.timezone) for x in people(store, org)]
    [('lena@acme.example', 'Europe/Berlin')]
    >>> detector_context(store)["off_hours"]["person_timezones"][f"{org}:lena@acme.example"]
    'Europe/Berlin'
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from auditlens.errors import ConfigError, ContextError
from auditlens.review import reviewer

if TYPE_CHECKING:
    import polars as pl

    from auditlens.store.store import Store

__all__ = [
    "CONTEXT_ACTIONS",
    "PERSON_ACTIONS",
    "PROFILE_ACTION",
    "OrgProfile",
    "PeopleChange",
    "Person",
    "carry_forward",
    "context_of",
    "detector_context",
    "entries_of_frame",
    "org_profile",
    "org_profiles",
    "parse_hours",
    "parse_workdays",
    "people",
    "person_entry",
    "profile_entry",
    "read_people_file",
    "set_org_profile",
    "set_people",
    "with_context",
]

PROFILE_ACTION = "organization.profile_changed"
PERSON_SET = "organization.person_set"
PERSON_REMOVED = "organization.person_removed"
PERSON_ACTIONS = (PERSON_SET, PERSON_REMOVED)
CONTEXT_ACTIONS = (PROFILE_ACTION, *PERSON_ACTIONS)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TIMEZONE = "UTC"
DEFAULT_HOURS = "08:00-18:00"
DEFAULT_WORKDAYS = DAYS[:5]
_PERSON_FIELDS = ("timezone", "name", "role", "manager")
_HHMM = re.compile(r"^\d{1,2}:\d{2}$")


@dataclass(frozen=True)
class OrgProfile:
    """An organization's context; the defaults apply until someone sets it."""

    organization_id: str
    name: str | None = None
    timezone: str = DEFAULT_TIMEZONE
    hours: str = DEFAULT_HOURS
    workdays: tuple[str, ...] = DEFAULT_WORKDAYS
    #: the entry that set it (None: never set, the defaults apply)
    audit_id: str | None = None
    set_by: str | None = None
    set_at: datetime | None = None

    @property
    def is_default(self) -> bool:
        """True when nobody has set this organization's context."""
        return self.audit_id is None

    def settings(self) -> dict[str, Any]:
        """The four settings as they are stored in an entry's details."""
        return {
            "name": self.name,
            "timezone": self.timezone,
            "hours": self.hours,
            "workdays": list(self.workdays),
        }


@dataclass(frozen=True)
class Person:
    """One person of an organization: their time zone overrides the organization's."""

    organization_id: str
    email: str
    timezone: str | None = None
    name: str | None = None
    role: str | None = None
    manager: str | None = None
    audit_id: str | None = None

    def settings(self) -> dict[str, Any]:
        """The person's fields as they are stored in an entry's details."""
        return {"email": self.email, **{k: getattr(self, k) for k in _PERSON_FIELDS}}


@dataclass(frozen=True)
class PeopleChange:
    """What :func:`set_people` changed."""

    added: int
    changed: int
    removed: int
    unchanged: int


# -- validation ----------------------------------------------------------------------------
def _zone(value: str, where: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ContextError(
            f"{where}: unknown time zone {value!r}; use an IANA name like 'Europe/Berlin'"
        ) from None
    return value


def parse_hours(spec: str, where: str = "hours") -> tuple[time, time]:
    """``"09:00-18:00"`` → ``(09:00, 18:00)``; the start must be before the end.

    Example:
        >>> parse_hours("09:00-17:30")
        (datetime.time(9, 0), datetime.time(17, 30))
    """
    try:
        a, b = (part.strip() for part in str(spec).split("-"))
        start, end = (time(int(x[:-3]), int(x[-2:])) for x in (a, b) if _HHMM.match(x))
    except ValueError:
        raise ContextError(
            f"{where}: expected HH:MM-HH:MM like '09:00-18:00', got {spec!r}"
        ) from None
    if start >= end:
        raise ContextError(f"{where}: {spec!r} — the start must be before the end")
    return start, end


def parse_workdays(spec: str | Iterable[str], where: str = "workdays") -> tuple[str, ...]:
    """``"mon-fri"``, ``"sun-thu"``, ``"mon,wed,fri"`` or a list → day names in week order.

    Example:
        >>> parse_workdays("sun-thu")
        ('mon', 'tue', 'wed', 'thu', 'sun')
    """
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    days: set[int] = set()
    for raw in parts:
        part = str(raw).strip().lower()
        if not part:
            continue
        ends = part.split("-")
        if len(ends) > 2 or any(e[:3] not in DAYS for e in ends):
            raise ContextError(
                f"{where}: {raw!r} is not a day or a range of days (mon … sun, e.g. 'mon-fri')"
            )
        a, b = DAYS.index(ends[0][:3]), DAYS.index(ends[-1][:3])
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    if not days:
        raise ContextError(f"{where}: no workdays given")
    return tuple(DAYS[i] for i in sorted(days))


def _clean_email(value: Any, where: str) -> str:
    email = str(value or "").strip().lower()
    if "@" not in email or any(c.isspace() for c in email):
        raise ContextError(f"{where}: email: {value!r} is not an email address")
    return email


def _text(value: Any) -> str | None:
    return (str(value).strip() or None) if value is not None else None


def _person(org: str, row: Mapping[str, Any], where: str) -> Person:
    unknown = set(row) - {"email", *_PERSON_FIELDS}
    if unknown:
        raise ContextError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"known: email, {', '.join(_PERSON_FIELDS)}"
        )
    values = {
        k: (str(row[k]).strip() or None) if row.get(k) is not None else None for k in _PERSON_FIELDS
    }
    if values["timezone"]:
        _zone(values["timezone"], f"{where}: timezone")
    if values["manager"]:
        values["manager"] = _clean_email(values["manager"], f"{where}: manager")
    return Person(org, _clean_email(row.get("email"), where), **values)


# -- reading -------------------------------------------------------------------------------
def _latest(
    store: Store, actions: Sequence[str], org: str | Sequence[str] | None
) -> list[dict[str, Any]]:
    """The context entries, oldest first (seq order within each organization)."""
    filters: dict[str, Any] = {"actions": list(actions)}
    if org is not None:
        filters["organization_id"] = org
    rows = store.entries(order="asc", **filters)
    rows.sort(key=lambda e: (e["organization_id"], e["seq"]))
    return rows


def _profile_from(entry: Mapping[str, Any]) -> OrgProfile:
    p = (entry.get("details") or {}).get("profile") or {}
    actor = entry.get("actor") or {}
    return OrgProfile(
        entry["organization_id"],
        p.get("name"),
        p.get("timezone") or DEFAULT_TIMEZONE,
        p.get("hours") or DEFAULT_HOURS,
        tuple(p.get("workdays") or DEFAULT_WORKDAYS),
        entry["audit_id"],
        actor.get("email") or actor.get("type"),
        datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")),
    )


def org_profiles(store: Store) -> dict[str, OrgProfile]:
    """The current profile of every organization that has one set."""
    out: dict[str, OrgProfile] = {}
    for entry in _latest(store, [PROFILE_ACTION], None):
        out[entry["organization_id"]] = _profile_from(entry)
    return out


def org_profile(store: Store, organization_id: str) -> OrgProfile:
    """An organization's current profile (the defaults when nobody has set one).

    Example:
        >>> import auditlens as al
        >>> org_profile(al.open_store("sqlite://"), "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11").timezone
        'UTC'
    """
    rows = _latest(store, [PROFILE_ACTION], organization_id)
    return _profile_from(rows[-1]) if rows else OrgProfile(organization_id)


def _people_of(store: Store, org: str | None) -> dict[tuple[str, str], Person]:
    return _people_from(_latest(store, PERSON_ACTIONS, org))


def _people_from(entries: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Person]:
    """The current people from person entries in seq order (a removal drops the person)."""
    current: dict[tuple[str, str], Person] = {}
    for entry in entries:
        if entry["action"] not in PERSON_ACTIONS:
            continue
        d = entry.get("details") or {}
        key = (entry["organization_id"], str(entry.get("resource", {}).get("id") or ""))
        if entry["action"] == PERSON_REMOVED:
            current.pop(key, None)
            continue
        p = d.get("person") or {}
        current[key] = Person(
            entry["organization_id"],
            key[1],
            **{k: p.get(k) for k in _PERSON_FIELDS},
            audit_id=entry["audit_id"],
        )
    return current


def people(store: Store, organization_id: str) -> list[Person]:
    """The organization's people, sorted by email."""
    return sorted(_people_of(store, organization_id).values(), key=lambda p: p.email)


# -- writing -------------------------------------------------------------------------------
def _actor(by: str | None) -> dict[str, Any]:
    if by:
        return {"email": _clean_email(by, "by"), "type": "user"}
    return reviewer()


def set_org_profile(
    store: Store,
    organization_id: str,
    *,
    name: str | None = None,
    timezone: str | None = None,
    hours: str | None = None,
    workdays: str | Iterable[str] | None = None,
    by: str | None = None,
) -> OrgProfile:
    """Set (part of) an organization's context; unchanged settings keep their value.

    Writes one ``organization.profile_changed`` entry with the new settings and the old
    ones (nothing when nothing changes). ``by`` is the person making the change (an
    email; default ``$AUDITLENS_ACTOR``, else the system).
    """
    org = str(organization_id).strip().lower()
    if not org:
        raise ContextError("organization_id: empty")
    current = org_profile(store, org)
    new = replace(
        current,
        name=(name.strip() or None) if name is not None else current.name,
        timezone=_zone(timezone, "timezone") if timezone is not None else current.timezone,
        hours=_format_hours(hours) if hours is not None else current.hours,
        workdays=parse_workdays(workdays) if workdays is not None else current.workdays,
    )
    if not current.is_default and new.settings() == current.settings():
        return current
    store.append([profile_entry(new, _actor(by), None if current.is_default else current)])
    return org_profile(store, org)


def profile_entry(
    profile: OrgProfile, actor: Mapping[str, Any], before: OrgProfile | None = None
) -> dict[str, Any]:
    """The ``organization.profile_changed`` entry (interchange shape) that sets ``profile``."""
    org = profile.organization_id
    return {
        "actor": dict(actor),
        "action": PROFILE_ACTION,
        "organization_id": org,
        "resource": {"type": "organization", "id": org, "name": profile.name},
        "details": {
            "profile": profile.settings(),
            "before": before.settings() if before is not None else None,
        },
        "result": "success",
    }


def _format_hours(spec: str) -> str:
    start, end = parse_hours(spec)
    return f"{start:%H:%M}-{end:%H:%M}"


def set_people(
    store: Store,
    organization_id: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    replace_all: bool = True,
    by: str | None = None,
) -> PeopleChange:
    """Set an organization's people from rows of ``email, timezone, name, role, manager``.

    Every row is validated before anything is written; the changes are appended in one
    batch (one ``organization.person_set`` per new or changed person and, with
    ``replace_all``, one ``organization.person_removed`` per person no longer listed).
    """
    org = str(organization_id).strip().lower()
    wanted: dict[str, Person] = {}
    for i, row in enumerate(rows, 1):
        p = _person(org, row, f"row {i}")
        if p.email in wanted:
            raise ContextError(f"row {i}: email: {p.email} is listed twice")
        wanted[p.email] = p
    have = {k[1]: v for k, v in _people_of(store, org).items()}
    actor = _actor(by)
    batch: list[dict[str, Any]] = []
    added = changed = unchanged = 0
    for email, p in sorted(wanted.items()):
        old = have.get(email)
        if old is not None and replace(old, audit_id=None) == p:
            unchanged += 1
            continue
        added += old is None
        changed += old is not None
        batch.append(person_entry(org, PERSON_SET, p, actor, old))
    gone = sorted(set(have) - set(wanted)) if replace_all else []
    batch.extend(person_entry(org, PERSON_REMOVED, have[e], actor, have[e]) for e in gone)
    if batch:
        store.append(batch)
    return PeopleChange(added, changed, len(gone), unchanged)


def person_entry(
    org: str, action: str, p: Person, actor: Mapping[str, Any], old: Person | None
) -> dict[str, Any]:
    """The ``organization.person_set``/``person_removed`` entry (interchange shape) for ``p``."""
    details: dict[str, Any] = {"before": old.settings() if old else None}
    if action == PERSON_SET:
        details["person"] = p.settings()
    return {
        "actor": dict(actor),
        "action": action,
        "organization_id": org,
        "resource": {"type": "person", "id": p.email, "name": p.name or p.email},
        "details": details,
        "result": "success",
    }


def read_people_file(path: str | Path) -> list[dict[str, Any]]:
    """Rows from a CSV (header: email, timezone, name, role, manager) or JSON list file.

    Errors name the file and line: ``people.csv:4: timezone: unknown time zone 'Mars/Base'``.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if p.suffix.lower() == ".json" or text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ContextError(f"{p}: not valid JSON ({exc})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ContextError(f"{p}: expected a JSON list of objects with an email each")
        rows = data
        lines = list(range(1, len(rows) + 1))
        label = "item"
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
            raise ContextError(f"{p}:1: the header needs an 'email' column")
        rows, lines = [], []
        for row in reader:
            rows.append({k.strip().lower(): v for k, v in row.items() if k and v not in (None, "")})
            lines.append(reader.line_num)
        label = "line"
    for row, line in zip(rows, lines, strict=True):
        try:
            _person("", row, "")
        except ContextError as exc:
            where = f"{p}:{line}" if label == "line" else f"{p}: item {line}"
            raise ContextError(f"{where}{exc}") from None
    return rows


# -- what detectors use ---------------------------------------------------------------------
def detector_context(
    store: Store, organization_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Detector parameters from the stored context (``{"off_hours": {...}}``).

    Time zones: a person's own, else their organization's; business hours and workdays
    per organization. Pass the result as ``config`` to ``store.detect`` or
    ``detect.run_all``; explicit parameters override it.
    """
    wanted = None if organization_ids is None else sorted(set(organization_ids))
    # one query for the profiles and the people, of the wanted organizations only
    rows = _latest(store, CONTEXT_ACTIONS, wanted) if wanted is None or wanted else []
    return context_of(rows)


def context_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """:func:`detector_context` from context entries already read, oldest first within each
    organization (a store's, or a lake's through :func:`entries_of_frame`).

    Example:
        >>> context_of([])["off_hours"]["timezones"]
        {}
    """
    rows = list(rows)
    profiles = {
        e["organization_id"]: _profile_from(e) for e in rows if e["action"] == PROFILE_ACTION
    }
    zones: dict[str, str] = {o: p.timezone for o, p in profiles.items()}
    person_zones = {
        f"{org}:{email}": person.timezone
        for (org, email), person in _people_from(rows).items()
        if person.timezone
    }
    return {
        "off_hours": {
            "timezones": zones,
            "person_timezones": person_zones,
            "hours": {o: p.hours for o, p in profiles.items()},
            "workdays": {o: list(p.workdays) for o, p in profiles.items()},
        }
    }


def entries_of_frame(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Context entries of a frame of entries (a lake's, say) in the shape the store returns:
    ``details`` parsed, ``actor``/``resource`` nested, in seq order within each organization.

    Example:
        >>> import polars as pl
        >>> rows = entries_of_frame(pl.DataFrame({"organization_id": ["o"], "seq": [1],
        ...     "audit_id": ["a"], "action": ["organization.profile_changed"],
        ...     "timestamp": ["2025-01-01T00:00:00Z"], "actor_email": [None],
        ...     "actor_type": ["system"], "resource_id": ["o"],
        ...     "details": ['{"profile": {"timezone": "Asia/Tokyo"}}']}))
        >>> context_of(rows)["off_hours"]["timezones"]
        {'o': 'Asia/Tokyo'}
    """
    import polars as pl  # lazy: the CLI's start-up reads context without polars

    wanted = frame.filter(pl.col("action").is_in(list(CONTEXT_ACTIONS))).sort(
        "organization_id", "seq"
    )
    out = []
    for row in wanted.iter_rows(named=True):
        details = row.get("details")
        out.append(
            {
                "organization_id": row["organization_id"],
                "seq": row["seq"],
                "audit_id": row["audit_id"],
                "action": row["action"],
                "timestamp": row["timestamp"],
                "details": json.loads(details) if isinstance(details, str) else details,
                "actor": {"email": row.get("actor_email"), "type": row.get("actor_type")},
                "resource": {"id": row.get("resource_id")},
            }
        )
    return out


def describe(profile: OrgProfile) -> dict[str, Any]:
    """A profile as plain data for report appendices (where it came from included)."""
    out = asdict(profile)
    out["workdays"] = list(profile.workdays)
    out["set_at"] = profile.set_at.isoformat() if profile.set_at else None
    out["source"] = "default" if profile.is_default else f"entry {profile.audit_id}"
    return out


def with_context(
    store: Store,
    config: Mapping[str, Any] | None,
    detector: str = "all",
    organization_ids: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Detector parameters: the stored context, overridden by ``config``.

    ``detector="all"``: ``config`` maps detector → parameters (or False); otherwise it is
    that one detector's parameters. Mappings (``timezones``, ``hours``…) are merged
    key by key, so an override file names only what differs from the stored context.

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
        >>> _ = set_org_profile(store, org, timezone="Asia/Tokyo")
        >>> zones = with_context(store, {"timezones": {"a@x.io": "UTC"}}, "off_hours")["timezones"]
        >>> zones == {org: "Asia/Tokyo", "a@x.io": "UTC"}
        True
    """
    stored = detector_context(store, organization_ids)
    given = dict(config or {})
    if detector != "all":
        return _merge(stored.get(detector, {}), given)
    out: dict[str, Any] = dict(given)
    for name, params in stored.items():
        if given.get(name) is False:
            continue
        extra = given.get(name)
        out[name] = _merge(params, extra if isinstance(extra, Mapping) else {})
    return out


def _merge(stored: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(stored)
    for k, v in given.items():
        out[k] = (
            {**out[k], **v} if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
        )
    return out


def carry_forward(
    store: Store, organization_id: str, archived: Iterable[str]
) -> list[dict[str, Any]]:
    """Entries that re-state the context whose latest entries retention is about to archive.

    The context is read from live entries, so retention would otherwise reset an
    organization to UTC and default hours once its ``profile_changed`` entry ages out.
    Retention appends these (``details.carried_forward_from`` names the archived entry) in
    the same transaction as the removal. Call it before anything is removed.
    """
    gone = set(archived)
    system = {"type": "system"}
    out: list[dict[str, Any]] = []
    profile = org_profile(store, organization_id)
    if profile.audit_id in gone:
        entry = profile_entry(profile, system, profile)
        entry["details"]["carried_forward_from"] = profile.audit_id
        out.append(entry)
    for person in people(store, organization_id):
        if person.audit_id in gone:
            entry = person_entry(person.organization_id, PERSON_SET, person, system, person)
            entry["details"]["carried_forward_from"] = person.audit_id
            out.append(entry)
    return out
