"""SQLAlchemy tables of a store and the dialect-specific DDL around them.

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
own ``lower``/``LIKE`` fold ASCII only). It is filled by :meth:`AuditStore.append` in
the same transaction as the rows, with one ``INSERT … SELECT`` per batch through the
``auditlens_fold``/``auditlens_details_text`` functions that :mod:`auditlens.store.engine`
registers on every SQLite connection — far cheaper than a per-row trigger — so rows
inserted by raw SQL outside auditlens are not text-searchable (they would not be chained
either). Opening a store made before this table existed creates and fills it.
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

__all__ = [
    "APPEND_ONLY_TABLES",
    "SCHEMA_VERSION",
    "SEARCH_FIELD_SEP",
    "SEARCH_FILL_SQL",
    "SEARCH_INDEX_PROBE",
    "alert_deliveries",
    "alert_state",
    "checkpoints",
    "details_search_text",
    "entries",
    "export_runs",
    "export_schedules",
    "meta",
    "metadata",
    "org_plans",
    "postgres_ddl",
    "retention_authorizations",
    "retention_log",
    "search_fold",
    "search_text_expr",
    "signing_keys",
    "sqlite_ddl",
]

#: bump when the stored layout changes incompatibly. (Still 1: nothing has been released;
#: stores made before org_plans became a history and the side tables got their triggers
#: must be recreated.)
SCHEMA_VERSION = 1

metadata = MetaData()

_BigId = BigInteger().with_variant(Integer(), "sqlite")

entries = Table(
    "audit_entries",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("organization_id", String(36), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("audit_id", String(36), nullable=False, unique=True),
    Column("ts", BigInteger, nullable=False),
    Column("actor_user_id", String(256)),
    Column("actor_email", Text),
    Column("actor_type", String(32), nullable=False),
    Column("action", String(128), nullable=False),
    Column("category", String(64), nullable=False),
    Column("resource_type", String(128)),
    Column("resource_id", Text),
    Column("resource_name", Text),
    Column("application_id", String(36)),
    Column("ip_address", String(64)),
    Column("ip_key", String(32)),
    Column("user_agent", Text),
    Column("details", Text, nullable=False),
    Column("result", String(16), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
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


checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("organization_id", String(36), nullable=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
)
Index("ix_checkpoints_org_size", checkpoints.c.organization_id, checkpoints.c.tree_size)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("vkey", String(200), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),  # log | witness
    Column("first_seen_ms", BigInteger, nullable=False),
)


# one row per plan change (append-only); an organization's current plan is its newest row
org_plans = Table(
    "org_plans",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("organization_id", String(36), nullable=False),
    Column("plan", String(16), nullable=False),  # free | starter | pro | enterprise
    Column("retention_days", Integer),  # enterprise: custom days, or NULL for unlimited
    Column("changed_ms", BigInteger, nullable=False),
)
Index("ix_org_plans_org_id", org_plans.c.organization_id, org_plans.c.id)

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

export_schedules = Table(
    "export_schedules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("organization_id", String(36), nullable=False),
    Column("every", String(16), nullable=False),
    Column("at", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("query", Text),
    Column("format", String(16), nullable=False),
    Column("fields", Text),
    Column("destination", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("report", Text),  # a framework (soc2, iso27001, gdpr or a YAML path): deliver its PDF
)

export_runs = Table(
    "export_runs",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("schedule", String(200), nullable=False),
    Column("period_start_ms", BigInteger, nullable=False),
    Column("period_end_ms", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # running | succeeded | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger),
    Column("finished_ms", BigInteger),
    Column("rows", BigInteger),
    Column("bytes", BigInteger),
    Column("sha256", String(64)),
    Column("destination", Text, nullable=False),
    Column("location", Text),
    Column("error", Text),
    UniqueConstraint("schedule", "period_start_ms", name="uq_export_run_period"),
)

alert_state = Table(
    "alert_state",
    metadata,
    Column("rule", String(200), primary_key=True),
    Column("group_key", String(300), primary_key=True),
    Column("last_alert_id", String(32), nullable=False),
    Column("last_window_end_ms", BigInteger, nullable=False),
    Column("fired_at_ms", BigInteger, nullable=False),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("alert_id", String(32), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("sent_ms", BigInteger),
    UniqueConstraint("alert_id", "channel", "target", name="uq_alert_delivery"),
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
