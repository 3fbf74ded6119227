"""SQLAlchemy engines tuned for an audit store.

SQLite: WAL journal (readers never block the writer), ``busy_timeout`` so that
concurrent writers queue instead of failing, and transactions opened by auditlens
itself so that an append can take the write lock up front (``BEGIN IMMEDIATE``)
before it reads the chain head. PostgreSQL: appends to one organization serialize on
that organization's advisory lock (:func:`org_lock_key`) and hold the store-wide lock
(:data:`APPEND_LOCK_KEY`) shared, so appends to different organizations run in
parallel while every other write (retention, checkpoints, plans) takes the store-wide
lock exclusively; each append also publishes an *in-flight mark* (:data:`INFLIGHT_MARK_BASE`)
that readers following ``id > last seen`` use to stay below ids that may still commit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext, make_url

from auditlens.errors import ConfigError, StoreError
from auditlens.store.roles import scoped_url
from auditlens.store.tables import details_search_text, search_fold

__all__ = [
    "APPEND_LOCK_KEY",
    "INFLIGHT_MARK_BASE",
    "ORG_ENV",
    "ORG_LOCK_CLASS",
    "WRITE_OPTION",
    "libpq_uri",
    "make_engine",
    "org_lock_key",
    "sqlite_path",
]

#: execution option that makes a SQLite transaction start with ``BEGIN IMMEDIATE``.
WRITE_OPTION = "auditlens_write"

#: environment variable scoping every store opened to one organization (PostgreSQL
#: row-level security, see :mod:`auditlens.store.roles`).
ORG_ENV = "AUDITLENS_ORG"

#: PostgreSQL store-wide advisory lock ("auditlns" as an int64): appends hold it shared,
#: every other write transaction exclusively (so they never overlap an append).
APPEND_LOCK_KEY = int.from_bytes(b"auditlns", "big") & 0x7FFF_FFFF_FFFF_FFFF

#: first key of the two-key advisory locks that serialize appends per organization ("Auor").
ORG_LOCK_CLASS = int.from_bytes(b"Auor", "big")

#: in-flight marks: an append transaction holds ``INFLIGHT_MARK_BASE + n`` (shared, one-key
#: form), where ``n`` is an id drawn from the entries' id sequence before it inserts, so
#: every id it inserts is above ``n`` ("AU" in the top bytes; ids stay below 2**48).
INFLIGHT_MARK_BASE = int.from_bytes(b"AU", "big") << 48


def org_lock_key(organization_id: str) -> int:
    """Second key (int32) of an organization's append lock: the first 4 bytes of its SHA-256.

    Two organizations with the same key merely take turns; nothing else depends on it.

    Example:
        >>> org_lock_key("2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11") == org_lock_key(
        ...     "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11")
        True
    """
    digest = hashlib.sha256(organization_id.encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def sqlite_path(url: URL) -> str | None:
    """File path of a SQLite URL, or None for an in-memory database."""
    db = url.database
    if not db or db == ":memory:" or db.startswith("file::memory:"):
        return None
    return db


def libpq_uri(url: URL) -> str:
    """``url`` as a libpq connection URI (for ADBC): query values percent-encoded.

    SQLAlchemy writes a space in a query value as ``+``, which libpq reads literally, so
    ``options=-csearch_path=s -cauditlens.org=a`` would reach the server as one option.

    Example:
        >>> libpq_uri(make_url("postgresql+psycopg://u@h/d?options=-ca%3D1+-cb%3D2"))
        'postgresql://u@h/d?options=-ca%3D1%20-cb%3D2'
    """
    base = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    pairs = [
        (key, value)
        for key, values in url.query.items()
        for value in ((values,) if isinstance(values, str) else values)
    ]
    return f"{base}?{urlencode(pairs, quote_via=quote)}" if pairs else base


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with auditlens' connection settings applied.

    Example:
        >>> make_engine("sqlite://").dialect.name
        'sqlite'
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"malformed store URL: {exc}") from None
    org = os.environ.get(ORG_ENV) or None
    if org is not None:  # row-level security scope (auditlens.store.roles); SQLite: ConfigError
        parsed = make_url(scoped_url(parsed, org))
    if parsed.get_backend_name() == "sqlite":
        return _connect_errors_as_store_errors(_sqlite_engine(parsed))
    if parsed.get_backend_name() == "postgresql":
        try:
            import psycopg  # noqa: F401  # lazy: psycopg only for PostgreSQL stores
        except ImportError:
            raise ConfigError(
                "PostgreSQL needs the psycopg driver: pip install 'auditlens[postgres]'"
            ) from None
        return _connect_errors_as_store_errors(create_engine(parsed, pool_pre_ping=True))
    raise ConfigError(
        f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
    )


def _connect_errors_as_store_errors(engine: Engine) -> Engine:
    """Make a failure to connect raise :class:`StoreError` naming the store (password hidden).

    An unreachable or refusing server, a file that is not a SQLite database, a
    folder that cannot be written: one line saying which store and why, instead of a
    driver traceback. Errors on an open connection keep their SQLAlchemy type.
    """
    where = engine.url.render_as_string(hide_password=True)

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> None:
        reason = " ".join(str(ctx.original_exception).split())
        if ctx.connection is None or "not a database" in reason:
            raise StoreError(f"cannot open the store {where}: {reason}")

    return engine


def _sqlite_engine(url: URL) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise ConfigError(
                f"cannot create the SQLite store {path!r}: folder {str(parent)!r} does not exist"
            )
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # auditlens issues BEGIN itself
        # Unicode-aware folding for the text-search index (SQLite's lower() is ASCII-only)
        dbapi_conn.create_function("auditlens_fold", 1, search_fold, deterministic=True)
        dbapi_conn.create_function(
            "auditlens_details_text", 1, details_search_text, deterministic=True
        )
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 60000")
        if path is not None:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA cache_size = -65536")  # 64 MiB: index upkeep on large stores
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and dbapi.in_transaction:
            return  # an in-memory database shares one connection between nested uses
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
