"""``Store``: the append-only, hash-chained store of audit entries (the storage layer).

This module imports no feature (detectors, exports, checkpoints, context…): the features
build on :class:`Store`, and :class:`auditlens.facade.AuditStore` (what
:func:`auditlens.open_store` returns) adds their convenience methods on top.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")  # in memory; use a path or $AUDITLENS_URL for real
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> appended = store.append([{"actor": {"email": "jane@company.com", "type": "user"},
    ...     "action": "auth.login", "organization_id": org, "result": "success"}])
    >>> appended[0].seq, store.count(actor="jane@company.com")
    (1, 1)
"""

from __future__ import annotations

import base64
import operator
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Self, Unpack, overload

import orjson
import pyarrow as pa
from sqlalchemy import Select, and_, func, inspect, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from auditlens.chain.canonical import (
    CONTENT_FIELDS,
    GENESIS_HASH,
    chain_rows,
    content_hash,
    content_hashes,
    link_hash,
)
from auditlens.config import redact_url, resolve_url
from auditlens.errors import (
    ConfigError,
    DuplicateConflict,
    DuplicateEntryError,
    FilterError,
    StoreError,
    StoreVersionError,
)
from auditlens.fields import FIELDS, Role
from auditlens.frames import FRAME_SCHEMA, batches_to_backend
from auditlens.query.compile import compile_filter
from auditlens.query.filters import Filter, parse_duration, parse_when
from auditlens.query.keywords import FilterKeywords
from auditlens.query.search import parse_search
from auditlens.schema import (
    DEFAULT_MAX_DETAILS_BYTES,
    ROW_FIELDS,
    format_timestamp,
    normalize_entries,
    row_to_entry,
)
from auditlens.store.backend import (
    FRAME_COLUMNS,
    ROW_COLUMNS,
    Caches,
    insert_chained,
    insert_chained_values,
    load_feature_tables,
    schema_tables,
)
from auditlens.store.engine import (
    APPEND_LOCK_KEY,
    INFLIGHT_MARK_BASE,
    ORG_LOCK_CLASS,
    WRITE_OPTION,
    make_engine,
    org_lock_key,
)
from auditlens.store.migrate import version_problem
from auditlens.store.readers import ArrowReader
from auditlens.store.roles import scoped_url
from auditlens.store.tables import (
    SCHEMA_VERSION,
    SEARCH_FILL_SQL,
    SEARCH_INDEX_PROBE,
    entries,
    meta,
    metadata,
    postgres_ddl,
    retention_log,
    sqlite_ddl,
)

__all__ = ["AppendedEntry", "Page", "Stats", "Store", "Where"]

_C = entries.c
# an entry's identity: the fields it was given (derived ones follow from them)
_COMPARE_FIELDS = tuple(f.column for f in FIELDS if f.role is Role.ENTRY)
_FRAME_COLUMNS = FRAME_COLUMNS
_ROW_COLUMNS = ROW_COLUMNS

_COLUMNAR_MIN = 256  # below this many rows, per-row hashing is cheaper than building a frame
_CONTENT_VALUES = operator.itemgetter(*CONTENT_FIELDS)
_ROW_AUDIT_ID = ROW_FIELDS.index("audit_id")  # positions in a row tuple (ROW_FIELDS order)
_ROW_ORG = ROW_FIELDS.index("organization_id")
_SEARCH_TOP = "coalesce((SELECT rowid FROM audit_search ORDER BY rowid DESC LIMIT 1), 0)"
#: SQLite: entries above the text-search index's highest rowid (not indexed yet)?
_SEARCH_BEHIND = text(f"SELECT coalesce((SELECT max(id) FROM audit_entries), 0) > {_SEARCH_TOP}")
_SEARCH_CATCH_UP = text(SEARCH_FILL_SQL.replace(":first", f"({_SEARCH_TOP} + 1)"))
_WINDOW_ROWS = 5_000  # newest entries a common-term search with a limit looks at first
_WINDOW_LIMIT = 10_000  # ... for limits up to this
_SEARCH_FIELDS = frozenset({"text", "word", "actor"})  # clauses that may read audit_search

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

#: which entries: a search string, a :class:`~auditlens.query.Filter`, a mapping of keyword
#: filters, or None for all.
Where = Filter | Mapping[str, Any] | str | None

#: PostgreSQL: the largest id, then (read after it) the lowest in-flight mark of an append
_PG_STREAM_TOP = text(
    "SELECT coalesce(max(id), 0), (SELECT min((l.classid::bigint << 32) | l.objid::bigint) "
    "FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint >= :lo AND l.classid::bigint < :hi) FROM audit_entries"
)


def _differing(prior: Mapping[str, Any], row: Mapping[str, Any]) -> tuple[str, ...]:
    """The compared fields whose values differ between a stored (or earlier) row and a new one."""
    return tuple(f for f in _COMPARE_FIELDS if prior[f] != row[f])


Order = Literal["asc", "desc"]


class AppendedEntry(NamedTuple):
    """What ``append`` did with one entry."""

    audit_id: str
    organization_id: str
    seq: int
    entry_hash: str
    created: bool  #: False when the same entry was already stored (idempotent no-op)


