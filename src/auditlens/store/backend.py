"""The public storage layer: what every module outside ``auditlens.store`` programs against.

Features (alerts, exports and schedules, retention, checkpoints, reports, organization
context), proofs and faces reach the database through this module and the public methods
of :class:`~auditlens.store.AuditStore` only — never through an underscore name of the
store, and never by importing ``auditlens.store.tables`` (``tests/store/test_layering.py``
enforces both).

What the storage layer owns, and where it is:

Transactions
    :meth:`AuditStore.transaction` — every write: ``BEGIN IMMEDIATE`` on SQLite, the
    store-wide append lock on PostgreSQL; nested in another of the same thread it is a
    savepoint (both commit together or not at all). Reads: :meth:`AuditStore.connect`.
Chained inserts
    :func:`insert_chained` — the one way rows enter ``audit_entries`` (append, bulk ingest
    and the restore of an archive all go through it; :func:`insert_chained_values` is the
    same insert for rows already laid out as tuples, as a bulk import builds them).
Reads into Arrow
    :meth:`AuditStore.select` (a SELECT of any columns for a filter or search, in time
    order), :meth:`AuditStore.read_batches` (a SELECT of :data:`FRAME_COLUMNS` → Arrow
    batches of :data:`~auditlens.frames.FRAME_SCHEMA`), :class:`ArrowReader` for other
    schemas.
Cursors and dialect quirks
    ``page``/``stream`` cursors, the SQLite text-search index, ADBC in a helper process,
    the PostgreSQL advisory lock: inside the store, behind these names.
Caches
    :meth:`AuditStore.cache` / :meth:`AuditStore.invalidate` (:class:`Caches`): named
    per-store caches, e.g. the Merkle trees of :mod:`auditlens.chain.checkpoints`.
Tables
    The storage layer's own tables (:data:`entries`, :data:`meta`, :data:`retention_log`,
    :data:`retention_authorizations`) and the shared :data:`metadata` on which features
    declare theirs, in their own modules (:data:`FEATURE_TABLES`). The store creates every
    table when it creates its schema: it imports the modules named in
    :data:`FEATURE_TABLES` then, by name, so the storage layer has no import of a feature.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> with store.transaction() as conn:  # a feature's write, in one transaction
    ...     _ = conn.execute(retention_log.select())
    >>> stmt = store.select(ROW_COLUMNS, "action:auth.*", order="asc")
    >>> with store.connect() as conn:
    ...     conn.execute(stmt).all()
    []
    >>> sorted(FEATURE_TABLES)[:2]
    ['auditlens.alerts.tables', 'auditlens.chain.checkpoint_tables']
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable, SchemaItem

from auditlens.errors import StoreError
from auditlens.frames import FRAME_SCHEMA
from auditlens.schema import ROW_FIELDS
from auditlens.store.caches import Caches
from auditlens.store.inserts import INSERT_COLUMNS, insert_chained, insert_chained_values
from auditlens.store.readers import ArrowReader
from auditlens.store.tables import (
    APPEND_ONLY_TABLES,
    ID_TYPE,
    SCHEMA_VERSION,
    SEARCH_FIELD_SEP,
    details_search_text,
    entries,
    meta,
    metadata,
    retention_authorizations,
    retention_log,
    search_fold,
    search_text_expr,
)

__all__ = [
    "APPEND_ONLY_TABLES",
    "FEATURE_TABLES",
    "FRAME_COLUMNS",
    "ID_TYPE",
    "INSERT_COLUMNS",
    "ROW_COLUMNS",
    "SCHEMA_VERSION",
    "SEARCH_FIELD_SEP",
    "STORAGE_TABLES",
    "ArrowReader",
    "Caches",
    "Connection",
    "declare_table",
    "details_search_text",
    "entries",
    "insert_chained",
    "insert_chained_values",
    "load_feature_tables",
    "meta",
    "metadata",
    "retention_authorizations",
    "retention_log",
    "schema_tables",
    "search_fold",
    "search_text_expr",
]

_C = entries.c

#: the columns of an entries dataframe (:data:`auditlens.frames.COLUMNS`), for
#: :meth:`AuditStore.select` and :meth:`AuditStore.read_batches`.
FRAME_COLUMNS: list[Any] = [
    _C.ts.label("timestamp") if name == "timestamp" else _C[name] for name in FRAME_SCHEMA.names
]

#: the columns of an entry with its chain fields and row id, for
#: :func:`auditlens.schema.row_to_entry` (``chain=True``).
ROW_COLUMNS: list[Any] = [_C.id, *(_C[f] for f in ROW_FIELDS), _C.seq, _C.prev_hash, _C.entry_hash]

#: the tables the storage layer declares itself (in :mod:`auditlens.store.tables`).
STORAGE_TABLES: tuple[str, ...] = (
    "audit_entries",
    "auditlens_meta",
    "retention_authorizations",
    "retention_log",
)

#: the modules that declare a feature's tables on :data:`metadata`, and the tables each
#: declares. The store imports them by name when it creates or completes its schema (a
#: registry, not an import: the storage layer stays below the features). A feature adding
#: a table adds it here; ``tests/store/test_backend.py`` checks the names against the
#: modules.
FEATURE_TABLES: Mapping[str, tuple[str, ...]] = {
    "auditlens.alerts.tables": ("alert_state", "alert_deliveries"),
    "auditlens.chain.checkpoint_tables": ("checkpoints", "signing_keys"),
    "auditlens.export.schedule_tables": ("export_schedules", "export_runs"),
    "auditlens.retention_tables": ("org_plans",),
}


def declare_table(name: str, *items: SchemaItem, **options: Any) -> Table:
    """A feature's table on the shared :data:`metadata` (columns, constraints and indexes
    given together, so the declaration is one statement).

    Declaring a table again with the same definition returns the table already declared: a
    module executed twice (as doctest collection can do) changes nothing. A different
    definition under a taken name is an error.

    Raises:
        StoreError: another table of that name, with another definition, is declared.

    Example:
        >>> from sqlalchemy import Column, Index, String
        >>> t = declare_table("doc_example", Column("k", String(8), primary_key=True),
        ...                   Column("v", String(8)), Index("ix_doc_example_v", "v"))
        >>> declare_table("doc_example", Column("k", String(8), primary_key=True),
        ...               Column("v", String(8)), Index("ix_doc_example_v", "v")) is t
        True
        >>> metadata.remove(t)
    """
    existing = metadata.tables.get(name)
    if existing is None:
        return Table(name, metadata, *items, **options)
    if _definition(existing) != _definition(Table(name, MetaData(), *items, **options)):
        raise StoreError(f"table {name!r} is declared twice with different definitions")
    return existing


def _definition(table: Table) -> tuple[str, list[str]]:
    ddl = str(CreateTable(table).compile())
    return ddl, sorted(str(ix.name) for ix in table.indexes)


def schema_tables() -> tuple[str, ...]:
    """Every table of a complete store: the storage layer's and every feature's.

    Example:
        >>> "checkpoints" in schema_tables() and "audit_entries" in schema_tables()
        True
    """
    return STORAGE_TABLES + tuple(t for names in FEATURE_TABLES.values() for t in names)


def load_feature_tables() -> None:
    """Import every module of :data:`FEATURE_TABLES`, so their tables are on :data:`metadata`.

    Example:
        >>> load_feature_tables()
        >>> "org_plans" in metadata.tables
        True
    """
    for module in FEATURE_TABLES:
        importlib.import_module(module)
