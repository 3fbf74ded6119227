"""``sync_lake``: copy the trail, incrementally, into a Hive-partitioned Parquet lake.

Each sync reads, per organization, the entries after the last seq the lake's manifests
record (the lake is the state: no table in the store remembers it), checks that they
continue the lake's chain (first ``seq`` and ``prev_hash``), and writes them under
``organization_id=…/date=YYYY-MM-DD/`` (UTC date of the entry) as zstd Parquet. Files grow
to a target size: a partition's last file smaller than the target is rewritten together
with the new rows (after checking its SHA-256) instead of getting a small neighbour, so
frequent syncs do not leave a swarm of small files. Then one manifest records the sync
(see :mod:`auditlens.lake.layout`).

Data files get names no earlier sync used (``part-s<sync>-<first seq>-<last seq>``) and
are written in place (on S3 as one PUT); the manifest is written last and whole, never over
an existing one (locally through a temporary name and a hard link, on S3 as one PUT with
``If-None-Match: *``) and is the commit point: readers
and verify trust only the files a manifest lists. Files a sync replaced are removed only
after its manifest. A sync that fails removes what it wrote, and the next sync removes
anything no manifest lists (a killed run's leftovers), so the lake always reads as of its
last manifest. ``to`` is a folder or ``s3://bucket/prefix``
(:class:`~auditlens.lake.layout.LakeStorage`).

Files are encoded in memory (SHA-256 over the encoded bytes: nothing is read back) and
written by a pool of threads while the next rows are read from the store. The rows are read
one of two ways, with the same files and manifest as the result:

- **by organization** (an incremental sync, one organization, or ``through_seq``): each
  organization's entries after the lake's last seq, by the ``(organization_id, seq)`` key;
- **in bulk** (the entries the lake lacks are at least half the store's: a first sync): the
  table once in row-id order, in chunks of :data:`BULK_CHUNK_ROWS` (two id ranges read at
  once by the store's two readers; memory bounded by a few chunks for any store size), each
  chunk sorted by (organization, seq). An organization's seqs in a chunk must be contiguous
  and continue the lake's or the previous chunk's (seq and ``prev_hash``); if not (seq
  order is not row-id order across chunks, or the lake is not continued) the attempt's files
  are removed and the sync runs by organization, which reports a real break. Each
  organization's last partition in a chunk is held back for the next chunk, so a partition
  spanning chunks still gets one file.

Example:
    >>> import tempfile
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> _ = store.append([{"actor": {"type": "system"}, "action": "auth.login",
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11", "result": "success"}])
    >>> lake = tempfile.mkdtemp()
    >>> sync_lake(store, lake).rows, sync_lake(store, lake).rows
    (1, 0)
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import func, select

from auditlens.chain.checkpoints import list_checkpoints
from auditlens.errors import ArchiveError, ConfigError
from auditlens.frames import FRAME_SCHEMA
from auditlens.lake.layout import (
    FORMAT,
    MANIFESTS,
    LakeFile,
    LakeState,
    LakeStorage,
    manifest_name,
    one_writer,
    read_state,
)
from auditlens.schema import ip_key
from auditlens.store.backend import FRAME_COLUMNS, entries
from auditlens.store.store import Store

__all__ = [
    "AUTO_DATE_ROWS",
    "TARGET_FILE_BYTES",
    "TIME_PARTITIONS",
    "SyncResult",
    "choose_partition",
    "lake_frame",
    "sync_lake",
]

#: target size of a Parquet file: a partition's files grow to it before a new one starts.
TARGET_FILE_BYTES = 128 * 1024 * 1024
#: rows per Parquet row group.
ROW_GROUP_ROWS = 128 * 1024
#: the time partition (inner Hive folder) → its strftime format: a UTC day (the default),
#: or a month (``month=YYYY-MM``, the retention archive's folders: fewer, larger files
#: when organizations log a few hundred entries a day).
TIME_PARTITIONS = {"date": "%Y-%m-%d", "month": "%Y-%m"}
#: ``partition="auto"`` (the default of a new lake) picks day partitions when the trail holds
#: at least this many entries per organization-day (a day file of ~150 KB and more), month
#: partitions below: every file costs each reader ~0.1 ms plus ~10 µs per column whatever
#: its size, so at a few dozen entries a day the files' overhead outweighs their rows
#: (docs/SCALE.md, "Choosing the partition").
AUTO_DATE_ROWS = 500
#: threads that encode and write files (pyarrow releases the GIL while it encodes)
WRITE_THREADS = 4
_C = entries.c
_EPOCH = date(1970, 1, 1)


@dataclass
class SyncResult:
    """What one :func:`sync_lake` call added."""

    root: str
    sync: int | None  #: the manifest's number (None: nothing new, nothing written)
    rows: int = 0
    organizations: dict[str, tuple[int, int]] = field(default_factory=dict)  #: org → seq range
    files_written: int = 0
    files_replaced: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    partition: str = "date"  #: the lake's time partition (``date`` or ``month``)


def lake_frame(table: pa.Table, partition: str = "date") -> pl.DataFrame:
    """Entries (:data:`~auditlens.frames.FRAME_SCHEMA`) → the rows of lake files: the time
    partition's value (UTC) and ``ip_key`` added, each distinct address keyed once.

    Example:
        >>> lake_frame(FRAME_SCHEMA.empty_table()).columns[-2:]
        ['date', 'ip_key']
    """
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    ips = [a for a in frame["ip_address"].unique().to_list() if a is not None]
    keys = {a: ip_key(a) for a in ips}
    return frame.with_columns(
        pl.col("timestamp")
        .dt.convert_time_zone("UTC")
        .dt.strftime(TIME_PARTITIONS[partition])
        .alias(partition),
        pl.col("ip_address")
        .replace_strict(keys, default=None, return_dtype=pl.Utf8)
        .alias("ip_key"),
    )


@one_writer  # one writer at a time: a sync and a retention run never share a manifest number
def sync_lake(
    store: Store,
    to: str | os.PathLike[str],
    *,
    organization_id: str | None = None,
    target_file_bytes: int = TARGET_FILE_BYTES,
    row_group_rows: int = ROW_GROUP_ROWS,
    partition: str | None = None,
    through_seq: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SyncResult:
    """Append the entries the lake at ``to`` does not hold yet (every organization, or one).

    Args:
        to: the lake's folder (created if missing), or ``s3://bucket/prefix`` (endpoint,
            region and credentials from the environment: see
            :class:`~auditlens.lake.layout.LakeStorage`).
        organization_id: only this organization.
        target_file_bytes: a partition's files grow to about this size (compaction).
        row_group_rows: rows per Parquet row group.
        partition: the time partition of a new lake, ``"date"``, ``"month"`` (see
            :data:`TIME_PARTITIONS`) or ``"auto"`` (the default: :func:`choose_partition`
            picks by the trail's density); an existing lake keeps its own.
        through_seq: stop at this seq (retention archives exactly the range it removes).
        progress: called with the number of entries written since the last call.

    Raises:
        ArchiveError: the store's entries do not continue the lake's chain (entries the
            lake is missing were removed by retention, or the store and the lake differ),
            a file the sync would compact does not match its manifest, a file the
            manifests list is missing, or another sync or retention run is writing the lake.
        ConfigError: an unknown partition, or another one than the existing lake's.
    """
    t0 = time.perf_counter()
    where = LakeStorage.at(to)
    if where.local:
        Path(where.base).mkdir(parents=True, exist_ok=True)
    state = read_state(where)
    if partition is not None and partition not in (*TIME_PARTITIONS, "auto"):
        raise ConfigError(
            f"partition must be one of {', '.join(TIME_PARTITIONS)} or auto, got {partition!r}"
        )
    if state.manifests and partition not in (None, "auto", state.partition):
        raise ConfigError(
            f"{where.url}: this lake is partitioned by {state.partition}, not {partition}"
        )
    if state.manifests:
        part_by = state.partition
    elif partition in (None, "auto"):
        part_by = choose_partition(store, organization_id)
    else:
        part_by = partition
    number = state.last_sync + 1
    heads = _store_heads(store, organization_id)
    if through_seq is not None:
        heads = [(o, low, min(top, through_seq)) for o, low, top in heads]
    orgs = [o for o, _, top in heads if top > _after(state, o)]  # only organizations with news
    if orgs:  # nothing new: nothing is written, and the lake is not listed either
        _remove_leftovers(where, state)
    # most of the table is new (a first sync): read it once in table order (see _Bulk)
    bulk = organization_id is None and through_seq is None and _mostly_new(heads, state)
    reported = 0  # entries the progress callback was told of (a bulk attempt's)
    while True:
        run = _Run(where, state, part_by, number, target_file_bytes, row_group_rows, progress)
        run.unreported = -reported  # what an abandoned attempt reported is not told again
        run.lows = {o: low for o, low, _ in heads}
        try:
            if bulk:
                run.bulk(store)
            else:
                run.per_organization(store, orgs, through_seq)
            result = run.commit(store)
            result.partition = part_by
        except _NotInTableOrder:
            run.abandon()
            reported += run.reported
            bulk = False  # an organization's seqs are not in table order: read it by seq
            continue
        except BaseException:
            run.abandon()
            raise
        finally:
            run.writer.shutdown(wait=True)
        result.seconds = time.perf_counter() - t0
        return result


def _store_heads(store: Store, organization_id: str | None) -> list[tuple[str, int, int]]:
    """Each organization's lowest and highest seq (an index-only scan of the
    (organization, seq) key)."""
    stmt = select(_C.organization_id, func.min(_C.seq), func.max(_C.seq)).group_by(
        _C.organization_id
    )
    if organization_id is not None:
        stmt = stmt.where(_C.organization_id == organization_id)
    with store.connect() as conn:
        return sorted((str(o), int(low), int(top)) for o, low, top in conn.execute(stmt))


def _after(state: LakeState, org: str) -> int:
    head = state.heads.get(org)
    return head.last_seq if head is not None else 0


def _mostly_new(heads: list[tuple[str, int, int]], state: LakeState) -> bool:
    """Whether the entries the lake lacks are at least half of the store's (each
    organization's seqs are contiguous: its count is its seq span)."""
    held = sum(top - low + 1 for _, low, top in heads)
    new = sum(max(0, top - max(_after(state, o), low - 1)) for o, low, top in heads)
    return new > 0 and 2 * new >= held


