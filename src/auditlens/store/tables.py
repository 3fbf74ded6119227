"""The storage layer's own tables and the dialect-specific DDL around them.

Reached from outside ``auditlens.store`` through :mod:`auditlens.store.backend` only.
Here: ``audit_entries``, ``auditlens_meta``, the archived-prefix boundary
``retention_log`` and the one authorized removal ``retention_authorizations``, all on the
shared :data:`metadata`. Features declare their own tables on the same :data:`metadata`
(``checkpoints``/``signing_keys`` in :mod:`auditlens.chain.checkpoint_tables`,
``org_plans`` in :mod:`auditlens.retention_tables`, ``export_schedules``/``export_runs``
in :mod:`auditlens.export.schedule_tables`, ``alert_state``/``alert_deliveries`` in
:mod:`auditlens.alerts.tables`); the store creates them with its schema
(:data:`auditlens.store.backend.FEATURE_TABLES`), and the triggers below refer to the
append-only ones by name.

``audit_entries`` is append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on
PostgreSQL) for any client, raw SQL included. The side tables that vouch for the log —
``checkpoints``, ``signing_keys``, ``retention_log`` and ``org_plans`` (one row per plan
change; the newest row is the current plan) — are append-only the same way
(:data:`APPEND_ONLY_TABLES`).

Text search matches what a user sees, case-insensitively, one field at a time. A
*search document* of an entry is its actor email, resource name, action and details,
where details are rendered as their keys and values (strings unescaped, not as JSON
text) separated by :data:`SEARCH_FIELD_SEP`, which no search can contain (it folds to
a space), so a phrase never matches across two fields.

SQLite: an FTS5 trigram table (``audit_search``, storing its content) holds each
entry's search document folded by Python (:func:`search_fold`, Unicode-aware: SQLite's
own ``lower``/``LIKE`` fold ASCII only). Appends do not fill it: the first read that needs
it (a text search, a non-ASCII actor) first indexes every entry above its highest rowid,
with one ``INSERT … SELECT`` (:data:`SEARCH_FILL_SQL`) through the
``auditlens_fold``/``auditlens_details_text`` functions that :mod:`auditlens.store.engine`
registers on every SQLite connection — far cheaper than a per-row trigger, and outside
the append transactions (bulk ingest pays nothing for it). Rows inserted by raw SQL
outside auditlens are indexed the same way (they are not chained, though). Opening a
store made before this table existed creates and fills it.
PostgreSQL: a ``pg_trgm`` GIN index over :func:`search_text_expr` (``lower``/``ILIKE``
follow the database collation: a UTF-8 locale folds non-ASCII, ``C`` ASCII only).

Append-only has one exception, the retention path: a DELETE of the oldest entries of
an organization passes only while a row in ``retention_authorizations`` covers them
(``seq <= through_seq``), and that row is
written and removed inside the same transaction by auditlens' retention code.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.types import TypeEngine

from auditlens.fields import FIELDS, Field

__all__ = [
    "APPEND_ONLY_TABLES",
    "ID_TYPE",
    "SCHEMA_VERSION",
    "SEARCH_FIELD_SEP",
    "SEARCH_FILL_SQL",
    "SEARCH_INDEX_PROBE",
    "details_search_text",
    "entries",
    "meta",
    "metadata",
    "postgres_ddl",
    "retention_authorizations",
    "retention_log",
    "search_fold",
    "search_text_expr",
    "sqlite_ddl",
]

#: the version of the stored layout this code reads and writes; an older store is brought
#: to it by :func:`auditlens.store.migrate.upgrade` (``auditlens db upgrade``): bump it
#: together with a new migration in :mod:`auditlens.store.migrations`.
SCHEMA_VERSION = 2

metadata = MetaData()

_BigId = BigInteger().with_variant(Integer(), "sqlite")
#: the type of every surrogate ``id`` column (BIGINT; INTEGER on SQLite, for AUTOINCREMENT).
ID_TYPE = _BigId


def _sql_type(field: Field) -> TypeEngine[Any]:
    if field.sql == "string":
        return String(field.length)
    return Text() if field.sql == "text" else BigInteger()


#: the entries; their columns come from :data:`auditlens.fields.FIELDS`.
entries = Table(
    "audit_entries",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    *(Column(f.column, _sql_type(f), nullable=f.nullable, unique=f.unique) for f in FIELDS),
    UniqueConstraint("organization_id", "seq", name="uq_audit_entries_org_seq"),
    # ids are never reused (SQLite would hand out the ids of deleted newest rows again,
    # after retention): stream()/tail/alerts watch follow ``id > last seen``
    sqlite_autoincrement=True,
)

Index("ix_audit_entries_ts", entries.c.ts)
Index("ix_audit_entries_org_ts", entries.c.organization_id, entries.c.ts)
Index("ix_audit_entries_action_ts", entries.c.action, entries.c.ts)
Index("ix_audit_entries_email_ts", func.lower(entries.c.actor_email), entries.c.ts)
Index("ix_audit_entries_actor_user_ts", entries.c.actor_user_id, entries.c.ts)
Index("ix_audit_entries_resource", entries.c.resource_id, entries.c.ts)
Index("ix_audit_entries_ip", entries.c.ip_key)

meta = Table(
    "auditlens_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

retention_authorizations = Table(
    "retention_authorizations",
    metadata,
    Column("organization_id", String(36), primary_key=True),
    Column("through_seq", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
)


retention_log = Table(
    "retention_log",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("organization_id", String(36), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("through_seq", BigInteger, nullable=False),
    Column("last_entry_hash", String(64), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("manifest", Text, nullable=False),  # path of the archive manifest
    Column("manifest_sha256", String(64), nullable=False),
    Column("applied_ms", BigInteger, nullable=False),
)


#: separates the fields of a search document; searches never contain it (it folds to a space).
SEARCH_FIELD_SEP = "\x1f"


def search_fold(value: str | None) -> str | None:
    """``value`` as text search compares it: lower-cased (Unicode) and without field separators.

    Example:
        >>> search_fold("ÖDÖN@Example.com")
        'ödön@example.com'
    """
    if value is None:
        return None
    return value.lower().replace(SEARCH_FIELD_SEP, " ")


def _search_parts(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            out.append(str(key))
            _search_parts(item, out)
    elif isinstance(value, list):
        for item in value:
            _search_parts(item, out)
    elif isinstance(value, str):
        out.append(value)
    else:  # numbers, true, false, null: as JSON writes them
        out.append(orjson.dumps(value).decode())


def details_search_text(details: str | None) -> str:
    r"""The folded search text of stored details: every key and value, as a user reads them.

    Strings are unescaped (``C:\\Users`` is searched as ``C:\Users``); keys and values are
    separate fields (joined by :data:`SEARCH_FIELD_SEP`). Text that is not JSON is
    searched as it is.

    Example:
        >>> details_search_text('{"Path":"C:\\\\Users","n":[1,true]}').split(SEARCH_FIELD_SEP)
        ['path', 'c:\\users', 'n', '1', 'true']
    """
    if not details:
        return ""
    try:
        parsed = orjson.loads(details)
    except orjson.JSONDecodeError:
        return search_fold(details) or ""
    parts: list[str] = []
    _search_parts(parsed, parts)
    return SEARCH_FIELD_SEP.join(search_fold(p) or "" for p in parts)


#: PostgreSQL twin of :func:`details_search_text` (keys and scalar values of the JSON,
#: separated by chr(31)); details holding an escaped NUL, which jsonb refuses, are
#: searched as their JSON text instead of failing.
_PG_DETAILS_TEXT = """CREATE OR REPLACE FUNCTION auditlens_details_text(details text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN strpos(details, '\\u0000') > 0 THEN details ELSE (
      SELECT coalesce(string_agg(replace(coalesce(item #>> '{}', 'null'), chr(31), ' '),
                                 chr(31)), '')
      FROM (
        SELECT jsonb_path_query(details::jsonb,
                                'strict $.** ? (@.type() == "object").keyvalue().key') AS item
        UNION ALL
        SELECT jsonb_path_query(details::jsonb,
                                'strict $.** ? (@.type() != "object" && @.type() != "array")')
      ) AS parts) END
    $$"""


def search_text_expr() -> str:
    """SQL text of the PostgreSQL search document (the trigram index covers it; search uses it).

    Fields are joined by ``chr(31)`` (:data:`SEARCH_FIELD_SEP`), so a phrase cannot match
    across two of them.
    """
    return (
        "(coalesce(actor_email, '') || chr(31) || coalesce(resource_name, '') || chr(31) "
        "|| action || chr(31) || auditlens_details_text(details))"
    )


_REFUSE = "auditlens: audit_entries is append-only; UPDATE and DELETE are refused"

#: per dialect: a query whose scalar is true when this layout's text-search index exists
#: (a store made before it gets it, and its entries indexed, when opened).
SEARCH_INDEX_PROBE = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE name = 'audit_search'",
    "postgresql": "SELECT to_regclass('ix_audit_entries_text_trgm') IS NOT NULL",
}

#: SQLite: index the search documents of the entries with ``id >= :first`` (one batch).
SEARCH_FILL_SQL = (
    "INSERT INTO audit_search(rowid, actor_email, resource_name, action, details) "
    "SELECT id, auditlens_fold(actor_email), auditlens_fold(resource_name), "
    "auditlens_fold(action), auditlens_details_text(details) "
    "FROM audit_entries WHERE id >= :first"
)

#: side tables whose rows are never updated or deleted (triggers refuse it, raw SQL included).
APPEND_ONLY_TABLES = ("checkpoints", "signing_keys", "retention_log", "org_plans")

sqlite_ddl: list[str] = [
    f"""CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
    BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
    WHEN NOT EXISTS (SELECT 1 FROM retention_authorizations r
                     WHERE r.organization_id = OLD.organization_id AND OLD.seq <= r.through_seq)
    BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END""",
    *(
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}
    BEGIN SELECT RAISE(ABORT, 'auditlens: {table} is append-only; {op} is refused'); END"""
        for table in APPEND_ONLY_TABLES
        for op in ("UPDATE", "DELETE")
    ),
    # text search (see the module docstring); audit_fts was the pre-release external-content
    # index of raw (unfolded, JSON-escaped) text: dropped, and audit_search refilled below
    "DROP TRIGGER IF EXISTS audit_entries_fts_delete",
    "DROP TABLE IF EXISTS audit_fts",
    """CREATE VIRTUAL TABLE IF NOT EXISTS audit_search USING fts5(
        actor_email, resource_name, action, details, tokenize='trigram')""",
    """CREATE TRIGGER IF NOT EXISTS audit_entries_search_delete AFTER DELETE ON audit_entries
    BEGIN DELETE FROM audit_search WHERE rowid = OLD.id; END""",
    SEARCH_FILL_SQL.replace(
        ":first",
        "(SELECT coalesce((SELECT rowid FROM audit_search ORDER BY rowid DESC LIMIT 1), 0) + 1)",
    ),
]

postgres_ddl: list[str] = [
    f"""CREATE OR REPLACE FUNCTION auditlens_refuse_mutation() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM retention_authorizations r
                   WHERE r.organization_id = OLD.organization_id
                     AND OLD.seq <= r.through_seq) THEN
          RETURN OLD;
        END IF;
      END IF;
      RAISE EXCEPTION '{_REFUSE} (%)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    "DROP TRIGGER IF EXISTS audit_entries_no_update ON audit_entries",
    """CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_mutation()""",
    "DROP TRIGGER IF EXISTS audit_entries_no_delete ON audit_entries",
    """CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_mutation()""",
    "DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries",
    """CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION auditlens_refuse_mutation()""",
    """CREATE OR REPLACE FUNCTION auditlens_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'auditlens: % is append-only (%)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$""",
    *(
        stmt
        for table in APPEND_ONLY_TABLES
        for stmt in (
            f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}",
            f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_change()""",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION auditlens_refuse_change()""",
        )
    ),
    _PG_DETAILS_TEXT,
    # the pre-release index covered raw JSON text with spaces between fields
    "DROP INDEX IF EXISTS ix_audit_entries_search_trgm",
    f"""CREATE INDEX IF NOT EXISTS ix_audit_entries_text_trgm ON audit_entries
    USING gin ({search_text_expr()} gin_trgm_ops)""",
]
