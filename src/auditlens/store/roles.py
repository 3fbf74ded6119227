"""Least privilege and tenant isolation on PostgreSQL: group roles and row-level security.

:func:`create_roles` creates (idempotently) NOLOGIN group roles in the store's schema:

``<prefix>_reader``
    SELECT on the log and the tables that vouch for it (:data:`READ_TABLES`); nothing else.
``<prefix>_appender``
    SELECT and INSERT on ``audit_entries`` (appending reads the chain head), USAGE on its
    id sequence, SELECT on ``auditlens_meta`` and ``retention_log`` (the version check and
    the head of an archived prefix). No UPDATE, DELETE or TRUNCATE anywhere.
``<prefix>_admin``
    SELECT, INSERT, UPDATE and DELETE on every table of the schema, every row (migrations,
    retention, schedules, alert state). The triggers still refuse changes to the log.
``<prefix>_retention``
    What retention needs and no more: SELECT on the log and the tables that vouch for it,
    INSERT on ``audit_entries`` (the ``audit_log.retention_applied`` entry and the carried
    context), and EXECUTE on :data:`REMOVE_FUNCTION`, the one way it removes entries. No
    UPDATE or DELETE anywhere, no INSERT on ``retention_authorizations`` or
    ``retention_log``: the function (``SECURITY DEFINER``, run as the tables' owner) writes
    those itself, and only for a removal that continues the organization's archived prefix,
    names its archive (manifest and SHA-256) and last entry hash exactly, and covers only
    entries older than the organization's plan keeps (by the database's clock).

Row-level security on ``audit_entries``: the reader and appender roles see and write only
the rows of the organization named by the session setting ``auditlens.org``
(:data:`ORG_SETTING`); a session of those roles without the setting sees nothing and may
append nothing (fail closed). :func:`scoped_url` puts the setting in the connection URL
(libpq ``options``), so both the SQLAlchemy engine and the ADBC reader of a store opened on
it carry it: ``store.scoped(org_id)`` and ``$AUDITLENS_ORG`` use it.

What this does *not* do: the setting is a session setting, so code that runs raw SQL on a
scoped connection *can* change it (``SET auditlens.org``). It isolates tenants for everything
that goes through auditlens, and for raw SQL that does not touch the setting; it is not a
boundary against a hostile client holding reader or appender credentials. Superusers,
roles with BYPASSRLS and the table owner bypass row-level security (the owner: no FORCE,
so the store owner keeps working unchanged). See ``docs/SECURITY.md``.

SQLite has no roles: file permissions are the control there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from auditlens.errors import ConfigError
from auditlens.plans import RETENTION_DAYS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from auditlens.store.store import Store

__all__ = [
    "APPEND_READ_TABLES",
    "ORG_SETTING",
    "READ_TABLES",
    "REMOVE_FUNCTION",
    "StoreRoles",
    "create_roles",
    "retention_role_name",
    "role_names",
    "scoped_url",
]

#: the session setting row-level security compares ``organization_id`` with.
ORG_SETTING = "auditlens.org"

#: what the reader role may SELECT.
READ_TABLES = (
    "audit_entries",
    "auditlens_meta",
    "checkpoints",
    "signing_keys",
    "retention_log",
    "org_plans",
)

#: what the appender role may SELECT besides ``audit_entries``.
APPEND_READ_TABLES = ("auditlens_meta", "retention_log")

#: the archive-first removal the retention role may call (``SECURITY DEFINER``).
REMOVE_FUNCTION = "auditlens_remove_archived"

# role prefixes and schema names go into DDL (which takes no bound parameters): only
# these shapes are accepted, so nothing a user types can change the statement
_PREFIX_RE = re.compile(r"[a-z_][a-z0-9_]{0,40}")
_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# an organization id travels in libpq options: no spaces, backslashes or quotes
_ORG_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_ORG_OPTION_RE = re.compile(r"\s*-c\s*" + re.escape(ORG_SETTING) + r"=\S*")

_TENANT_CHECK = f"organization_id = current_setting('{ORG_SETTING}', true)"


@dataclass(frozen=True)
class StoreRoles:
    """The group roles :func:`create_roles` made, and the schema they were granted on."""

    reader: str
    appender: str
    admin: str
    schema: str
    retention: str = ""


def role_names(prefix: str = "auditlens") -> tuple[str, str, str]:
    """``(reader, appender, admin)`` role names for ``prefix``.

    Raises:
        ConfigError: ``prefix`` is not lower-case letters, digits and ``_`` (≤ 41 chars).

    Example:
        >>> role_names("acme")
        ('acme_reader', 'acme_appender', 'acme_admin')
    """
    if not _PREFIX_RE.fullmatch(prefix):
        raise ConfigError(
            f"invalid role prefix {prefix!r}: use lower-case letters, digits and _ "
            "(starting with a letter or _, at most 41 characters)"
        )
    return f"{prefix}_reader", f"{prefix}_appender", f"{prefix}_admin"


def retention_role_name(prefix: str = "auditlens") -> str:
    """The retention role's name for ``prefix`` (checked as :func:`role_names` checks it).

    Example:
        >>> retention_role_name("acme")
        'acme_retention'
    """
    role_names(prefix)
    return f"{prefix}_retention"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def scoped_url(url: str | URL, organization_id: str) -> str:
    """``url`` with the session setting that scopes it to one organization (PostgreSQL only).

    The setting goes into the libpq ``options`` query parameter (kept alongside any
    ``search_path`` already there; an earlier organization is replaced).

    Raises:
        ConfigError: not a PostgreSQL URL, or ``organization_id`` has characters other than
            letters, digits and ``_.:-``.

    Example:
        >>> scoped_url("postgresql+psycopg://app@db/audit", "acme")
        'postgresql+psycopg://app@db/audit?options=-c+auditlens.org%3Dacme'
    """
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            "organization scoping needs PostgreSQL (row-level security); SQLite has no "
            "roles: use one file per organization and file permissions"
        )
    if not _ORG_RE.fullmatch(organization_id):
        raise ConfigError(
            f"invalid organization id {organization_id!r} for scoping: use letters, digits "
            "and _ . : - (at most 64 characters)"
        )
    current = parsed.query.get("options", "")
    options = current if isinstance(current, str) else " ".join(current)
    options = _ORG_OPTION_RE.sub("", options).strip()
    options = f"{options} -c {ORG_SETTING}={organization_id}".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def create_roles(store: Store, prefix: str = "auditlens") -> StoreRoles:
    """Create the reader/appender/admin group roles and row-level security for ``store``.

    Idempotent: running it again (e.g. after an upgrade added tables) brings the grants and
    policies back to what is described in this module. Must run as the tables' owner (or a
    superuser), in the store's schema (the first of its ``search_path``).

    Raises:
        ConfigError: the store is on SQLite, or ``prefix`` / the schema name is not plain.
    """
    if store.dialect != "postgresql":
        raise ConfigError(
            "SQLite has no roles: file permissions are the control (a read-only copy or "
            "a file readable only by the reading account)"
        )
    reader, appender, admin = role_names(prefix)
    retention = retention_role_name(prefix)
    with store.engine.begin() as conn:
        schema = str(conn.execute(text("SELECT current_schema()")).scalar())
        if not _SCHEMA_RE.fullmatch(schema):
            raise ConfigError(f"the store's schema name {schema!r} is not a plain identifier")
        _ensure_roles(conn, (reader, appender, admin, retention))
        _grant(conn, schema, reader, appender, admin)
        _grant_retention(conn, schema, retention, admin)
        _policies(conn, schema, prefix, reader, appender, admin, retention)
    return StoreRoles(reader, appender, admin, schema, retention)


def _ensure_roles(conn: Connection, names: tuple[str, ...]) -> None:
    found = set(
        conn.execute(
            text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"),
            {"names": list(names)},
        ).scalars()
    )
    for name in names:
        if name not in found:
            conn.exec_driver_sql(f"CREATE ROLE {_quote(name)} NOLOGIN")


def _grant(conn: Connection, schema: str, reader: str, appender: str, admin: str) -> None:
    s = _quote(schema)
    r, a, adm = _quote(reader), _quote(appender), _quote(admin)
    everyone = f"{r}, {a}, {adm}"
    entries = f"{s}.audit_entries"
    seq = conn.execute(
        text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": f"{s}.audit_entries"}
    ).scalar()
    if seq is None:
        raise ConfigError(f"no id sequence on {schema}.audit_entries: is this an auditlens store?")
    for stmt in (
        # start from nothing, so a rerun also takes back what was granted by hand since
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {everyone}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {everyone}",
        f"GRANT USAGE ON SCHEMA {s} TO {everyone}",
        f"GRANT SELECT ON {', '.join(f'{s}.{t}' for t in READ_TABLES)} TO {r}",
        f"GRANT SELECT, INSERT ON {entries} TO {a}",
        f"GRANT SELECT ON {', '.join(f'{s}.{t}' for t in APPEND_READ_TABLES)} TO {a}",
        f"GRANT USAGE ON SEQUENCE {seq} TO {a}",  # quoted by PostgreSQL itself
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {adm}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {adm}",
    ):
        conn.exec_driver_sql(stmt)


def _grant_retention(conn: Connection, schema: str, retention: str, admin: str) -> None:
    """The retention role's grants and the archive-first removal function it may call."""
    s, ret = _quote(schema), _quote(retention)
    seq = conn.execute(
        text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": f"{s}.audit_entries"}
    ).scalar()
    func = f"{s}.{REMOVE_FUNCTION}(text, bigint, bigint, text, bigint, text, text, bigint)"
    for stmt in (
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {ret}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {ret}",
        f"GRANT USAGE ON SCHEMA {s} TO {ret}",
        f"GRANT SELECT ON {', '.join(f'{s}.{t}' for t in READ_TABLES)} TO {ret}",
        f"GRANT SELECT ON {s}.retention_authorizations TO {ret}",
        f"GRANT INSERT ON {s}.audit_entries TO {ret}",
        f"GRANT USAGE ON SEQUENCE {seq} TO {ret}",
        _remove_function_sql(s).replace("%", "%%"),  # the driver reads % as a placeholder
        f"REVOKE ALL ON FUNCTION {func} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {func} TO {ret}, {_quote(admin)}",
    ):
        conn.exec_driver_sql(stmt)


