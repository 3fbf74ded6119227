"""The fields of an audit entry, declared once.

:data:`FIELDS` is the one table of what an entry holds. Everything else that lists
fields is derived from it:

* the flat row of :mod:`auditlens.schema` (``ROW_FIELDS``) and the top-level keys of the
  interchange shape (``ENTRY_FIELDS``);
* the ``audit_entries`` columns of :mod:`auditlens.store.tables` (name, SQL type, length,
  nullability, uniqueness);
* the dataframe layout of :mod:`auditlens.frames` (``COLUMNS``/``FRAME_SCHEMA``);
* the fields the chain's content hash covers, in the order ``docs/CHAIN.md`` publishes
  (:data:`CONTENT_FIELDS`; never reorder: it changes every hash);
* keyword filters (``store.query(actor=…)``, ``FILTER_KEYWORDS``) and how each one
  matches (:class:`Match`), and the search-bar qualifiers that name them;
* export field paths and defaults (``export(fields=…)``) and the CLI's CSV columns;
* the field table of ``docs/ENTRY.md`` (:func:`markdown_table`; a test keeps them equal).

Adding a field is one edit here plus a migration (``docs/ARCHITECTURE.md`` lists the
steps); validation of its value goes into :func:`auditlens.schema.normalize_entry`.

This module is the model layer: it imports nothing from auditlens.

Example:
    >>> FIELD["resource_name"].path, FIELD["resource_name"].sql, FIELD["ts"].frame
    ('resource.name', 'text', 'timestamp')
    >>> CONTENT_FIELDS[:4]
    ('organization_id', 'seq', 'audit_id', 'ts')
    >>> [k.name for k in FIELD["action"].keywords]
    ['actions', 'action']
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

__all__ = [
    "CONTENT_FIELDS",
    "CSV_FIELDS",
    "ENTRY_FIELDS",
    "EXPORT_DEFAULTS",
    "EXPORT_PATHS",
    "FIELD",
    "FIELDS",
    "FILTER_KEYWORDS",
    "FRAME_COLUMNS",
    "KEYWORD",
    "KEYWORDS",
    "QUALIFIERS",
    "ROW_FIELDS",
    "TEXT_KEYWORD",
    "Field",
    "Keyword",
    "Match",
    "Role",
    "markdown_table",
]


class Role(StrEnum):
    """Where a field's value comes from."""

    ENTRY = "entry"  #: given in the interchange shape
    DERIVED = "derived"  #: computed from it at validation (category, ip_key)
    CHAIN = "chain"  #: given by the store when the entry is chained (seq, hashes)


class Match(StrEnum):
    """How a keyword filter compares its values."""

    RANGE = "range"  #: a point in time or a duration, as an inclusive time range
    ACTOR = "actor"  #: an email (``*`` wildcards, any case) or a user id
    CHOICE = "choice"  #: one of a fixed set of values, any case
    PATTERN = "pattern"  #: an action or a pattern with ``*`` (``webhook.*``), any case
    CATEGORY = "category"  #: a category, or an action prefix naming one (``auth``)
    EXACT = "exact"  #: equal to the value as given
    ID = "id"  #: equal to the value lower-cased (UUIDs)
    ID_OR_NAME = "id_or_name"  #: equal to the resource id or the resource name
    CIDR = "cidr"  #: an address or CIDR block (``10.0.0.0/8``), on the sortable ip key
    TEXT = "text"  #: text search over what a person reads (see ``store/tables.py``)


@dataclass(frozen=True)
class Keyword:
    """A keyword filter: ``store.query(<name>=…)``, and the search qualifiers naming it.

    ``clause`` is the :class:`~auditlens.query.filters.Clause` field it builds (default: the
    name); ``column`` the stored column it compares (default: the field it belongs to).
    """

    name: str
    match: Match
    qualifiers: tuple[str, ...] = ()
    clause: str = ""
    column: str = ""


SqlType = Literal["string", "text", "bigint"]
FrameType = Literal["string", "int64", "timestamp_ms"]


@dataclass(frozen=True)
class Field:
    """One stored field of an entry (a column of ``audit_entries``).

    Attributes:
        column: the column name in the store and in flat rows.
        path: the dotted path in the interchange shape (``actor.email``); also its export
            field name. None: not part of the shape (``ip_key``).
        role: see :class:`Role`.
        sql: ``string`` (VARCHAR of ``length``), ``text`` or ``bigint``.
        length: characters of a ``string`` column.
        nullable: whether the column may be NULL.
        unique: whether the column has a unique constraint of its own.
        frame: its column name in dataframes, None when frames leave it out.
        dtype: its dataframe type (``timestamp_ms`` is UTC milliseconds).
        hash_position: its place (1-based) in the canonical bytes of ``docs/CHAIN.md``;
            None: not hashed.
        keywords: the keyword filters that compare this field.
        export_default: exported when no fields are chosen.
        csv_position: its place (1-based) among the CLI's CSV columns; None: left out.
        description: one line for ``docs/ENTRY.md``.
    """

    column: str
    path: str | None
    role: Role
    sql: SqlType
    length: int | None = None
    nullable: bool = True
    unique: bool = False
    frame: str | None = None
    dtype: FrameType = "string"
    hash_position: int | None = None
    keywords: tuple[Keyword, ...] = ()
    export_default: bool = True
    csv_position: int | None = None
    description: str = ""


