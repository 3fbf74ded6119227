"""The one way rows enter ``audit_entries``: :func:`insert_chained`.

Appends (:meth:`AuditStore.append` / ``append_rows``, and so bulk ingest) give each new
row its ``seq``, ``prev_hash`` and ``entry_hash`` first; a restore from the archive
(:func:`auditlens.retention.restore_archive`) brings rows that already carry them. Both
insert through :func:`insert_chained`, inside the store's write transaction
(:meth:`AuditStore.transaction`), so the insert statement and any future per-insert
duty live in one place.

Example:
    >>> import auditlens as al
    >>> from auditlens.chain.canonical import GENESIS_HASH, content_hash, link_hash
    >>> from auditlens.schema import normalize_entry
    >>> store = al.open_store("sqlite://")
    >>> row = normalize_entry({"actor": {"email": "jane@company.com", "type": "user"},
    ...     "action": "auth.login", "result": "success",
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"})
    >>> row["seq"], row["prev_hash"] = 1, GENESIS_HASH
    >>> row["entry_hash"] = link_hash(GENESIS_HASH, content_hash(row))
    >>> with store.transaction() as conn:
    ...     insert_chained(conn, [row])
    1
    >>> store.search("jane", backend="polars")["seq"].to_list()
    [1]
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from auditlens.errors import StoreError
from auditlens.schema import ROW_FIELDS
from auditlens.store.engine import WRITE_OPTION

__all__ = ["INSERT_COLUMNS", "insert_chained", "insert_chained_values"]

#: the columns every inserted row carries: the flat entry row and its chain fields.
INSERT_COLUMNS: tuple[str, ...] = (*ROW_FIELDS, "seq", "prev_hash", "entry_hash")

_INSERT_SQL = {
    mark: f"INSERT INTO audit_entries ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join([mark] * len(INSERT_COLUMNS))})"
    for mark in ("?", "%s")
}
_VALUES = operator.itemgetter(*INSERT_COLUMNS)


def insert_chained(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert rows that carry their chain fields (:data:`INSERT_COLUMNS`), in append order.

    ``conn`` is the connection of :meth:`AuditStore.transaction` (the store-wide append
    lock is held, so no other writer interleaves). Nothing is checked here: appends
    compute the chain fields, restores verify them against the archive first. On SQLite the
    rows' search documents are indexed by the first read that needs them (see
    :mod:`auditlens.store.tables`), not here: that keeps bulk appends fast. Returns the rows
    inserted.

    Raises:
        StoreError: ``conn`` is not a write transaction of a store.
    """
    if not rows:
        return 0
    return insert_chained_values(conn, list(map(_VALUES, rows)))


def insert_chained_values(conn: Connection, values: list[tuple[Any, ...]]) -> int:
    """:func:`insert_chained` for rows given as tuples in :data:`INSERT_COLUMNS` order (a
    bulk append builds them so, without a dict per row). Returns the rows inserted.

    Raises:
        StoreError: ``conn`` is not a write transaction of a store.
    """
    if not values:
        return 0
    if not conn.get_execution_options().get(WRITE_OPTION, False):
        raise StoreError(
            "insert_chained needs the store's write transaction: call it inside "
            "`with store.transaction() as conn:`"
        )
    sqlite = conn.dialect.name == "sqlite"
    conn.exec_driver_sql(_INSERT_SQL["?" if sqlite else "%s"], values)
    return len(values)
