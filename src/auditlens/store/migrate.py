"""Bring a store made by an older auditlens to the layout this one reads (``auditlens db upgrade``).

A store records its layout version in ``auditlens_meta``. :func:`open_store` refuses a
store of another version with a :class:`~auditlens.errors.StoreVersionError` that says
what to do: an older store names ``auditlens db upgrade``, a newer one asks for a newer
auditlens. Opening never upgrades by itself, on either backend: a layout change of an
audit log is an administrator's deliberate step (after a backup, as the owner of the
tables on PostgreSQL, where the appender and reader roles may not alter them).

:func:`upgrade` applies the missing :data:`~auditlens.store.migrations.MIGRATIONS` in one
transaction that holds the append lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL the
advisory lock every append takes), recording the new version as it goes: if any step
fails, everything is rolled back and the store stays at the version it had.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> upgrade_engine(store.engine)
    UpgradeResult(from_version=2, to_version=2, applied=())
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import inspect, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from auditlens.config import resolve_url
from auditlens.errors import StoreError, StoreVersionError
from auditlens.store.engine import APPEND_LOCK_KEY, WRITE_OPTION, make_engine
from auditlens.store.migrations import MIGRATIONS
from auditlens.store.tables import SCHEMA_VERSION, meta

__all__ = [
    "UPGRADE_COMMAND",
    "UpgradeResult",
    "stored_version",
    "upgrade",
    "upgrade_engine",
    "version_problem",
]

#: what a user runs to upgrade a store in place.
UPGRADE_COMMAND = "auditlens db upgrade"


@dataclass(frozen=True)
class UpgradeResult:
    """The version a store had, the version it has now, and the migrations applied."""

    from_version: int
    to_version: int
    applied: tuple[str, ...]


def version_problem(found: str | None) -> str | None:
    """Why a store recording schema version ``found`` cannot be opened, or None if it can.

    Example:
        >>> version_problem(str(SCHEMA_VERSION)) is None
        True
        >>> print(version_problem("1"))  # doctest: +ELLIPSIS
        this store has schema version 1; this auditlens uses version 2: run `auditlens db...
    """
    if found == str(SCHEMA_VERSION):
        return None
    if found is not None and found.isdigit() and int(found) < SCHEMA_VERSION:
        return (
            f"this store has schema version {found}; this auditlens uses version "
            f"{SCHEMA_VERSION}: run `{UPGRADE_COMMAND}` (as the owner of the store's tables, "
            "after a backup) to upgrade it in place"
        )
    return (
        f"this store has schema version {found}, newer than this auditlens reads "
        f"({SCHEMA_VERSION}): it was upgraded by a newer auditlens; install that version "
        "(pip install -U auditlens) to open it"
    )


def stored_version(conn: Connection) -> int:
    """The schema version recorded in the store on ``conn``.

    Raises:
        StoreVersionError: the database holds no auditlens store, or an unreadable version.
    """
    if not inspect(conn).has_table(meta.name):
        raise StoreVersionError(
            "this database holds no auditlens store (no auditlens_meta table): nothing to "
            "upgrade; opening it creates a new store"
        )
    found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    if found is None or not str(found).isdigit():
        raise StoreVersionError(f"auditlens_meta holds no valid schema_version (found {found!r})")
    return int(found)


def upgrade(url: str | None = None) -> UpgradeResult:
    """Upgrade the store at ``url`` (default ``$AUDITLENS_URL``) to this auditlens' layout.

    See :func:`upgrade_engine`.
    """
    engine = make_engine(resolve_url(url))
    try:
        return upgrade_engine(engine)
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine) -> UpgradeResult:
    """Apply every migration the store on ``engine`` lacks, in one transaction.

    Running it on an up-to-date store changes nothing. On PostgreSQL, run it as the owner
    of the store's tables.

    Raises:
        StoreVersionError: the store is newer than this auditlens, or not a store.
        StoreError: a migration failed; nothing was changed (the message names it).
    """
    from alembic.operations import Operations  # lazy: only upgrades need Alembic
    from alembic.runtime.migration import MigrationContext  # lazy: alembic only when upgrading

    dialect = engine.dialect.name
    step = "reading the schema version"
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK_KEY})
                start = stored_version(conn)
                if start > SCHEMA_VERSION:
                    raise StoreVersionError(version_problem(str(start)) or "")
                op = Operations(MigrationContext.configure(connection=conn))
                applied: list[str] = []
                for migration in MIGRATIONS:
                    if migration.version <= start:
                        continue
                    step = f"migration {migration.version:04d} ({migration.name})"
                    migration.upgrade(op, dialect)
                    conn.execute(
                        update(meta)
                        .where(meta.c.key == "schema_version")
                        .values(value=str(migration.version))
                    )
                    applied.append(f"{migration.version:04d} {migration.name}")
    except StoreError:
        raise
    except SQLAlchemyError as exc:
        owner = " (on PostgreSQL, run it as the owner of the tables)" if dialect != "sqlite" else ""
        raise StoreError(
            f"{step} failed, nothing was changed{owner}: {getattr(exc, 'orig', exc)}"
        ) from exc
    return UpgradeResult(start, start + len(applied), tuple(applied))