class _NotInTableOrder(Exception):
    """An organization's entries do not come in seq order in table order: the bulk read
    cannot tell that it saw them all in order; the sync starts over organization by
    organization."""


#: rows of the store read, sorted and written at a time by a bulk sync (memory holds about
#: six such chunks whatever the store's size: two read ahead by the two readers, one being
#: sorted and its sorted copy, two being written; 1M demo entries: 689 MB peak RSS)
BULK_CHUNK_ROWS = 100_000


#: an organization's rows held back by a bulk sync: (rows, their partition keys, the chunk
#: they were last part of)
_Held = tuple[pa.Table, "np.ndarray[Any, Any]", int]


@dataclass
class _Segment:
    """An organization's range in the manifest being built."""

    first_seq: int
    prev_hash: str
    last_seq: int
    last_entry_hash: str
    rows: int


@dataclass
class _Run:
    """One attempt at a sync: the files it started, the manifest it builds."""

    where: LakeStorage
    state: LakeState
    part_by: str
    number: int
    target: int
    group_rows: int
    progress: Callable[[int], None] | None
    open_files: dict[str, LakeFile] = field(init=False)
    folders: set[str] = field(default_factory=set)  # every folder a file was started in
    writes: list[Future[list[LakeFile]]] = field(default_factory=list)
    replaces: list[LakeFile] = field(default_factory=list)
    segments: dict[str, _Segment] = field(default_factory=dict)
    ip_keys: dict[str, str | None] = field(default_factory=dict)  # address → ip_key
    writer: ThreadPoolExecutor = field(init=False)
    reported: int = 0  # entries given to ``progress``
    unreported: int = 0  # negative: entries not to report (an abandoned attempt's)
    #: each organization's lowest seq in the store when the sync started (where a first
    #: sync of it must start; one that appeared since starts at 1)
    lows: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.open_files = _open_files(self.state, self.target)
        # the rows are read (the store's readers: ADBC in two helper processes on SQLite,
        # two connections on PostgreSQL) while these threads encode and write the files
        self.writer = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="lake-write")

    # -- reading --------------------------------------------------------------------
    def per_organization(self, store: Store, orgs: list[str], through: int | None) -> None:
        """Each organization's new entries, read by its (organization, seq) key."""
        for org, table in _read(store, [(o, _after(self.state, o)) for o in orgs], through):
            if table.num_rows == 0:
                continue
            seq, hashes = table.column("seq"), table.column("entry_hash")
            first, last = int(seq[0].as_py()), int(seq[-1].as_py())
            first_prev = str(table.column("prev_hash")[0].as_py())
            head = self.state.heads.get(org)
            after = _after(self.state, org)
            if head is not None and (first != after + 1 or first_prev != head.last_entry_hash):
                raise ArchiveError(
                    f"{self.where.url}: organization {org}: the store's next entry (seq {first}) "
                    f"does not continue the lake's seq {after} (removed by retention, or "
                    "another store?)"
                )
            rows, keys = self._prepared(table)
            self._write(org, rows, keys)
            last_hash = str(hashes[-1].as_py())
            self.segments[org] = _Segment(first, first_prev, last, last_hash, table.num_rows)
            self._report(table.num_rows)

    def bulk(self, store: Store) -> None:
        """Every new entry, reading the table once in row-id order.

        The table is read in chunks of :data:`BULK_CHUNK_ROWS` (two ranges at once by the
        store's two readers), each chunk sorted by (organization, seq); an organization's
        entries in a chunk must be contiguous and continue the ones before (the lake's, or
        the previous chunk's: first ``seq`` and ``prev_hash``), else
        :class:`_NotInTableOrder`. The rows of an organization's last partition in a chunk
        are held back and written with the next chunk's, so a partition spanning chunks
        still gets one file."""
        step = BULK_CHUNK_ROWS
        with store.connect() as conn:
            low = conn.execute(select(func.min(_C.id))).scalar()
            if low is None:
                return
            # below every append still in flight (PostgreSQL commits appends to different
            # organizations in any order): a range read later never misses a committed row
            high = store.stream_top(conn)
            # one range per `step` ids that hold rows: the ranges follow the rows, not the id
            # span (one row at id 10**12 adds one range, not ten million)
            starts: list[int] = []
            start: int | None = int(low)
            while start is not None and start <= high:
                starts.append(start)
                start = conn.execute(
                    select(func.min(_C.id)).where(_C.id >= start + step, _C.id <= high)
                ).scalar()
        stmts = [
            select(*FRAME_COLUMNS).where(_C.id >= a, _C.id < min(a + step, high + 1))
            for a in starts
        ]
        held: dict[str, _Held] = {}
        pending: list[list[Future[list[LakeFile]]]] = []
        batches: list[pa.RecordBatch] = []
        count = chunks = 0
        for batch in store.read_batches_of(stmts):
            batches.append(batch)
            count += batch.num_rows
            if count >= BULK_CHUNK_ROWS:
                chunks += 1
                pending.append(self._chunk(batches, held, chunks))
                batches, count = [], 0
                if len(pending) > 2:  # the writers are behind: let them catch up
                    for job in pending.pop(0):
                        job.result()
        if batches:
            self._chunk(batches, held, chunks + 1)
        for org, (rows, keys, _) in held.items():
            self._write(org, rows, keys)

    def _chunk(
        self, batches: list[pa.RecordBatch], held: dict[str, _Held], number: int
    ) -> list[Future[list[LakeFile]]]:
        """Chunk ``number`` of the table (row-id order) → its organizations' files (the jobs
        started); each organization's last partition stays in ``held``."""
        started = len(self.writes)
        table = pa.Table.from_batches(batches, schema=FRAME_SCHEMA)
        orgs = pc.dictionary_encode(table.column("organization_id").combine_chunks())
        names = [str(o) for o in orgs.dictionary.to_pylist()]
        codes = _numbers(orgs.indices)
        seq = _numbers(table.column("seq"))
        after = np.array([_after(self.state, o) for o in names], dtype=np.int64)
        new = np.flatnonzero(seq > after[codes])  # rows the lake holds already are skipped
        order = new[np.lexsort((seq[new], codes[new]))]
        codes, seq = codes[order], seq[order]
        if len(seq) == 0:
            return []
        starts = np.flatnonzero(np.diff(codes)) + 1
        runs = np.diff(seq)
        runs[starts - 1] = 1  # an organization's first row follows another's last
        if bool((runs != 1).any()):
            raise _NotInTableOrder  # a gap (or a repeat) in an organization's seqs
        rows, keys = self._prepared(table.take(_indices(order)))
        prev = rows.column("prev_hash")
        hashes = rows.column("entry_hash")
        bounds = [0, *starts.tolist(), len(seq)]
        for start, end in itertools.pairwise(bounds):
            org = names[int(codes[start])]
            first, last = int(seq[start]), int(seq[end - 1])
            first_prev = str(prev[start].as_py())
            seg = self.segments.get(org)
            head = self.state.heads.get(org)
            if seg is not None:
                expected = (seg.last_seq + 1, seg.last_entry_hash)
            elif head is not None:
                expected = (head.last_seq + 1, head.last_entry_hash)
            else:  # a first sync of this organization: from its lowest seq in the store
                expected = (self.lows.get(org, 1), first_prev)
            if (first, first_prev) != expected:
                raise _NotInTableOrder  # (or a gap the per-organization read reports)
            last_hash = str(hashes[end - 1].as_py())
            if seg is None:
                self.segments[org] = _Segment(first, first_prev, last, last_hash, end - start)
            else:
                seg.last_seq, seg.last_entry_hash = last, last_hash
                seg.rows += end - start
            part, part_keys = rows.slice(start, end - start), keys[start:end]
            if org in held:
                before, before_keys, _ = held.pop(org)
                part = pa.concat_tables([before, part])
                part_keys = np.concatenate([before_keys, part_keys])
            hold = part_keys == part_keys[-1]  # the last partition may go on in the next chunk
            cut = int(np.argmax(hold))
            if bool(hold[cut:].all()):  # a tail (entries in time order): slices
                held[org] = (part.slice(cut), part_keys[cut:], number)
                if cut:
                    self._write(org, part.slice(0, cut), part_keys[:cut])
            else:
                keep, go = np.flatnonzero(hold), np.flatnonzero(~hold)
                held[org] = (part.take(_indices(keep)), part_keys[keep], number)
                self._write(org, part.take(_indices(go)), part_keys[go])
        for org, (part, part_keys, seen) in list(held.items()):
            if seen == number - 1:  # not in this chunk: a copy, not a slice keeping its chunk
                copy = part.take(_indices(np.arange(part.num_rows)))
                held[org] = (copy, part_keys, number)
        self._report(len(seq))
        return self.writes[started:]

    def _report(self, rows: int) -> None:
        """Tell ``progress`` of ``rows`` more entries (past those already told)."""
        self.unreported += rows
        if self.progress is not None and self.unreported > 0:
            self.progress(self.unreported)
            self.reported += self.unreported
            self.unreported = 0

    # -- writing --------------------------------------------------------------------
    def _prepared(self, table: pa.Table) -> tuple[pa.Table, np.ndarray[Any, Any]]:
        """Entries → the rows of lake files (without ``organization_id``, with ``ip_key``)
        and each row's time partition key."""
        keys = _partition_keys(table.column("timestamp"), self.part_by)
        rows = table.drop_columns(["organization_id"]).append_column(
            "ip_key", _ip_keys(table.column("ip_address"), self.ip_keys)
        )
        return rows, keys

    def _write(self, org: str, rows: pa.Table, keys: np.ndarray[Any, Any]) -> None:
        """Start the jobs writing an organization's rows (in seq order), partition by
        partition (each compacted with its partition's open file, once)."""
        parts = _partitions(org, rows, keys, self.part_by, self.open_files)
        self.replaces.extend(p[3] for p in parts if p[3] is not None)
        self.folders.update(p[0] for p in parts)
        for k in range(0, len(parts), _PARTS_PER_JOB):
            job = _Job(self.where, org, parts[k : k + _PARTS_PER_JOB], self.number, self.target)
            self.writes.append(self.writer.submit(job.run, self.group_rows))

    def commit(self, store: Store) -> SyncResult:
        """Wait for the files, then write the manifest (the commit point), then remove the
        files it replaced."""
        where, state, number = self.where, self.state, self.number
        result = SyncResult(where.url, None)
        files = [f for job in self.writes for f in job.result()]
        if not self.segments:
            return result
        # the order a sync organization by organization writes them in
        files.sort(key=lambda f: (f.organization_id, f.path))
        replaces = [
            f.path for f in sorted(self.replaces, key=lambda f: (f.organization_id, f.path))
        ]
        segments: dict[str, dict[str, object]] = {}
        for org in sorted(self.segments):
            seg = self.segments[org]
            head = state.heads.get(org)
            cp = _covering_checkpoint(store, org, seg.last_seq)
            segments[org] = {
                "first_seq": seg.first_seq,
                "last_seq": seg.last_seq,
                "rows": seg.rows,
                "prev_hash": seg.prev_hash,
                "last_entry_hash": seg.last_entry_hash,
                "checkpoint": cp if cp and (head is None or cp != head.checkpoint) else None,
            }
            result.organizations[org] = (seg.first_seq, seg.last_seq)
            result.rows += seg.rows
        manifest = {
            "format": FORMAT,
            "sync": number,
            "partition": self.part_by,
            "previous_sha256": state.last_sha256,
            "created_at_ms": int(time.time() * 1000),
            "organizations": segments,
            "files": [f.to_json() for f in files],
            "replaces": replaces,
        }
        # the commit point: one whole file, never over another writer's (a link locally,
        # a put-if-absent on S3, where no lock keeps a second writer out)
        try:
            where.create(
                f"{MANIFESTS}/{manifest_name(number)}",
                orjson.dumps(manifest, option=orjson.OPT_INDENT_2),
            )
        except FileExistsError:
            raise ArchiveError(
                f"{where.uri(MANIFESTS + '/' + manifest_name(number))}: written by another "
                "lake sync or retention run meanwhile; this sync wrote nothing: run it again"
            ) from None
        for rel in replaces:
            where.remove(rel)
        result.sync = number
        result.files_written = len(files)
        result.files_replaced = len(replaces)
        result.bytes_written = sum(f.bytes for f in files)
        return result

    def abandon(self) -> None:
        """A failed attempt: stop the writers and remove every file it may have written."""
        self.writer.shutdown(wait=True, cancel_futures=True)
        _remove_started(self.where, self.folders, self.number)