@dataclass(frozen=True)
class Page:
    """One page of entries (JSON shape with chain fields) and the cursor of the next one."""

    entries: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class Stats:
    """Counts of matching entries, overall and by category, result and UTC day."""

    total: int
    by_category: list[tuple[str, int]] = field(default_factory=list)
    by_result: list[tuple[str, int]] = field(default_factory=list)
    by_day: list[tuple[str, int]] = field(default_factory=list)
    first: str | None = None
    last: str | None = None


class Store:
    """An append-only store of audit entries with a per-organization hash chain.

    Use :func:`auditlens.open_store` (the :class:`~auditlens.facade.AuditStore` subclass,
    with ``detect``/``export``/``checkpoint``…) or :meth:`Store.open`. Every read method
    takes the same filters (see :meth:`query`), or a search string, or a
    :class:`~auditlens.query.Filter`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        strict_actions: bool = False,
        max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
    ) -> None:
        if max_details_bytes <= 0:
            raise ConfigError("max_details_bytes must be positive")
        self.engine = engine
        self.strict_actions = strict_actions
        self.max_details_bytes = max_details_bytes
        self.dialect: str = engine.dialect.name
        self._reader = ArrowReader(engine, FRAME_SCHEMA)
        self._held = threading.local()  # this thread's open write transaction, if any
        #: named caches of derived state (see :meth:`cache`)
        self.caches = Caches()
        try:
            self._init_schema()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        url = redact_url(self.engine.url.render_as_string(hide_password=False))
        return f"{type(self).__name__}({url!r})"

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        strict_actions: bool = False,
        max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
    ) -> Self:
        """Open (and on first use create) a store of this class: the arguments and errors
        of :func:`auditlens.open_store`, which opens the feature-carrying subclass.

        Example:
            >>> with Store.open("sqlite://") as store:
            ...     store.count()
            0
        """
        return cls(
            make_engine(resolve_url(url)),
            strict_actions=strict_actions,
            max_details_bytes=max_details_bytes,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections."""
        self._reader.close()
        self.engine.dispose()

    def scoped(self, organization_id: str) -> Self:
        """A new store on the same database whose sessions are scoped to one organization.

        PostgreSQL only: with the roles of :func:`auditlens.store.roles.create_roles`, row-level
        security then shows and accepts only that organization's entries, raw SQL included.
        Close it when done. Raises :class:`ConfigError` on SQLite.
        """

        url = scoped_url(self.engine.url, organization_id)
        return type(self)(
            make_engine(url),
            strict_actions=self.strict_actions,
            max_details_bytes=self.max_details_bytes,
        )

    # -- transactions, reads and caches (the storage layer: auditlens.store.backend) --
    @contextmanager
    def transaction(self, orgs: Iterable[str] | None = None) -> Iterator[Connection]:
        """A write transaction holding the store-wide append lock.

        Every write auditlens makes goes through here: on SQLite it starts with
        ``BEGIN IMMEDIATE``, so a transaction that reads before it writes waits for
        other writers (busy timeout) instead of failing with "database is locked"; on
        PostgreSQL it takes the store-wide append lock first — or, for an append to
        ``orgs``, their per-organization locks and the store-wide lock shared. Nested in
        another ``transaction`` of the same thread (e.g. an ``append`` inside a plan change),
        it is a savepoint of that transaction: both commit together or not at all.

        Raises:
            StoreError: the database refused the write (an ``IntegrityError``, e.g. a
                unique constraint, is raised as it is, for callers that handle it).

        Example:
            >>> import auditlens as al
            >>> from auditlens.store.backend import meta
            >>> store = al.open_store("sqlite://")
            >>> with store.transaction() as conn:
            ...     _ = conn.execute(meta.insert().values(key="note", value="kept"))
            ...     with store.transaction() as inner:  # a savepoint of the same transaction
            ...         inner is conn
            True
        """
        held: Connection | None = getattr(self._held, "conn", None)
        if held is not None:
            with held.begin_nested():
                if orgs is not None and self.dialect == "postgresql":
                    self._append_locks(held, orgs)
                yield held
            return
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    if self.dialect == "postgresql" and orgs is not None:
                        self._append_locks(conn, orgs)
                    elif self.dialect == "postgresql":
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK_KEY}
                        )
                    self._held.conn = conn
                    try:
                        yield conn
                    finally:
                        self._held.conn = None
        except IntegrityError:
            raise
        except DBAPIError as exc:
            raise StoreError(f"the database refused the write: {exc.orig}") from exc

    _write = transaction  # the store's own name for it (kept for its internal callers)

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection for reads (SQLAlchemy Core), closed when the ``with`` block ends.

        Example:
            >>> import auditlens as al
            >>> from auditlens.store.backend import entries
            >>> from sqlalchemy import func, select
            >>> with al.open_store("sqlite://").connect() as conn:
            ...     conn.execute(select(func.count()).select_from(entries)).scalar_one()
            0
        """
        return self.engine.connect()

    def filter(self, where: Where = None, **filters: Unpack[FilterKeywords]) -> Filter:
        """The :class:`~auditlens.query.Filter` a ``where`` (search string, Filter, mapping)
        and keyword filters mean together, as every read method combines them.

        Example:
            >>> import auditlens as al
            >>> flt = al.open_store("sqlite://").filter("action:auth.*", result="failure")
            >>> [(c.field, c.values) for c in flt.clauses]
            [('action', ('auth.*',)), ('result', ('failure',))]
        """
        return self._filter(where, filters)

    def select(
        self,
        columns: Sequence[Any],
        where: Where = None,
        *,
        order: Order = "desc",
        limit: int | None = None,
        **filters: Unpack[FilterKeywords],
    ) -> Select[Any]:
        """A SELECT of ``columns`` from ``audit_entries`` for matching entries, in time order
        (then row order), with the filter compiled for this store's dialect.

        ``columns``: :data:`~auditlens.store.backend.ROW_COLUMNS`,
        :data:`~auditlens.store.backend.FRAME_COLUMNS` or any columns of
        :data:`~auditlens.store.backend.entries`. Run it on :meth:`connect`, or on
        :meth:`read_batches` when the columns are ``FRAME_COLUMNS``.

        Example:
            >>> import auditlens as al
            >>> from auditlens.store.backend import entries
            >>> store = al.open_store("sqlite://")
            >>> stmt = store.select([entries.c.audit_id], actor="jane@company.com", limit=5)
            >>> with store.connect() as conn:
            ...     conn.execute(stmt).all()
            []
        """
        return self._select(columns, self._filter(where, filters), order, limit)

    def read_batches(self, stmt: Select[Any], batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """Run a SELECT of :data:`~auditlens.store.backend.FRAME_COLUMNS` into Arrow record
        batches of :data:`~auditlens.frames.FRAME_SCHEMA` (ADBC where it can reach the database).

        Example:
            >>> import auditlens as al
            >>> from auditlens.store.backend import FRAME_COLUMNS
            >>> store = al.open_store("sqlite://")
            >>> sum(b.num_rows for b in store.read_batches(store.select(FRAME_COLUMNS)))
            0
        """
        return self._reader.batches(stmt, batch_size)

    def read_batches_of(
        self, stmts: Sequence[Select[Any]], batch_size: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """Several SELECTs of :data:`~auditlens.store.backend.FRAME_COLUMNS` (e.g. one per
        organization) into record batches, statement after statement, two statements read
        at once (two SQLite helper processes, or two PostgreSQL connections); a batch never
        mixes two statements' rows. Each statement's rows are held in memory while the one
        before is consumed: keep them bounded.

        Example:
            >>> import auditlens as al
            >>> from auditlens.store.backend import FRAME_COLUMNS
            >>> store = al.open_store("sqlite://")
            >>> stmts = [store.select(FRAME_COLUMNS)] * 2
            >>> sum(b.num_rows for b in store.read_batches_of(stmts))
            0
        """
        return self._reader.ranged_batches(stmts, batch_size)

    def cache(self, name: str) -> dict[str, Any]:
        """The named cache of derived state kept with this store object (see :class:`Caches`).

        Example:
            >>> import auditlens as al
            >>> store = al.open_store("sqlite://")
            >>> store.cache("merkle_trees")["org"] = "tree"
            >>> store.invalidate("merkle_trees")
            >>> store.cache("merkle_trees")
            {}
        """
        return self.caches.get(name)

    def invalidate(self, name: str | None = None) -> None:
        """Forget a named cache, or every cache (after entries were removed or rewritten)."""
        self.caches.invalidate(name)

    @staticmethod
    def _append_locks(conn: Connection, orgs: Iterable[str]) -> None:
        """PostgreSQL: the locks of an append to ``orgs`` and its in-flight mark (see
        :mod:`auditlens.store.engine`); per-organization locks in key order (no deadlock)."""
        conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": APPEND_LOCK_KEY})
        keys = sorted({org_lock_key(org) for org in orgs})
        conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(:c, k) FROM "
                "(SELECT k FROM unnest(CAST(:keys AS integer[])) AS u(k) ORDER BY k) AS s"
            ),
            {"c": ORG_LOCK_CLASS, "keys": keys},
        )
        conn.execute(
            text(
                "SELECT pg_advisory_xact_lock_shared("
                ":base + nextval(pg_get_serial_sequence('audit_entries', 'id')))"
            ),
            {"base": INFLIGHT_MARK_BASE},
        )

    # -- schema --------------------------------------------------------------
    def _init_schema(self) -> None:
        insp = inspect(self.engine)
        if insp.has_table("auditlens_meta"):
            self._check_version()
            if all(insp.has_table(t) for t in schema_tables()) and self._search_ready():
                return
            # same schema version, tables added since: create them (every step is idempotent)
        elif insp.has_table("audit_entries"):
            raise StoreVersionError(
                "this database has an audit_entries table but no auditlens_meta: it was not "
                "created by auditlens. Use another database or schema."
            )
        load_feature_tables()  # the features' tables, declared on the shared metadata
        try:
            with self.transaction() as conn:
                if self.dialect == "postgresql":
                    try:
                        with conn.begin_nested():
                            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                    except SQLAlchemyError:
                        raise StoreError(
                            "the pg_trgm extension is missing and this user may not create it; "
                            "ask an administrator to run CREATE EXTENSION pg_trgm in this database"
                        ) from None
                metadata.create_all(conn, checkfirst=True)
                for ddl in sqlite_ddl if self.dialect == "sqlite" else postgres_ddl:
                    conn.execute(text(ddl))
                exists = conn.execute(
                    select(meta.c.value).where(meta.c.key == "schema_version")
                ).scalar()
                if exists is None:
                    conn.execute(
                        meta.insert(),
                        [
                            {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                            {"key": "created_at", "value": datetime.now(UTC).isoformat()},
                        ],
                    )
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"could not create the store's tables: {exc}") from exc
        self._check_version()

    def _search_ready(self) -> bool:
        """Whether the text-search index of this layout exists (else the DDL builds it)."""
        with self.engine.connect() as conn:
            return bool(conn.execute(text(SEARCH_INDEX_PROBE[self.dialect])).scalar())

    def _search_catch_up(self) -> None:
        """SQLite: index the entries appended since the text-search index was last filled.

        Appends leave ``audit_search`` to the first read that needs it (text, or a non-ASCII
        actor): one ``INSERT … SELECT`` for every entry above the index's highest rowid,
        in a write transaction of its own (ids only grow, so the index always holds a prefix).
        """
        with self.engine.connect() as conn:
            behind = conn.execute(_SEARCH_BEHIND).scalar()
        if behind:
            with self._write() as conn:
                conn.execute(_SEARCH_CATCH_UP)

    def _check_version(self) -> None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar()
        problem = version_problem(found)
        if problem is not None:
            raise StoreVersionError(problem)

    # -- append ----------------------------------------------------------------
    def append(
        self, entries_: Iterable[Mapping[str, Any]] | Mapping[str, Any]
    ) -> list[AppendedEntry]:
        """Append entries in one transaction: all land, or none.

        Entries are dicts in the JSON interchange shape; ``audit_id`` and
        ``timestamp`` may be omitted. Each organization's new entries get the next
        ``seq`` numbers and are chained to its last entry. Appending an ``audit_id``
        that is already stored with identical content is a no-op (``created=False``).

        Returns:
            One :class:`AppendedEntry` per input entry, in input order.

        Raises:
            ValidationError: some entry is malformed (every problem is listed).
            DuplicateEntryError: an ``audit_id`` is stored with different content.
        """
        batch = [entries_] if isinstance(entries_, Mapping) else entries_
        rows = normalize_entries(
            batch, strict_actions=self.strict_actions, max_details_bytes=self.max_details_bytes
        )
        return self.append_rows(rows)

    def append_rows(self, rows: list[dict[str, Any]]) -> list[AppendedEntry]:
        """Append rows already produced by :func:`auditlens.schema.normalize_entry`.

        For bulk loaders that validate entry by entry themselves (see
        :func:`auditlens.ingest.ingest`); ``append`` is the general entry point.
        """
        if not rows:
            return []
        try:
            # Fast path: new audit_ids (the usual case) need no lookup; the unique
            # index catches a replay, and the batch is then redone with lookups.
            return self._append_rows(rows, check_existing=False)
        except IntegrityError:
            pass
        try:
            return self._append_rows(rows, check_existing=True)
        except IntegrityError as exc:
            raise StoreError(
                f"the database refused the batch: {exc.orig}; nothing was appended"
            ) from exc

    def append_prepared(
        self, rows: Sequence[tuple[Any, ...]], tails: Sequence[bytes]
    ) -> tuple[int, int]:
        """Append rows already validated, given as tuples in
        :data:`~auditlens.schema.ROW_FIELDS` order with each one's
        :func:`~auditlens.chain.canonical.content_tail` (a reader process computed both).

        The same append as :meth:`append_rows` — same ``seq``, hashes, duplicates and
        conflicts — for bulk loaders: new ids (the usual case) go straight from the tuples
        to the insert, with no dict, frame or result object per row; a batch that repeats
        an ``audit_id`` (within itself or already stored) is appended by
        :meth:`append_rows`' checks instead. Returns ``(appended, already stored)``.

        Raises:
            DuplicateEntryError: an ``audit_id`` is stored with different content (every
                conflict of the batch, by index into ``rows``).
            StoreError: the database refused the batch (nothing was appended).
        """
        if not rows:
            return 0, 0
        if len({r[_ROW_AUDIT_ID] for r in rows}) == len(rows):
            try:
                with self._write(orgs={r[_ROW_ORG] for r in rows}) as conn:
                    heads = self._heads(conn, {r[_ROW_ORG] for r in rows})
                    insert_chained_values(conn, chain_rows(rows, tails, _ROW_ORG, heads))
                return len(rows), 0
            except IntegrityError:
                pass  # a replay: redone below with lookups (the transaction was rolled back)
        dicts = [dict(zip(ROW_FIELDS, r, strict=True)) for r in rows]
        try:
            results = self._append_rows(dicts, check_existing=True)
        except IntegrityError as exc:
            raise StoreError(
                f"the database refused the batch: {exc.orig}; nothing was appended"
            ) from exc
        created = sum(1 for r in results if r.created)
        return created, len(results) - created

    def _append_rows(
        self, rows: list[dict[str, Any]], *, check_existing: bool
    ) -> list[AppendedEntry]:
        with self._write(orgs={r["organization_id"] for r in rows}) as conn:
            known = self._existing(conn, [r["audit_id"] for r in rows]) if check_existing else {}
            # for each input: the row that is (or will be) stored under its audit_id
            stored: list[dict[str, Any]] = []
            created: list[bool] = []
            fresh: list[dict[str, Any]] = []
            seen: dict[str, dict[str, Any]] = {}
            conflicts: list[DuplicateConflict] = []
            for index, row in enumerate(rows):
                aid = row["audit_id"]
                prior = known.get(aid) or seen.get(aid)
                if prior is not None:
                    diff = _differing(prior, row)
                    if diff:
                        conflicts.append(DuplicateConflict(index, aid, diff))
                    stored.append(prior)
                    created.append(False)
                    continue
                seen[aid] = row
                fresh.append(row)
                stored.append(row)
                created.append(True)
            if conflicts:  # every conflict of the batch at once, so callers drop them in one go
                first = conflicts[0]
                raise DuplicateEntryError(first.audit_id, first.differing, conflicts)
            if fresh:
                self._chain(conn, fresh)
                insert_chained(conn, fresh)
        return [
            AppendedEntry(r["audit_id"], r["organization_id"], int(r["seq"]), r["entry_hash"], c)
            for r, c in zip(stored, created, strict=True)
        ]

    def _chain(self, conn: Connection, fresh: list[dict[str, Any]]) -> None:
        """Give each new row its seq, prev_hash and entry_hash (rows in append order)."""
        heads = self._heads(conn, {row["organization_id"] for row in fresh})
        seqs = {org: seq for org, (seq, _) in heads.items()}
        for row in fresh:
            org = row["organization_id"]
            seqs[org] = row["seq"] = seqs.get(org, 0) + 1
        if len(fresh) >= _COLUMNAR_MIN:
            import polars as pl  # lazy: polars costs ~0.2 s at start-up; only this path needs it

            columns = zip(*map(_CONTENT_VALUES, fresh), strict=True)  # one pass over the rows
            frame = pl.DataFrame(
                dict(zip(CONTENT_FIELDS, map(list, columns), strict=True)),
                schema={f: (pl.Int64 if f in ("seq", "ts") else pl.Utf8) for f in CONTENT_FIELDS},
            )
            contents = content_hashes(frame)
        else:
            contents = [content_hash(r) for r in fresh]
        tips = {org: tip for org, (_, tip) in heads.items()}
        for row, content in zip(fresh, contents, strict=True):
            org = row["organization_id"]
            row["prev_hash"] = tips.get(org, GENESIS_HASH)
            row["entry_hash"] = tips[org] = link_hash(row["prev_hash"], content)

    def find_conflicts(self, rows: Sequence[Mapping[str, Any]]) -> list[DuplicateConflict]:
        """Rows whose ``audit_id`` is stored, or earlier in ``rows``, with different content.

        A read-only check (one ``IN`` lookup per 500 ids), for loaders that must know
        before appending anything (``ingest(strict=True)``). Same id with the same
        content is not a conflict: appending it is a no-op.
        """
        with self.engine.connect() as conn:
            known = self._existing(conn, [r["audit_id"] for r in rows])
        conflicts: list[DuplicateConflict] = []
        seen: dict[str, Mapping[str, Any]] = {}
        for index, row in enumerate(rows):
            aid = row["audit_id"]
            prior = known.get(aid) or seen.get(aid)
            if prior is None:
                seen[aid] = row
            elif diff := _differing(prior, row):
                conflicts.append(DuplicateConflict(index, aid, diff))
        return conflicts

    def _existing(self, conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        cols = [_C[f] for f in _COMPARE_FIELDS] + [_C.seq, _C.entry_hash]
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            for r in conn.execute(select(*cols).where(_C.audit_id.in_(chunk))).mappings():
                found[r["audit_id"]] = dict(r)
        return found

    def _heads(self, conn: Connection, orgs: Iterable[str]) -> dict[str, tuple[int, str]]:
        """``(seq, entry_hash)`` each organization's next entry chains to: its last live entry,
        else the boundary of its archived prefix (retention removed every live entry)."""
        heads: dict[str, tuple[int, str]] = {}
        b = retention_log.c
        for org in orgs:
            r = conn.execute(
                select(_C.seq, _C.entry_hash)
                .where(_C.organization_id == org)
                .order_by(_C.seq.desc())
                .limit(1)
            ).first()
            if r is None:
                r = conn.execute(
                    select(b.through_seq, b.last_entry_hash)
                    .where(b.organization_id == org)
                    .order_by(b.through_seq.desc())
                    .limit(1)
                ).first()
            if r is not None:
                heads[org] = (int(r[0]), str(r[1]))
        return heads

    # -- reading -----------------------------------------------------------------
    def _filter(self, where: Where, filters: Mapping[str, Any]) -> Filter:
        flt = parse_search(where) if isinstance(where, str) else Filter.coerce(where)
        if filters:
            flt = flt & Filter.coerce(filters)
        if self.dialect == "sqlite" and any(c.field in _SEARCH_FIELDS for c in flt.clauses):
            self._search_catch_up()
        return flt

    def _select(
        self,
        columns: Sequence[Any],
        flt: Filter,
        order: Order,
        limit: int | None,
        *,
        text_by_time: bool = False,
    ) -> Select[Any]:
        if order not in ("asc", "desc"):
            raise FilterError(f"order must be 'asc' or 'desc', got {order!r}")
        stmt = select(*columns).where(compile_filter(flt, self.dialect, text_by_time=text_by_time))
        if order == "desc":
            stmt = stmt.order_by(_C.ts.desc(), _C.id.desc())
        else:
            stmt = stmt.order_by(_C.ts.asc(), _C.id.asc())
        if limit is not None:
            if limit < 0:
                raise FilterError(f"limit must be >= 0, got {limit}")
            stmt = stmt.limit(limit)
        return stmt

    def _newest_window(
        self, columns: Sequence[Any], flt: Filter, order: Order, limit: int | None
    ) -> Select[Any] | None:
        """SQLite, text search with a small limit: the same query over the newest (oldest, in
        ``asc`` order) :data:`_WINDOW_ROWS` entries by time, walking the time index.

        A common term matches tens of thousands of entries; finding them all, then looking
        each up by id and sorting them to keep 100, was its whole cost. Walking the newest
        entries and checking each one's search document stops after ``limit`` matches.
        If the window yields ``limit`` rows they are the answer (every entry outside it
        sorts after them); otherwise the caller runs the plain query. None when this does not apply.
        """
        if self.dialect != "sqlite" or limit is None or not 0 < limit <= _WINDOW_LIMIT:
            return None
        if not any(c.field == "text" and not c.negate for c in flt.clauses):
            return None
        desc = order == "desc"
        edge = (
            select(_C.ts)
            .order_by(_C.ts.desc() if desc else _C.ts.asc())
            .limit(1)
            .offset(_WINDOW_ROWS)
            .scalar_subquery()
        )
        stmt = self._select(columns, flt, order, limit, text_by_time=True)
        if desc:
            return stmt.where(_C.ts >= func.coalesce(edge, -(2**62)))
        return stmt.where(_C.ts <= func.coalesce(edge, 2**62))

    def to_arrow(
        self,
        where: Where = None,
        *,
        limit: int | None = None,
        order: Order = "desc",
        **filters: Unpack[FilterKeywords],
    ) -> pa.Table:
        """Matching entries as an Arrow table with the :data:`~auditlens.frames.COLUMNS` layout."""
        flt = self._filter(where, filters)
        window = self._newest_window(_FRAME_COLUMNS, flt, order, limit)
        if window is not None:
            table = self._reader.read(window)
            if table.num_rows == limit:
                return table
        return self._reader.read(self._select(_FRAME_COLUMNS, flt, order, limit))

    def batches(
        self,
        where: Where = None,
        *,
        order: Order = "asc",
        batch_size: int = 65_536,
        **filters: Unpack[FilterKeywords],
    ) -> Iterator[pa.RecordBatch]:
        """Matching entries as Arrow record batches, for exports of any size in constant memory."""
        flt = self._filter(where, filters)
        stmt = self._select(_FRAME_COLUMNS, flt, order, None)
        # time ranges, two read at once (two reader processes on SQLite), in order
        cond = compile_filter(flt, self.dialect)
        ranges = self._reader.split_by_time(stmt, _C.ts, cond, descending=order == "desc")
        return self._reader.ranged_batches(ranges, batch_size)

    @overload
    def query(
        self,
        where: Where = ...,
        *,
        backend: Literal["pandas"] = ...,
        limit: int | None = ...,
        order: Order = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pd.DataFrame: ...
    @overload
    def query(
        self,
        where: Where = ...,
        *,
        backend: Literal["polars"],
        limit: int | None = ...,
        order: Order = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pl.DataFrame: ...
    @overload
    def query(
        self,
        where: Where = ...,
        *,
        backend: Literal["arrow"],
        limit: int | None = ...,
        order: Order = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pa.Table: ...
    @overload
    def query(
        self,
        where: Where = ...,
        *,
        backend: str,
        limit: int | None = ...,
        order: Order = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pd.DataFrame | pl.DataFrame | pa.Table: ...
    def query(
        self,
        where: Where = None,
        *,
        backend: str = "pandas",
        limit: int | None = None,
        order: Order = "desc",
        **filters: Unpack[FilterKeywords],
    ) -> pd.DataFrame | pl.DataFrame | pa.Table:
        """Matching entries as a dataframe (pandas by default, or polars/arrow).

        Filters (all optional, combinable, evaluated by the database):
        ``start``/``end`` (inclusive; a date-only ``end`` covers that whole UTC day),
        ``last`` (``"24h"``, ``"7d"``, any duration), ``actor`` (emails or user ids,
        ``*`` wildcards allowed in emails), ``actor_type``, ``actions`` (exact or
        ``webhook.*``), ``category``, ``resource`` (id or name), ``resource_type``,
        ``resource_id``, ``resource_name``, ``result``, ``organization_id``,
        ``application_id``, ``audit_id``, ``ip`` (address or CIDR) and ``text``
        (case-insensitive, across actor email, resource name, action and details).
        Each accepts one value or a list (OR). ``where`` may also be a search string
        or a :class:`~auditlens.query.Filter`.

        Example:
            >>> import auditlens as al
            >>> store = al.open_store("sqlite://")
            >>> store.query(last="7d", category="webhooks", backend="polars").shape
            (0, 19)
        """
        if backend not in ("pandas", "polars", "arrow"):
            raise ConfigError(f"unknown backend {backend!r}; use 'pandas', 'polars' or 'arrow'")
        flt = self._filter(where, filters)
        window = self._newest_window(_FRAME_COLUMNS, flt, order, limit)
        if window is not None:
            table = self._reader.read(window)
            if table.num_rows == limit:
                return batches_to_backend(iter(table.to_batches()), backend)
        stmt = self._select(_FRAME_COLUMNS, flt, order, limit)
        if limit is not None:
            return batches_to_backend(self._reader.batches(stmt), backend)
        # time ranges, two read at once (two reader processes on SQLite), in order
        cond = compile_filter(flt, self.dialect)
        ranges = self._reader.split_by_time(stmt, _C.ts, cond, descending=order == "desc")
        return batches_to_backend(self._reader.ranged_batches(ranges), backend)

    @overload
    def search(
        self,
        query: str,
        *,
        backend: Literal["pandas"] = ...,
        limit: int | None = ...,
        order: Order = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pd.DataFrame: ...
    @overload
    def search(
        self,
        query: str,
        *,
        backend: Literal["polars"],
        limit: int | None = ...,
        order: Order = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pl.DataFrame: ...
    @overload
    def search(
        self,
        query: str,
        *,
        backend: Literal["arrow"],
        limit: int | None = ...,
        order: Order = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pa.Table: ...
    @overload
    def search(
        self,
        query: str,
        *,
        backend: str,
        limit: int | None = ...,
        order: Order = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pd.DataFrame | pl.DataFrame | pa.Table: ...
    def search(
        self,
        query: str,
        *,
        backend: str = "pandas",
        limit: int | None = None,
        order: Order = "desc",
        **filters: Unpack[FilterKeywords],
    ) -> pd.DataFrame | pl.DataFrame | pa.Table:
        """Entries matching a search-bar query (see :mod:`auditlens.query.search`).

        Example:
            >>> import auditlens as al
            >>> al.open_store("sqlite://").search('action:webhook.* -result:success').shape[1]
            19
        """
        return self.query(parse_search(query), backend=backend, limit=limit, order=order, **filters)

    def count(self, where: Where = None, **filters: Unpack[FilterKeywords]) -> int:
        """Number of matching entries (counted by the database)."""
        flt = self._filter(where, filters)
        stmt = select(func.count()).select_from(entries).where(compile_filter(flt, self.dialect))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get(self, audit_id: str) -> dict[str, Any] | None:
        """One entry in the JSON shape (with ``seq``, ``prev_hash``, ``entry_hash``), or None."""
        with self.engine.connect() as conn:
            r = (
                conn.execute(select(*_ROW_COLUMNS).where(_C.audit_id == audit_id.strip().lower()))
                .mappings()
                .first()
            )
        return row_to_entry(r, chain=True) if r is not None else None

    def entries(
        self,
        where: Where = None,
        *,
        limit: int | None = None,
        order: Order = "desc",
        **filters: Unpack[FilterKeywords],
    ) -> list[dict[str, Any]]:
        """Matching entries as a list of dicts in the JSON shape (with chain fields)."""
        flt = self._filter(where, filters)
        window = self._newest_window(_ROW_COLUMNS, flt, order, limit)
        with self.engine.connect() as conn:
            if window is not None:
                rows = list(conn.execute(window).mappings())
                if len(rows) == limit:
                    return [row_to_entry(r, chain=True) for r in rows]
            stmt = self._select(_ROW_COLUMNS, flt, order, limit)
            return [row_to_entry(r, chain=True) for r in conn.execute(stmt).mappings()]

    def page(
        self,
        where: Where = None,
        *,
        limit: int = 100,
        cursor: str | None = None,
        order: Order = "desc",
        **filters: Unpack[FilterKeywords],
    ) -> Page:
        """One page of matching entries and the cursor of the next (keyset pagination).

        Pages stay stable while entries are appended: the cursor remembers the last
        (timestamp, row) seen, not an offset.
        """
        if limit <= 0:
            raise FilterError(f"limit must be positive, got {limit}")
        flt = self._filter(where, filters)
        stmt = self._select(_ROW_COLUMNS, flt, order, limit + 1)
        if cursor is not None:
            ts, rid = _decode_cursor(cursor)
            if order == "desc":
                after = or_(_C.ts < ts, and_(_C.ts == ts, _C.id < rid))
            else:
                after = or_(_C.ts > ts, and_(_C.ts == ts, _C.id > rid))
            stmt = stmt.where(after)
        with self.engine.connect() as conn:
            rows = list(conn.execute(stmt).mappings())
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = _encode_cursor(rows[-1]["ts"], rows[-1]["id"]) if more and rows else None
        return Page([row_to_entry(r, chain=True) for r in rows], nxt)

    def stats(self, where: Where = None, **filters: Unpack[FilterKeywords]) -> Stats:
        """Counts of matching entries by category, result and UTC day."""
        flt = self._filter(where, filters)
        cond = compile_filter(flt, self.dialect)
        day = (_C.ts // 86_400_000).label("day")
        with self.engine.connect() as conn:
            total, lo, hi = conn.execute(
                select(func.count(), func.min(_C.ts), func.max(_C.ts)).where(cond)
            ).one()

            def grouped(col: Any) -> list[tuple[Any, int]]:
                stmt = select(col, func.count()).where(cond).group_by(col).order_by(col)
                return [(k, int(n)) for k, n in conn.execute(stmt)]

            by_cat = sorted(grouped(_C.category), key=lambda kv: -kv[1])
            by_res = sorted(grouped(_C.result), key=lambda kv: -kv[1])
            by_day = [
                ((datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(d))).date().isoformat(), n)
                for d, n in grouped(day)
            ]

        return Stats(
            int(total),
            by_cat,
            by_res,
            by_day,
            format_timestamp(int(lo)) if lo is not None else None,
            format_timestamp(int(hi)) if hi is not None else None,
        )

    def organizations(self) -> list[dict[str, Any]]:
        """Every organization in the store with its entry count and chain head."""
        stmt = (
            select(
                _C.organization_id, func.count(), func.max(_C.seq), func.min(_C.ts), func.max(_C.ts)
            )
            .group_by(_C.organization_id)
            .order_by(_C.organization_id)
        )
        with self.engine.connect() as conn:
            return [
                {
                    "organization_id": o,
                    "entries": int(n),
                    "head_seq": int(s),
                    "first_ts": int(a),
                    "last_ts": int(b),
                }
                for o, n, s, a, b in conn.execute(stmt)
            ]

    # -- streaming -------------------------------------------------------------
    def _max_id(self, conn: Connection | None = None) -> int:
        stmt = select(func.coalesce(func.max(_C.id), 0))
        if conn is not None:
            return int(conn.execute(stmt).scalar_one())
        with self.engine.connect() as c:
            return int(c.execute(stmt).scalar_one())

    def stream_top(self, conn: Connection) -> int:
        """The highest id below which every entry has committed (or never will): a reader
        following ``id > last seen`` may advance to it without ever skipping a row.

        SQLite: the largest id (writers are serialized, ids grow in commit order).
        PostgreSQL: appends to different organizations commit in any order, so also below
        every in-flight mark (:data:`~auditlens.store.engine.INFLIGHT_MARK_BASE`): an append
        still running holds one below all the ids it inserts. The largest id is read first
        and the marks after it, so any append it missed can only insert ids above it.
        """
        if self.dialect != "postgresql":
            return self._max_id(conn)
        top, mark = conn.execute(
            _PG_STREAM_TOP,
            {"lo": INFLIGHT_MARK_BASE >> 32, "hi": (INFLIGHT_MARK_BASE >> 32) + (1 << 16)},
        ).one()
        if mark is not None:
            top = min(int(top), int(mark) - INFLIGHT_MARK_BASE)
        return int(top)

    def stream(
        self,
        where: Where = None,
        *,
        since: str | datetime | timedelta | None = None,
        poll_interval: float = 1.0,
        stop: threading.Event | Callable[[], bool] | None = None,
        max_events: int | None = None,
        batch_size: int = 1000,
        **filters: Unpack[FilterKeywords],
    ) -> Iterator[dict[str, Any]]:
        """Yield matching entries as they are appended (by any process), oldest first.

        Args:
            since: None for only new entries; ``"beginning"`` for every stored entry
                first; a duration (``"1h"``) or datetime to catch up from that time.
            poll_interval: seconds between polls when nothing new arrived.
            stop: an Event (or callable) that ends the stream when set/true.
            max_events: end after this many entries.
        """
        flt = self._filter(where, filters)
        if since is None:
            with self.engine.connect() as conn:
                last_id = self.stream_top(conn)
        else:
            last_id = 0
            if since != "beginning":
                if isinstance(since, timedelta):
                    lo = parse_when(datetime.now(UTC) - since)
                elif isinstance(since, str) and since[:1].isdigit() and since[-1:].isalpha():
                    lo = parse_when(datetime.now(UTC) - parse_duration(since))
                else:
                    lo = parse_when(since, field="since")
                flt = flt & Filter.from_kwargs(start=datetime.fromtimestamp(lo / 1000, UTC))
        cond = compile_filter(flt, self.dialect)
        searches = self.dialect == "sqlite" and any(c.field in _SEARCH_FIELDS for c in flt.clauses)
        sent = 0

        def stopped() -> bool:
            if stop is None:
                return False
            return stop.is_set() if isinstance(stop, threading.Event) else bool(stop())

        while not stopped():
            if searches:
                self._search_catch_up()
            with self.engine.connect() as conn:
                top = self.stream_top(conn)  # its own statement: rows are read after it
                stmt = (
                    select(*_ROW_COLUMNS)
                    .where(and_(_C.id > last_id, _C.id <= top, cond))
                    .order_by(_C.id)
                    .limit(batch_size)
                )
                rows = list(conn.execute(stmt).mappings())
            for r in rows:
                last_id = r["id"]
                yield row_to_entry(r, chain=True)
                sent += 1
                if max_events is not None and sent >= max_events:
                    return
            if len(rows) < batch_size:
                if isinstance(stop, threading.Event):
                    stop.wait(poll_interval)
                else:
                    time.sleep(poll_interval)


def _encode_cursor(ts: int, rid: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([1, ts, rid])).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, ts, rid = orjson.loads(raw)
        if version != 1 or not isinstance(ts, int) or not isinstance(rid, int):
            raise ValueError
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise FilterError(
            f"invalid page cursor {cursor!r}: pass the next_cursor of a previous page"
        ) from None
    return ts, rid
