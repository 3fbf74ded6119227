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
written by a pool of threads while the next organizations are read from the store.

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
    result = SyncResult(where.url, None, partition=part_by)
    heads = _store_heads(store, organization_id)
    if through_seq is not None:
        heads = [(o, min(top, through_seq)) for o, top in heads]
    orgs = [o for o, top in heads if top > _after(state, o)]  # only organizations with news
    if orgs:  # nothing new: nothing is written, and the lake is not listed either
        _remove_leftovers(where, state)
    open_files = _open_files(state, target_file_bytes)
    folders: set[str] = set()  # every folder a file was started in (cleaned if the sync fails)
    writes: list[Future[list[LakeFile]]] = []
    replaces: list[str] = []
    segments: dict[str, dict[str, object]] = {}
    # the organizations' entries are read two at a time (the store's readers: ADBC in two
    # helper processes on SQLite, two connections on PostgreSQL) while the writers encode and
    # write the files of the ones before
    writer = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="lake-write")
    try:
        for org, table in _read(store, [(o, _after(state, o)) for o in orgs], through_seq):
            head = state.heads.get(org)
            after = _after(state, org)
            if table.num_rows == 0:
                continue
            seq, hashes = table.column("seq"), table.column("entry_hash")
            first, last = int(seq[0].as_py()), int(seq[-1].as_py())
            first_prev = str(table.column("prev_hash")[0].as_py())
            if head is not None and (first != after + 1 or first_prev != head.last_entry_hash):
                raise ArchiveError(
                    f"{where.url}: organization {org}: the store's next entry (seq {first}) "
                    f"does not continue the lake's seq {after} (removed by retention, or "
                    "another store?)"
                )
            parts = _partitions(org, table, part_by, open_files)
            replaces.extend(p[3].path for p in parts if p[3] is not None)
            folders.update(p[0] for p in parts)
            for k in range(0, len(parts), _PARTS_PER_JOB):
                job = _Job(where, org, parts[k : k + _PARTS_PER_JOB], number, target_file_bytes)
                writes.append(writer.submit(job.run, row_group_rows))
            cp = _covering_checkpoint(store, org, last)
            segments[org] = {
                "first_seq": first,
                "last_seq": last,
                "rows": table.num_rows,
                "prev_hash": first_prev,
                "last_entry_hash": str(hashes[-1].as_py()),
                "checkpoint": cp if cp and (head is None or cp != head.checkpoint) else None,
            }
            result.organizations[org] = (first, last)
            result.rows += table.num_rows
            if progress is not None:
                progress(table.num_rows)
        files = [f for job in writes for f in job.result()]
        if not segments:
            result.seconds = time.perf_counter() - t0
            return result
        manifest = {
            "format": FORMAT,
            "sync": number,
            "partition": part_by,
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
    except BaseException:
        writer.shutdown(wait=True, cancel_futures=True)
        _remove_started(where, folders, number)
        raise
    finally:
        writer.shutdown(wait=True)
    for rel in replaces:
        where.remove(rel)
    result.sync = number
    result.files_written = len(files)
    result.files_replaced = len(replaces)
    result.bytes_written = sum(f.bytes for f in files)
    result.seconds = time.perf_counter() - t0
    return result


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


def _store_heads(store: Store, organization_id: str | None) -> list[tuple[str, int]]:
    """Each organization's highest seq (an index-only scan of the (organization, seq) key)."""
    stmt = select(_C.organization_id, func.max(_C.seq)).group_by(_C.organization_id)
    if organization_id is not None:
        stmt = stmt.where(_C.organization_id == organization_id)
    with store.connect() as conn:
        return sorted((str(o), int(top)) for o, top in conn.execute(stmt))


def _after(state: LakeState, org: str) -> int:
    head = state.heads.get(org)
    return head.last_seq if head is not None else 0


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
        keys = pc.cast(timestamps, pa.int64()).to_numpy() // 86_400_000
    else:
        year = pc.year(timestamps).to_numpy().astype(np.int64)
        keys = year * 12 + pc.month(timestamps).to_numpy() - 1
    return keys


def _partition_name(key: int, partition: str) -> str:
    if partition == "date":
        return (_EPOCH + timedelta(days=key)).isoformat()
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def _ip_keys(addresses: pa.ChunkedArray) -> pa.Array:
    """``ip_key`` of each address, computed once per distinct address."""
    distinct = pc.unique(addresses)
    keys = pa.array(
        [None if a is None else ip_key(a) for a in distinct.to_pylist()], type=pa.string()
    )
    return keys.take(pc.index_in(addresses, value_set=distinct))


def _partitions(
    org: str, table: pa.Table, partition: str, open_files: dict[str, LakeFile]
) -> list[_Part]:
    """One organization's new rows (in seq order), partition by partition: (folder, rows
    without the partition columns and with ``ip_key``, first row, the partition's open
    file). The rows are one Arrow table grouped by partition (in seq order within each),
    sliced without copies. The values are those of :func:`lake_frame`."""
    keys = _partition_keys(table.column("timestamp"), partition)
    rows = table.drop_columns(["organization_id"]).append_column(
        "ip_key", _ip_keys(table.column("ip_address"))
    )
    if len(keys) > 1 and bool((keys[1:] < keys[:-1]).any()):
        # entries logged out of time order: group each partition's (a stable sort keeps seq)
        order = np.argsort(keys, kind="stable")
        rows, keys = rows.take(pa.array(order)), keys[order]
    starts = [0, *(np.flatnonzero(np.diff(keys)) + 1).tolist(), len(keys)]
    out: list[_Part] = []
    for start, end in itertools.pairwise(starts):
        folder = f"organization_id={org}/{partition}={_partition_name(int(keys[start]), partition)}"
        out.append((folder, rows.slice(start, end - start), start, open_files.get(folder)))
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
    if table.num_rows < SMALL_FILE_ROWS and table.nbytes < target:
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