def choose_partition(store: Store, organization_id: str | None = None) -> str:
    """The time partition ``partition="auto"`` gives a new lake of ``store``'s entries (of
    one organization, or all): ``"date"`` when they average at least :data:`AUTO_DATE_ROWS`
    entries per organization-day (days from each organization's first entry to its last),
    ``"month"`` below (and for an empty store, whose density is unknown: a lake's partition
    never changes, and month is the safe side). One index-only scan of the
    (organization, time) index.

    Example:
        >>> import auditlens as al
        >>> choose_partition(al.open_store("sqlite://"))
        'month'
    """
    stmt = select(func.count(), func.min(_C.ts), func.max(_C.ts)).group_by(_C.organization_id)
    if organization_id is not None:
        stmt = stmt.where(_C.organization_id == organization_id)
    with store.connect() as conn:
        spans = conn.execute(stmt).all()
    rows = sum(int(n) for n, _, _ in spans)
    days = sum((int(hi) - int(lo)) // 86_400_000 + 1 for _, lo, hi in spans)
    return "date" if days and rows >= AUTO_DATE_ROWS * days else "month"


def _read(
    store: Store, ranges: list[tuple[str, int]], through: int | None = None
) -> Iterator[tuple[str, pa.Table]]:
    """Each organization's entries after its seq (up to ``through`` when given), in seq order,
    one table per organization (in the order given; an organization without rows is skipped)."""
    stmts = []
    for org, after in ranges:
        stmt = select(*FRAME_COLUMNS).where(_C.organization_id == org, _C.seq > after)
        if through is not None:
            stmt = stmt.where(_C.seq <= through)
        stmts.append(stmt.order_by(_C.seq))
    current: str | None = None
    batches: list[pa.RecordBatch] = []
    for batch in store.read_batches_of(stmts):  # a batch holds one statement's rows
        if batch.num_rows == 0:
            continue
        org = str(batch.column("organization_id")[0].as_py())
        if org != current and batches:
            assert current is not None
            yield current, pa.Table.from_batches(batches, schema=FRAME_SCHEMA)
            batches = []
        current = org
        batches.append(batch)
    if batches:
        assert current is not None
        yield current, pa.Table.from_batches(batches, schema=FRAME_SCHEMA)


def _open_files(state: LakeState, target: int) -> dict[str, LakeFile]:
    """Each partition folder's newest current file, while it is below the target size
    (the file the next rows of that partition are compacted into)."""
    newest: dict[str, LakeFile] = {}
    for f in state.files.values():
        folder = f.path.rsplit("/", 1)[0]
        if folder not in newest or f.last_seq > newest[folder].last_seq:
            newest[folder] = f
    return {k: f for k, f in newest.items() if f.bytes < target}


_Part = tuple[str, pa.Table, int, "LakeFile | None"]


def _partition_keys(timestamps: pa.ChunkedArray, partition: str) -> np.ndarray[Any, Any]:
    """Each entry's time partition as an integer (UTC day since 1970, or year × 12 + month
    - 1): integer arithmetic on a million timestamps, formatted once per partition."""
    keys: np.ndarray[Any, Any]
    if partition == "date":
        keys = _numbers(pc.cast(timestamps, pa.int64())) // 86_400_000
    else:
        year = _numbers(pc.year(timestamps)).astype(np.int64)
        keys = year * 12 + _numbers(pc.month(timestamps)) - 1
    return keys


def _numbers(values: pa.Array | pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """A numeric Arrow array without nulls as numpy, read off its buffer (``to_numpy``
    imports pandas on first use: ~1 CPU-second)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    assert values.null_count == 0
    dtype = np.dtype(values.type.to_pandas_dtype())
    if len(values) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(
        values.buffers()[1], dtype=dtype, count=len(values), offset=values.offset * dtype.itemsize
    )


def _indices(positions: np.ndarray[Any, Any]) -> pa.Array:
    """Row positions as an Arrow array for ``take``, built on the numpy buffer (``pa.array``
    imports pandas on first use: ~1 CPU-second)."""
    data = np.ascontiguousarray(positions, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def _partition_name(key: int, partition: str) -> str:
    if partition == "date":
        return (_EPOCH + timedelta(days=key)).isoformat()
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def _ip_keys(addresses: pa.ChunkedArray, known: dict[str, str | None]) -> pa.Array:
    """``ip_key`` of each address, computed once per distinct address (``known``: the
    addresses keyed already, added to)."""
    distinct = pc.unique(addresses)
    values: list[str | None] = []
    for a in distinct.to_pylist():
        if a is None:
            values.append(None)
        elif a in known:
            values.append(known[a])
        else:
            values.append(known.setdefault(a, ip_key(a)))
    # (through polars: pyarrow's pa.array imports pandas on first use, ~1 CPU-second)
    keys = pl.Series(values, dtype=pl.Utf8).to_arrow().cast(pa.string())
    return keys.take(pc.index_in(addresses, value_set=distinct))


def _partitions(
    org: str,
    rows: pa.Table,
    keys: np.ndarray[Any, Any],
    partition: str,
    open_files: dict[str, LakeFile],
) -> list[_Part]:
    """One organization's new rows (in seq order, without the partition columns and with
    ``ip_key``; ``keys``: their time partitions), partition by partition: (folder, rows,
    first row, the partition's open file, taken out of ``open_files``: it is compacted
    once). The rows are one Arrow table grouped by partition (in seq order within each),
    sliced without copies. The values are those of :func:`lake_frame`."""
    if len(keys) > 1 and bool((keys[1:] < keys[:-1]).any()):
        # entries logged out of time order: group each partition's (a stable sort keeps seq)
        order = np.argsort(keys, kind="stable")
        rows, keys = rows.take(_indices(order)), keys[order]
    starts = [0, *(np.flatnonzero(np.diff(keys)) + 1).tolist(), len(keys)]
    out: list[_Part] = []
    for start, end in itertools.pairwise(starts):
        folder = f"organization_id={org}/{partition}={_partition_name(int(keys[start]), partition)}"
        out.append((folder, rows.slice(start, end - start), start, open_files.pop(folder, None)))
    return out


#: partitions per write job (a job is one thread's unit; fewer, larger jobs cost less)
_PARTS_PER_JOB = 64
#: below this many rows a file is written for speed (snappy, no dictionary, statistics on
#: seq, time and ip_key): small files are set up far more often than they are read, and
#: they are rewritten with zstd when compaction grows them past it
SMALL_FILE_ROWS = 1024
_SMALL_STATS = ["seq", "timestamp", "ip_key"]


@dataclass
class _Job:
    """Partitions' new rows → their files: each compacted with its partition's open file,
    encoded in memory (SHA-256 of the bytes), written whole."""

    where: LakeStorage
    org: str
    parts: list[_Part]
    number: int
    target: int

    def run(self, group_rows: int) -> list[LakeFile]:
        out: list[LakeFile] = []
        for folder, rows, _, open_ in self.parts:
            table = rows if open_ is None else self._compacted(rows, open_)
            for data, lo, hi, n in _encode(table, self.target, group_rows):
                name = f"{folder}/part-s{self.number:06d}-{lo:012d}-{hi:012d}.parquet"
                self.where.write_new(name, data)
                sha = hashlib.sha256(data).hexdigest()
                out.append(LakeFile(name, self.org, n, lo, hi, sha, data.size, self.number))
        return out

    def _compacted(self, rows: pa.Table, open_: LakeFile) -> pa.Table:
        data = self.where.read(open_.path)
        if hashlib.sha256(data).hexdigest() != open_.sha256:
            raise ArchiveError(
                f"{self.where.uri(open_.path)}: does not match manifest "
                f"{manifest_name(open_.sync)}; run `auditlens verify --lake` before "
                "syncing again"
            )
        old = pq.read_table(io.BytesIO(data))
        old = old.select(rows.column_names).cast(rows.schema)
        return pa.concat_tables([old, rows]).combine_chunks()


def _encode(
    table: pa.Table, target: int, group_rows: int
) -> Iterator[tuple[pa.Buffer, int, int, int]]:
    """``table`` as Parquet files of about ``target`` bytes (checked after each row
    group): (bytes, first seq, last seq, rows) per file."""
    seq = table.column("seq")
    # (the whole buffers' size, cheap, bounds a slice's ``nbytes``: ~35 µs for 20 columns)
    if table.num_rows < SMALL_FILE_ROWS and (
        table.get_total_buffer_size() < target or table.nbytes < target
    ):
        buf = pa.BufferOutputStream()
        pq.write_table(
            table,
            buf,
            compression="snappy",
            use_dictionary=False,
            write_statistics=_SMALL_STATS,
        )
        yield buf.getvalue(), int(seq[0].as_py()), int(seq[-1].as_py()), table.num_rows
        return
    if table.nbytes < target:  # compressed, it is smaller still
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf, row_group_size=group_rows, compression="zstd")
        yield buf.getvalue(), int(seq[0].as_py()), int(seq[-1].as_py()), table.num_rows
        return
    start = 0
    while start < table.num_rows:
        buf = pa.BufferOutputStream()
        end = start
        with pq.ParquetWriter(buf, table.schema, compression="zstd") as writer:
            while end < table.num_rows:
                chunk = table.slice(end, group_rows)
                writer.write_table(chunk, row_group_size=group_rows)
                end += chunk.num_rows
                if buf.tell() >= target:
                    break
        yield buf.getvalue(), int(seq[start].as_py()), int(seq[end - 1].as_py()), end - start
        start = end


def _remove_started(where: LakeStorage, folders: set[str], number: int) -> None:
    """A failed sync: remove every file it may have written (its names carry its number)."""
    ours = f"part-s{number:06d}-"
    for folder in sorted(folders):
        for rel in where.listing(folder):
            if rel.rsplit("/", 1)[-1].startswith(ours):
                where.remove(rel)


def _covering_checkpoint(store: Store, org: str, last_seq: int) -> str | None:
    """The newest stored checkpoint note whose tree the lake holds entirely."""
    notes = [c for c in list_checkpoints(store, org) if c.tree_size <= last_seq]
    return max(notes, key=lambda c: (c.tree_size, c.id)).note if notes else None


_OURS = re.compile(r"\.?part-s\d{6,}-\d+(?:-\d+)?\.parquet(?:\.tmp)?")


def _remove_leftovers(where: LakeStorage, state: LakeState) -> None:
    """Delete what a killed sync left: its temporary files and the Parquet files it named
    that no manifest lists. Files a sync does not name (a retention archive's, yours) stay.

    Only when every file the manifests list is there: otherwise a manifest is missing (or
    a file was removed), and the unlisted files may hold the only copy of rows (archived
    ones, removed from the store): nothing is deleted, the sync refuses."""
    present = where.listing()
    there = set(present)
    for f in state.files.values():
        if f.path not in there:
            raise ArchiveError(
                f"{where.uri(f.path)} (seq {f.first_seq}..{f.last_seq} of organization "
                f"{f.organization_id}), listed in {manifest_name(f.sync)}, is missing: the "
                "lake's manifests and files disagree (a manifest removed?); nothing was "
                "deleted or written: run `auditlens verify --lake`"
            )
    for rel in present:
        name = rel.rsplit("/", 1)[-1]
        if not rel.startswith("organization_id=") or not _OURS.fullmatch(name):
            continue
        if name.endswith(".tmp") or rel not in state.files:
            where.remove(rel)