def _remove_function_sql(schema: str) -> str:
    """``REMOVE_FUNCTION``: remove one archived range, record it, refuse anything else.

    Runs as its owner (the tables' owner), with a fixed ``search_path``: the caller's
    privileges do not matter inside, its arguments are checked against the store.
    """
    days = " ".join(
        f"WHEN '{plan}' THEN {d}" for plan, d in RETENTION_DAYS.items() if d is not None
    )
    refuse = "USING ERRCODE = 'insufficient_privilege'"
    return f"""CREATE OR REPLACE FUNCTION {schema}.{REMOVE_FUNCTION}(
    p_org text, p_first bigint, p_through bigint, p_last_entry_hash text, p_rows bigint,
    p_manifest text, p_manifest_sha256 text, p_applied_ms bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
    DECLARE
      v_plan text; v_days bigint; v_next bigint; v_count bigint; v_newest bigint;
      v_last text; v_removed bigint;
    BEGIN
      SELECT plan, retention_days INTO v_plan, v_days FROM org_plans
        WHERE organization_id = p_org ORDER BY id DESC LIMIT 1;
      IF v_plan IS NULL THEN
        RAISE EXCEPTION 'auditlens: organization % has no plan: nothing may be removed',
          p_org {refuse};
      END IF;
      IF v_plan <> 'enterprise' THEN
        v_days := CASE v_plan {days} ELSE NULL END;
      END IF;
      IF v_days IS NULL THEN
        RAISE EXCEPTION 'auditlens: the % plan of organization % keeps every entry',
          v_plan, p_org {refuse};
      END IF;
      SELECT coalesce(max(through_seq), 0) + 1 INTO v_next FROM retention_log
        WHERE organization_id = p_org;
      IF p_first IS DISTINCT FROM v_next OR p_through IS NULL OR p_through < p_first THEN
        RAISE EXCEPTION 'auditlens: organization %: a removal must continue the archived '
          'prefix at seq % (asked: % to %)', p_org, v_next, p_first, p_through {refuse};
      END IF;
      IF coalesce(p_manifest, '') = '' OR coalesce(p_manifest_sha256, '') !~ '^[0-9a-f]{{64}}$'
      THEN
        RAISE EXCEPTION 'auditlens: organization %: a removal needs its archive manifest '
          'and the manifest''s SHA-256', p_org {refuse};
      END IF;
      SELECT count(*), max(ts) INTO v_count, v_newest FROM audit_entries
        WHERE organization_id = p_org AND seq BETWEEN p_first AND p_through;
      SELECT entry_hash INTO v_last FROM audit_entries
        WHERE organization_id = p_org AND seq = p_through;
      IF v_count <> p_through - p_first + 1 OR v_count IS DISTINCT FROM p_rows
         OR v_last IS DISTINCT FROM p_last_entry_hash THEN
        RAISE EXCEPTION 'auditlens: organization %: seq % to % do not match the archive '
          '(% rows, last entry hash %)', p_org, p_first, p_through, p_rows,
          p_last_entry_hash {refuse};
      END IF;
      IF v_newest >= (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                     - v_days * 86400000 THEN
        RAISE EXCEPTION 'auditlens: organization %: seq % to % include entries newer than '
          'the % plan keeps (% days)', p_org, p_first, p_through, v_plan, v_days {refuse};
      END IF;
      INSERT INTO retention_authorizations (organization_id, through_seq, reason)
        VALUES (p_org, p_through, 'retention ' || v_plan || ' ' || v_days || 'd');
      DELETE FROM audit_entries WHERE organization_id = p_org AND seq <= p_through;
      GET DIAGNOSTICS v_removed = ROW_COUNT;
      DELETE FROM retention_authorizations WHERE organization_id = p_org;
      INSERT INTO retention_log (organization_id, first_seq, through_seq, last_entry_hash,
          rows, manifest, manifest_sha256, applied_ms)
        VALUES (p_org, p_first, p_through, p_last_entry_hash, p_rows, p_manifest,
          p_manifest_sha256, p_applied_ms);
      RETURN v_removed;
    END $$"""


def _policies(
    conn: Connection,
    schema: str,
    prefix: str,
    reader: str,
    appender: str,
    admin: str,
    retention: str,
) -> None:
    entries = f"{_quote(schema)}.audit_entries"
    tenant, every = _quote(f"{prefix}_tenant"), _quote(f"{prefix}_admin_all")
    for stmt in (
        f"ALTER TABLE {entries} ENABLE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {tenant} ON {entries}",
        f"CREATE POLICY {tenant} ON {entries} FOR ALL TO {_quote(reader)}, {_quote(appender)} "
        f"USING ({_TENANT_CHECK}) WITH CHECK ({_TENANT_CHECK})",
        f"DROP POLICY IF EXISTS {every} ON {entries}",
        # every organization's rows; what each may do with them is in its grants
        f"CREATE POLICY {every} ON {entries} FOR ALL TO {_quote(admin)}, {_quote(retention)} "
        "USING (true) WITH CHECK (true)",
    ):
        conn.exec_driver_sql(stmt)