def _f(column: str, path: str | None, role: Role, sql: SqlType, **kw: object) -> Field:
    """A field shown in frames under its column name unless told otherwise."""
    kw.setdefault("frame", column)
    return Field(column, path, role, sql, **kw)  # type: ignore[arg-type]


_E, _D, _C = Role.ENTRY, Role.DERIVED, Role.CHAIN

# fmt: off
#: every stored field of an entry, in the order of the dataframe columns.
FIELDS: tuple[Field, ...] = (
    _f("audit_id", "audit_id", _E, "string", length=36, nullable=False, unique=True,
       hash_position=3, csv_position=2,
       keywords=(Keyword("audit_id", Match.ID, ("id", "audit_id")),),
       description="Unique id of the entry (UUID, lower-case)."),
    _f("ts", "timestamp", _E, "bigint", nullable=False, frame="timestamp", dtype="timestamp_ms",
       hash_position=4, csv_position=1,
       keywords=(Keyword("start", Match.RANGE, clause="time"),
                 Keyword("end", Match.RANGE, clause="time"),
                 Keyword("last", Match.RANGE, ("last",), clause="time")),
       description="When it happened: UTC milliseconds since 1970 (ISO 8601 in the shape)."),
    _f("actor_user_id", "actor.user_id", _E, "string", length=256,
       hash_position=6, csv_position=5,
       description="A stable identifier of the actor (a UUID, an IAM ARN, an Okta id)."),
    _f("actor_email", "actor.email", _E, "text", hash_position=7, csv_position=4,
       keywords=(Keyword("actor", Match.ACTOR, ("actor", "user")),),
       description="The actor's email address."),
    _f("actor_type", "actor.type", _E, "string", length=32, nullable=False,
       hash_position=5, csv_position=6,
       keywords=(Keyword("actor_type", Match.CHOICE, ("actor_type",)),),
       description="user, service_account or system."),
    _f("action", "action", _E, "string", length=128, nullable=False,
       hash_position=8, csv_position=7,
       keywords=(Keyword("actions", Match.PATTERN, ("action",), clause="action"),
                 Keyword("action", Match.PATTERN)),
       description="What was done, as category.verb (webhook.created)."),
    _f("category", "category", _D, "string", length=64, nullable=False, export_default=False,
       keywords=(Keyword("category", Match.CATEGORY, ("category",)),),
       description="The action's category (derived from the action)."),
    _f("resource_type", "resource.type", _E, "string", length=128,
       hash_position=9, csv_position=8,
       keywords=(Keyword("resource_type", Match.EXACT, ("type", "resource_type")),),
       description="The kind of resource acted on (webhook)."),
    _f("resource_id", "resource.id", _E, "text", hash_position=10, csv_position=9,
       keywords=(Keyword("resource", Match.ID_OR_NAME, ("resource",)),
                 Keyword("resource_id", Match.EXACT, ("resource_id",))),
       description="The resource's id."),
    _f("resource_name", "resource.name", _E, "text", hash_position=11, csv_position=10,
       keywords=(Keyword("resource_name", Match.EXACT, ("name", "resource_name")),),
       description="The resource's name as a person reads it."),
    _f("organization_id", "organization_id", _E, "string", length=36, nullable=False,
       hash_position=1, csv_position=3,
       keywords=(Keyword("organization_id", Match.ID,
                         ("org", "organization", "organization_id")),),
       description="The tenant the entry belongs to (UUID); each has its own chain."),
    _f("application_id", "application_id", _E, "string", length=36,
       hash_position=12, csv_position=14,
       keywords=(Keyword("application_id", Match.ID, ("app", "application", "application_id")),),
       description="The application acted through (UUID)."),
    _f("ip_address", "ip_address", _E, "string", length=64, hash_position=13, csv_position=12,
       keywords=(Keyword("ip", Match.CIDR, ("ip",), column="ip_key"),),
       description="The client's IPv4 or IPv6 address, in canonical form."),
    _f("ip_key", None, _D, "string", length=32, frame=None, export_default=False,
       description="The address as 32 sortable hex digits (CIDR filters use it)."),
    _f("user_agent", "user_agent", _E, "text", hash_position=14, csv_position=13,
       description="The client's user agent."),
    _f("details", "details", _E, "text", nullable=False, hash_position=15, csv_position=15,
       description="Anything else, as compact JSON with sorted keys."),
    _f("result", "result", _E, "string", length=16, nullable=False,
       hash_position=16, csv_position=11,
       keywords=(Keyword("result", Match.CHOICE, ("result",)),),
       description="success, failure or partial."),
    _f("seq", "seq", _C, "bigint", nullable=False, dtype="int64", hash_position=2,
       export_default=False, csv_position=16,
       description="Position in the organization's chain, from 1."),
    _f("prev_hash", "prev_hash", _C, "string", length=64, nullable=False, export_default=False,
       description="entry_hash of the previous entry of the organization (hex)."),
    _f("entry_hash", "entry_hash", _C, "string", length=64, nullable=False,
       export_default=False, csv_position=17,
       description="SHA-256(prev_hash ‖ content hash), hex (docs/CHAIN.md)."),
)
# fmt: on

