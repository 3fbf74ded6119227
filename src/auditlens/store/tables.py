"""SQLAlchemy tables of a store and the dialect-specific DDL around them.

``audit_entries`` is append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on
PostgreSQL) for any client, raw SQL included.

Text search on SQLite uses an FTS5 trigram index (``audit_fts``, external content).
It is filled by :meth:`AuditStore.append` in the same transaction as the rows, with
one ``INSERT … SELECT`` per batch — ten times cheaper than a per-row trigger — so
rows inserted by raw SQL outside auditlens are not text-searchable (they would not
be chained either). The one exception is the retention
path: a DELETE of the oldest entries of an organization passes only while a row in
``retention_authorizations`` covers them (``seq <= through_seq``), and that row is
written and removed inside the same transaction by auditlens' retention code.
"""

from __future__ import annotations

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
    "SCHEMA_VERSION",
    "alert_deliveries",
    "alert_state",
    "checkpoints",
    "entries",
    "export_runs",
    "export_schedules",
    "meta",
    "metadata",
    "org_plans",
    "postgres_ddl",
    "retention_authorizations",
    "retention_log",
    "search_text_expr",
    "signing_keys",
    "sqlite_ddl",
]

#: bump when the stored layout changes incompatibly.
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
    Column("actor_user_id", String(36)),
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


org_plans = Table(
    "org_plans",
    metadata,
    Column("organization_id", String(36), primary_key=True),
    Column("plan", String(16), nullable=False),  # free | starter | pro | enterprise
    Column("retention_days", Integer),  # enterprise: custom days, or NULL for unlimited
    Column("updated_ms", BigInteger, nullable=False),
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


def search_text_expr() -> str:
    """SQL text of the expression the PostgreSQL trigram index covers (and text search uses)."""
    return (
        "(coalesce(actor_email, '') || ' ' || coalesce(resource_name, '') || ' ' "
        "|| action || ' ' || details)"
    )


_REFUSE = "auditlens: audit_entries is append-only; UPDATE and DELETE are refused"

sqlite_ddl: list[str] = [
    f"""CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
    BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
    WHEN NOT EXISTS (SELECT 1 FROM retention_authorizations r
                     WHERE r.organization_id = OLD.organization_id AND OLD.seq <= r.through_seq)
    BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END""",
    """CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'auditlens: checkpoints are append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'auditlens: checkpoints are append-only'); END""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS audit_fts USING fts5(
        actor_email, resource_name, action, details,
        content='audit_entries', content_rowid='id', tokenize='trigram')""",
    """CREATE TRIGGER IF NOT EXISTS audit_entries_fts_delete AFTER DELETE ON audit_entries
    BEGIN INSERT INTO audit_fts(audit_fts, rowid, actor_email, resource_name, action, details)
          VALUES ('delete', OLD.id, OLD.actor_email, OLD.resource_name, OLD.action, OLD.details);
    END""",
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
    "DROP TRIGGER IF EXISTS checkpoints_no_change ON checkpoints",
    """CREATE TRIGGER checkpoints_no_change BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_change()""",
    f"""CREATE INDEX IF NOT EXISTS ix_audit_entries_search_trgm ON audit_entries
    USING gin ({search_text_expr()} gin_trgm_ops)""",
]
