"""``AuditStore``: the append-only, hash-chained store of audit entries.

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
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

import orjson
import pyarrow as pa
from sqlalchemy import Select, and_, func, inspect, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from auditlens import context as _context
from auditlens.chain.canonical import (
    CONTENT_FIELDS,
    GENESIS_HASH,
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
from auditlens.frames import FRAME_SCHEMA, batches_to_backend
from auditlens.query.compile import compile_filter
from auditlens.query.filters import Filter, parse_duration, parse_when
from auditlens.query.search import parse_search
from auditlens.schema import DEFAULT_MAX_DETAILS_BYTES, ROW_FIELDS, normalize_entries, row_to_entry
from auditlens.store.engine import APPEND_LOCK_KEY, WRITE_OPTION, make_engine
from auditlens.store.readers import ArrowReader
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

__all__ = ["AppendedEntry", "AuditStore", "Page", "Stats", "open_store"]

_C = entries.c
_COMPARE_FIELDS = tuple(f for f in ROW_FIELDS if f not in ("category", "ip_key"))
_FRAME_COLUMNS = [
    _C.ts.label("timestamp") if name == "timestamp" else _C[name] for name in FRAME_SCHEMA.names
]
_ROW_COLUMNS = [_C.id, *(_C[f] for f in ROW_FIELDS), _C.seq, _C.prev_hash, _C.entry_hash]

_INSERT_COLUMNS = (*ROW_FIELDS, "seq", "prev_hash", "entry_hash")
_COLUMNAR_MIN = 256  # below this many rows, per-row hashing is cheaper than building a frame
_FTS_FILL = text(SEARCH_FILL_SQL)  # SQLite text search: index the batch with ids >= :first

Where = Filter | Mapping[str, Any] | str | None


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


def open_store(
    url: str | None = None,
    *,
    strict_actions: bool = False,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
) -> AuditStore:
    """Open (and on first use create) an audit store.

    Args:
        url: SQLAlchemy URL or SQLite file path; default ``$AUDITLENS_URL``, else
            ``sqlite:///auditlens.db``. PostgreSQL: ``postgresql+psycopg://user@host/db``.
        strict_actions: refuse actions outside the catalogue.
        max_details_bytes: largest accepted ``details`` object, as compact JSON.

    Raises:
        StoreVersionError: the database holds a store of another schema version.
        ConfigError: the URL is malformed or names an unsupported database.
    """
    return AuditStore(
        make_engine(resolve_url(url)),
        strict_actions=strict_actions,
        max_details_bytes=max_details_bytes,
    )


class AuditStore:
    """An append-only store of audit entries with a per-organization hash chain.

    Use :func:`open_store` to get one. Every read method takes the same filters
    (see :meth:`query`), or a search string, or a :class:`~auditlens.query.Filter`.
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
        mark = "?" if self.dialect == "sqlite" else "%s"
        self._insert_sql = (
            f"INSERT INTO audit_entries ({', '.join(_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(_INSERT_COLUMNS))})"
        )
        try:
            self._init_schema()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"AuditStore({redact_url(self.engine.url.render_as_string(hide_password=False))!r})"

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections."""
        self._reader.close()
        self.engine.dispose()

    def scoped(self, organization_id: str) -> AuditStore:
        """A new store on the same database whose sessions are scoped to one organization.

        PostgreSQL only: with the roles of :func:`auditlens.store.roles.create_roles`, row-level
        security then shows and accepts only that organization's entries, raw SQL included.
        Close it when done. Raises :class:`ConfigError` on SQLite.
        """
        from auditlens.store.roles import scoped_url

        url = scoped_url(self.engine.url, organization_id)
        return AuditStore(
            make_engine(url),
            strict_actions=self.strict_actions,
            max_details_bytes=self.max_details_bytes,
        )

    # -- schema --------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction holding the store-wide append lock.

        Every write auditlens makes goes through here: on SQLite it starts with
        ``BEGIN IMMEDIATE``, so a transaction that reads before it writes waits for
        other writers (busy timeout) instead of failing with "database is locked".
        Nested in another ``_write`` of the same thread (e.g. an ``append`` inside a plan
        change), it is a savepoint of that transaction: both commit together or not at all.
        """
        held: Connection | None = getattr(self._held, "conn", None)
        if held is not None:
            with held.begin_nested():
                yield held
            return
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    if self.dialect == "postgresql":
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

    def _init_schema(self) -> None:
        insp = inspect(self.engine)
        if insp.has_table("auditlens_meta"):
            self._check_version()
            if all(insp.has_table(t) for t in metadata.tables) and self._search_ready():
                return
            # same schema version, tables added since: create them (every step is idempotent)
        elif insp.has_table("audit_entries"):
            raise StoreVersionError(
                "this database has an audit_entries table but no auditlens_meta: it was not "
                "created by auditlens. Use another database or schema."
            )
        try:
            with self._write() as conn:
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

    def _check_version(self) -> None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar()
        if found != str(SCHEMA_VERSION):
            raise StoreVersionError(
                f"this store has schema version {found}, this auditlens reads version "
                f"{SCHEMA_VERSION}; upgrade auditlens or open a store made by this version"
            )

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

    def _append_rows(
        self, rows: list[dict[str, Any]], *, check_existing: bool
    ) -> list[AppendedEntry]:
        with self._write() as conn:
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
                first_id = self._max_id(conn) + 1
                conn.exec_driver_sql(
                    self._insert_sql, [tuple(r[c] for c in _INSERT_COLUMNS) for r in fresh]
                )
                if self.dialect == "sqlite":
                    conn.execute(_FTS_FILL, {"first": first_id})
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
            import polars as pl

            frame = pl.DataFrame(
                {f: [r[f] for r in fresh] for f in CONTENT_FIELDS},
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
        return flt

    def _select(
        self, columns: Sequence[Any], flt: Filter, order: Order, limit: int | None
    ) -> Select[Any]:
        if order not in ("asc", "desc"):
            raise FilterError(f"order must be 'asc' or 'desc', got {order!r}")
        stmt = select(*columns).where(compile_filter(flt, self.dialect))
        if order == "desc":
            stmt = stmt.order_by(_C.ts.desc(), _C.id.desc())
        else:
            stmt = stmt.order_by(_C.ts.asc(), _C.id.asc())
        if limit is not None:
            if limit < 0:
                raise FilterError(f"limit must be >= 0, got {limit}")
            stmt = stmt.limit(limit)
        return stmt

    def to_arrow(
        self,
        where: Where = None,
        *,
        limit: int | None = None,
        order: Order = "desc",
        **filters: Any,
    ) -> pa.Table:
        """Matching entries as an Arrow table with the :data:`~auditlens.frames.COLUMNS` layout."""
        flt = self._filter(where, filters)
        return self._reader.read(self._select(_FRAME_COLUMNS, flt, order, limit))

    def batches(
        self, where: Where = None, *, order: Order = "asc", batch_size: int = 65_536, **filters: Any
    ) -> Iterator[pa.RecordBatch]:
        """Matching entries as Arrow record batches, for exports of any size in constant memory."""
        flt = self._filter(where, filters)
        stmt = self._select(_FRAME_COLUMNS, flt, order, None)
        # time ranges, two read at once (two reader processes on SQLite), in order
        cond = compile_filter(flt, self.dialect)
        ranges = self._reader.split_by_time(stmt, _C.ts, cond, descending=order == "desc")
        return self._reader.ranged_batches(ranges, batch_size)

    def query(
        self,
        where: Where = None,
        *,
        backend: str = "pandas",
        limit: int | None = None,
        order: Order = "desc",
        **filters: Any,
    ) -> Any:
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
        stmt = self._select(_FRAME_COLUMNS, flt, order, limit)
        if limit is not None:
            return batches_to_backend(self._reader.batches(stmt), backend)
        # time ranges, two read at once (two reader processes on SQLite), in order
        cond = compile_filter(flt, self.dialect)
        ranges = self._reader.split_by_time(stmt, _C.ts, cond, descending=order == "desc")
        return batches_to_backend(self._reader.ranged_batches(ranges), backend)

    def search(
        self,
        query: str,
        *,
        backend: str = "pandas",
        limit: int | None = None,
        order: Order = "desc",
        **filters: Any,
    ) -> Any:
        """Entries matching a search-bar query (see :mod:`auditlens.query.search`).

        Example:
            >>> import auditlens as al
            >>> al.open_store("sqlite://").search('action:webhook.* -result:success').shape[1]
            19
        """
        return self.query(parse_search(query), backend=backend, limit=limit, order=order, **filters)

    def count(self, where: Where = None, **filters: Any) -> int:
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
        **filters: Any,
    ) -> list[dict[str, Any]]:
        """Matching entries as a list of dicts in the JSON shape (with chain fields)."""
        flt = self._filter(where, filters)
        stmt = self._select(_ROW_COLUMNS, flt, order, limit)
        with self.engine.connect() as conn:
            return [row_to_entry(r, chain=True) for r in conn.execute(stmt).mappings()]

    def page(
        self,
        where: Where = None,
        *,
        limit: int = 100,
        cursor: str | None = None,
        order: Order = "desc",
        **filters: Any,
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

    def stats(self, where: Where = None, **filters: Any) -> Stats:
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
        from auditlens.schema import format_timestamp

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

    # -- detection -----------------------------------------------------------------
    def detect(
        self,
        name_or_all: str = "all",
        where: Where = None,
        *,
        config: Mapping[str, Any] | None = None,
        context: bool = True,
        backend: str = "polars",
        **filters: Any,
    ) -> Any:
        """Run one detector (``config`` = its parameters) or all of them on matching entries.

        With ``context`` (the default) the organizations' stored context (time zones,
        business hours, workdays, people: :mod:`auditlens.context`) sets the parameters
        first; ``config`` overrides it.
        """
        from auditlens import detect

        df = self.query(where, backend=backend, order="asc", **filters)
        if context:
            config = _context.with_context(self, config, name_or_all)
        if name_or_all == "all":
            return detect.run_all(df, config)
        return detect.run(name_or_all, df, **dict(config or {}))

    # -- organization context (kept as audit entries: auditlens.context) ---------------
    def set_org_profile(
        self,
        organization_id: str,
        *,
        name: str | None = None,
        timezone: str | None = None,
        hours: str | None = None,
        workdays: str | Iterable[str] | None = None,
        by: str | None = None,
    ) -> _context.OrgProfile:
        """Set an organization's name, time zone, business hours or workdays.

        Recorded as an ``organization.profile_changed`` entry; see
        :func:`auditlens.context.set_org_profile`.
        """
        return _context.set_org_profile(
            self,
            organization_id,
            name=name,
            timezone=timezone,
            hours=hours,
            workdays=workdays,
            by=by,
        )

    def org_profile(self, organization_id: str) -> _context.OrgProfile:
        """An organization's current context (defaults when never set)."""
        return _context.org_profile(self, organization_id)

    def set_people(
        self,
        organization_id: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        replace_all: bool = True,
        by: str | None = None,
    ) -> _context.PeopleChange:
        """Set an organization's people (email, timezone, name, role, manager)."""
        return _context.set_people(self, organization_id, rows, replace_all=replace_all, by=by)

    def people(self, organization_id: str) -> list[_context.Person]:
        """An organization's people, sorted by email."""
        return _context.people(self, organization_id)

    # -- output ----------------------------------------------------------------------
    def export(
        self,
        out: Any,
        *,
        format: str = "csv",
        fields: Any = None,
        query: Where = None,
        **options: Any,
    ) -> Any:
        """Export matching entries to a file, ``"-"`` or a binary stream.

        ``query`` is a search string or :class:`~auditlens.query.Filter`; keyword filters
        and the options of :func:`auditlens.export.export` (``gzip``, ``record``,
        ``manifest``) pass through. Returns an :class:`~auditlens.export.ExportResult`.

        Example:
            >>> import auditlens as al, io
            >>> buf = io.BytesIO()
            >>> al.open_store("sqlite://").export(buf, format="csv", fields="action,result").rows
            0
            >>> buf.getvalue()
            b'action,result\\n'
        """
        from auditlens.export.writers import export

        return export(self, out, format=format, fields=fields, where=query, **options)

    # -- tamper evidence -----------------------------------------------------------
    def checkpoint(
        self, organization_id: str, signing_key: Any, *, origin: str | None = None
    ) -> Any:
        """Sign and record the organization's current Merkle tree head.

        Returns a :class:`~auditlens.chain.checkpoints.CheckpointRecord` whose ``note``
        is a C2SP signed checkpoint. Meant to run from cron (``auditlens checkpoint``).
        """
        from auditlens.chain.checkpoints import create_checkpoint

        return create_checkpoint(self, organization_id, signing_key, origin=origin)

    def inclusion_proof(self, audit_id: str, checkpoint: Any = None) -> Any:
        """Proof that an entry is in its organization's tree at a checkpoint (default: latest)."""
        from auditlens.chain.checkpoints import make_inclusion_proof

        return make_inclusion_proof(self, audit_id, checkpoint)

    def consistency_proof(
        self, old_checkpoint: Any, new_checkpoint: Any = None, *, organization_id: str | None = None
    ) -> Any:
        """Proof that an older checkpoint's tree is a prefix of a newer one (default: now)."""
        from auditlens.chain.checkpoints import CheckpointRecord, make_consistency_proof
        from auditlens.chain.notes import parse_checkpoint, parse_note

        org = organization_id
        if org is None and isinstance(old_checkpoint, CheckpointRecord):
            org = old_checkpoint.organization_id
        if org is None and isinstance(old_checkpoint, str):
            org = parse_checkpoint(parse_note(old_checkpoint).body).origin.rsplit("/", 1)[-1]
        if org is None:
            raise FilterError("pass organization_id with a tree size")
        return make_consistency_proof(self, org, old_checkpoint, new_checkpoint)

    # -- streaming -------------------------------------------------------------
    def _max_id(self, conn: Connection | None = None) -> int:
        stmt = select(func.coalesce(func.max(_C.id), 0))
        if conn is not None:
            return int(conn.execute(stmt).scalar_one())
        with self.engine.connect() as c:
            return int(c.execute(stmt).scalar_one())

    def stream(
        self,
        where: Where = None,
        *,
        since: str | datetime | timedelta | None = None,
        poll_interval: float = 1.0,
        stop: threading.Event | Callable[[], bool] | None = None,
        max_events: int | None = None,
        batch_size: int = 1000,
        **filters: Any,
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
            last_id = self._max_id()
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
        sent = 0

        def stopped() -> bool:
            if stop is None:
                return False
            return stop.is_set() if isinstance(stop, threading.Event) else bool(stop())

        while not stopped():
            stmt = (
                select(*_ROW_COLUMNS)
                .where(and_(_C.id > last_id, cond))
                .order_by(_C.id)
                .limit(batch_size)
            )
            with self.engine.connect() as conn:
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