#: column name → field.
FIELD: MappingProxyType[str, Field] = MappingProxyType({f.column: f for f in FIELDS})

#: free-text search: not a field of its own (see :mod:`auditlens.store.tables`).
TEXT_KEYWORD = Keyword("text", Match.TEXT, ("text",))


def _resolved(field: Field, keyword: Keyword) -> Keyword:
    return Keyword(
        keyword.name,
        keyword.match,
        keyword.qualifiers,
        keyword.clause or keyword.name,
        keyword.column or field.column,
    )


#: every keyword filter, with its clause field and column filled in, in field order.
KEYWORDS: tuple[Keyword, ...] = (
    *(_resolved(f, k) for f in FIELDS for k in f.keywords),
    Keyword(TEXT_KEYWORD.name, Match.TEXT, TEXT_KEYWORD.qualifiers, "text", ""),
)
#: keyword name → keyword.
KEYWORD: MappingProxyType[str, Keyword] = MappingProxyType({k.name: k for k in KEYWORDS})
#: keyword filters accepted by ``AuditStore.query`` and ``Filter.from_kwargs``.
FILTER_KEYWORDS: tuple[str, ...] = tuple(KEYWORD)
#: search-bar qualifier → the keyword filter it stands for (time ranges aside).
QUALIFIERS: MappingProxyType[str, str] = MappingProxyType(
    {q: k.name for k in KEYWORDS for q in k.qualifiers}
)

#: columns of a stored row that come from the entry (chain columns excluded).
ROW_FIELDS: tuple[str, ...] = tuple(f.column for f in FIELDS if f.role is not Role.CHAIN)
#: top-level keys of the JSON interchange shape, in order.
ENTRY_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(f.path.split(".")[0] for f in FIELDS if f.role is Role.ENTRY and f.path)
)
#: the stored fields the content hash covers, in the order of ``docs/CHAIN.md``.
CONTENT_FIELDS: tuple[str, ...] = tuple(
    f.column
    for f in sorted((f for f in FIELDS if f.hash_position), key=lambda f: f.hash_position or 0)
)
#: the columns of every entries dataframe, in order.
FRAME_COLUMNS: tuple[str, ...] = tuple(f.frame for f in FIELDS if f.frame)
#: export field path → dataframe column (``actor.email`` → ``actor_email``).
EXPORT_PATHS: MappingProxyType[str, str] = MappingProxyType(
    {f.path: f.frame for f in FIELDS if f.path and f.frame}
)
#: the fields of an export when none are chosen (the interchange shape, flattened).
EXPORT_DEFAULTS: tuple[str, ...] = tuple(
    f.path for f in FIELDS if f.path and f.frame and f.export_default
)
#: the columns of the CLI's CSV output (``--format csv``), as export paths.
CSV_FIELDS: tuple[str, ...] = tuple(
    f.path
    for f in sorted((f for f in FIELDS if f.csv_position), key=lambda f: f.csv_position or 0)
    if f.path
)


def _qualifiers(keyword: Keyword) -> str:
    if not keyword.qualifiers:
        return ""
    return " (" + ", ".join(f"`{q}:`" for q in keyword.qualifiers) + ")"


def markdown_table() -> str:
    """The field table of ``docs/ENTRY.md`` (a test checks the file holds exactly this).

    Example:
        >>> markdown_table().splitlines()[2]
        '| `audit_id` | `audit_id` | VARCHAR(36) | no | 3 | `audit_id` (`id:`, `audit_id:`) | Unique id of the entry (UUID, lower-case). |'
    """  # noqa: E501
    lines = [
        "| column | path | SQL type | null | hashed | keyword filters (search qualifiers) "
        "| meaning |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in FIELDS:
        sql = f"VARCHAR({f.length})" if f.sql == "string" else f.sql.upper()
        keywords = ", ".join(f"`{k.name}`" + _qualifiers(k) for k in f.keywords)
        lines.append(
            f"| `{f.column}` | {f'`{f.path}`' if f.path else ''} | {sql} "
            f"| {'yes' if f.nullable else 'no'} | {f.hash_position or ''} | {keywords} "
            f"| {f.description} |"
        )
    return "\n".join(lines) + "\n"
