"""``sync_lake``: copy the trail, incrementally, into a Hive-partitioned Parquet lake.

Each sync reads, per organization, the entries after the last seq the lake's manifests
record (the lake is the state: no table in the store remembers it), checks that they
continue the lake's chain (first ``seq`` and ``prev_hash``), and writes them under
``organization_id=…/date=YYYY-MM-DD/`` (UTC date of the entry) as zstd Parquet. Files grow
to a target size: a partition's last file smaller than the target is rewritten together
with the new rows (after checking its SHA-256) instead of getting a small neighbour, so
frequent syncs do not leave a swarm of small files. Then one manifest records the sync
(see :mod:`auditlens.lake.layout`).

Every file is written under a temporary name and renamed; the manifest is written last,
atomically; files a sync replaced are removed only after it. A sync that fails removes
what it wrote, and the next sync removes anything no manifest lists (a killed run's
leftovers), so the lake always reads as of its last manifest.

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
import json
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
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
    atomic_write,
    file_sha256,
    manifest_name,
    one_writer,
    read_state,
)
from auditlens.schema import ip_key
from auditlens.store.backend import FRAME_COLUMNS, entries
from auditlens.store.store import Store

__all__ = ["TARGET_FILE_BYTES", "TIME_PARTITIONS", "SyncResult", "lake_frame", "sync_lake"]

#: target size of a Parquet file: a partition's files grow to it before a new one starts.
TARGET_FILE_BYTES = 128 * 1024 * 1024
#: rows per Parquet row group.
ROW_GROUP_ROWS = 128 * 1024
#: the time partition (inner Hive folder) → its strftime format: a UTC day (the default),
#: or a month (``month=YYYY-MM``, the retention archive's folders: fewer, larger files
#: when organizations log a few hundred entries a day).
TIME_PARTITIONS = {"date": "%Y-%m-%d", "month": "%Y-%m"}
_C = entries.c


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
        to: the lake's folder (created if missing).
        organization_id: only this organization.
        target_file_bytes: a partition's files grow to about this size (compaction).
        row_group_rows: rows per Parquet row group.
        partition: the time partition of a new lake, ``"date"`` (default) or ``"month"``
            (see :data:`TIME_PARTITIONS`); an existing lake keeps its own.
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
    root = Path(to)
    root.mkdir(parents=True, exist_ok=True)
    state = read_state(root)
    if partition is not None and partition not in TIME_PARTITIONS:
        raise ConfigError(
            f"partition must be one of {', '.join(TIME_PARTITIONS)}, got {partition!r}"
        )
    if state.manifests and partition is not None and partition != state.partition:
        raise ConfigError(f"{root}: this lake is partitioned by {state.partition}, not {partition}")
    part_by = state.partition if state.manifests else (partition or "date")
    _remove_leftovers(root, state)
    number = state.last_sync + 1
    result = SyncResult(str(root), None)
    heads = _store_heads(store, organization_id)
    if through_seq is not None:
        heads = [(o, min(top, through_seq)) for o, top in heads]
    orgs = [o for o, top in heads if top > _after(state, o)]  # only organizations with news
    written: list[Path] = []
    files: list[LakeFile] = []
    replaces: list[str] = []
    segments: dict[str, dict[str, object]] = {}
    # the next organization's entries are read (by the store's reader: ADBC in a helper
    # process on SQLite) while this one's files are written; an in-memory SQLite store is
    # one connection of one thread, so it is read in turn
    in_memory = store.engine.url.database in (None, "", ":memory:")
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-read")
    submit = _now if in_memory else pool.submit
    try:
        pending = (
            submit(_read, store, orgs[0], _after(state, orgs[0]), through_seq) if orgs else None
        )
        for i, org in enumerate(orgs):
            head = state.heads.get(org)
            after = _after(state, org)
            assert pending is not None
            table = pending.result()
            if i + 1 < len(orgs):
                pending = submit(_read, store, orgs[i + 1], _after(state, orgs[i + 1]), through_seq)
            if table.num_rows == 0:
                continue
            frame = lake_frame(table, part_by)
            first, last = int(frame["seq"][0]), int(frame["seq"][-1])
            first_prev = str(frame["prev_hash"][0])
            if head is not None and (first != after + 1 or first_prev != head.last_entry_hash):
                raise ArchiveError(
                    f"{root}: organization {org}: the store's next entry (seq {first}) does not "
                    f"continue the lake's seq {after} (removed by retention, or another store?)"
                )
            for f in _write_org(
                root, state, org, frame, part_by, number, target_file_bytes, row_group_rows
            ):
                files.append(f)
                written.append(root / f.path)
            replaces.extend(_replaced_by(state, org, frame, part_by, target_file_bytes))
            cp = _covering_checkpoint(store, org, last)
            segments[org] = {
                "first_seq": first,
                "last_seq": last,
                "rows": frame.height,
                "prev_hash": first_prev,
                "last_entry_hash": str(frame["entry_hash"][-1]),
                "checkpoint": cp if cp and (head is None or cp != head.checkpoint) else None,
            }
            result.organizations[org] = (first, last)
            result.rows += frame.height
            if progress is not None:
                progress(frame.height)
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
        (root / MANIFESTS).mkdir(exist_ok=True)
        atomic_write(
            root / MANIFESTS / manifest_name(number),
            lambda p: p.write_text(json.dumps(manifest, indent=1)),
        )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for rel in replaces:
        (root / rel).unlink(missing_ok=True)
    result.sync = number
    result.files_written = len(files)
    result.files_replaced = len(replaces)
    result.bytes_written = sum(f.bytes for f in files)
    result.seconds = time.perf_counter() - t0
    return result


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


def _now(fn: Callable[..., pa.Table], *args: object) -> Future[pa.Table]:
    """``fn(*args)`` run now, as a finished future (what ``pool.submit`` would return)."""
    done: Future[pa.Table] = Future()
    done.set_result(fn(*args))
    return done


def _read(store: Store, org: str, after: int, through: int | None = None) -> pa.Table:
    stmt = select(*FRAME_COLUMNS).where(_C.organization_id == org, _C.seq > after).order_by(_C.seq)
    if through is not None:
        stmt = stmt.where(_C.seq <= through)
    return pa.Table.from_batches(list(store.read_batches(stmt)), schema=FRAME_SCHEMA)


def _open_file(state: LakeState, folder: str, target: int) -> LakeFile | None:
    """The partition's newest current file while it is below the target size."""
    here = [f for f in state.files.values() if f.path.rsplit("/", 1)[0] == folder]
    if not here:
        return None
    newest = max(here, key=lambda f: f.last_seq)
    return newest if newest.bytes < target else None


def _replaced_by(
    state: LakeState, org: str, frame: pl.DataFrame, partition: str, target: int
) -> list[str]:
    out = []
    for value in frame[partition].unique(maintain_order=True).to_list():
        open_ = _open_file(state, f"organization_id={org}/{partition}={value}", target)
        if open_ is not None:
            out.append(open_.path)
    return out


def _write_org(
    root: Path,
    state: LakeState,
    org: str,
    frame: pl.DataFrame,
    partition: str,
    number: int,
    target: int,
    group_rows: int,
) -> list[LakeFile]:
    """Write one organization's new rows, partition by partition; compacts open files."""
    out: list[LakeFile] = []
    for (value,), part in frame.group_by([partition], maintain_order=True):
        folder = f"organization_id={org}/{partition}={value}"
        rows = part.drop("organization_id", partition)
        open_ = _open_file(state, folder, target)
        if open_ is not None:
            path = root / open_.path
            if not path.exists() or file_sha256(path) != open_.sha256:
                raise ArchiveError(
                    f"{path}: does not match manifest {manifest_name(open_.sync)}; run "
                    "`auditlens verify --lake` before syncing again"
                )
            old = pl.read_parquet(path)
            rows = pl.concat([old.select(rows.columns), rows], how="vertical_relaxed")
        (root / folder).mkdir(parents=True, exist_ok=True)
        out.extend(_write_files(root, folder, org, rows, number, target, group_rows))
    return out


def _write_files(
    root: Path,
    folder: str,
    org: str,
    rows: pl.DataFrame,
    number: int,
    target: int,
    group_rows: int,
) -> list[LakeFile]:
    """Write ``rows`` as files of about ``target`` bytes (checked after each row group)."""
    table = rows.to_arrow()
    if table.nbytes < target:  # the usual case: compressed, it is smaller still
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf, row_group_size=group_rows, compression="zstd")
        data = buf.getvalue()
        lo, hi = int(table.column("seq")[0].as_py()), int(table.column("seq")[-1].as_py())
        name = f"{folder}/part-s{number:06d}-{lo:012d}-{hi:012d}.parquet"
        atomic_write(root / name, lambda p: p.write_bytes(data))
        sha = hashlib.sha256(data).hexdigest()
        return [LakeFile(name, org, table.num_rows, lo, hi, sha, data.size, number)]
    out: list[LakeFile] = []
    start = 0
    while start < table.num_rows:
        tmp = root / folder / f".part-s{number:06d}-{start}.parquet.tmp"
        end = start
        try:
            with pq.ParquetWriter(tmp, table.schema, compression="zstd") as writer:
                while end < table.num_rows:
                    chunk = table.slice(end, group_rows)
                    writer.write_table(chunk, row_group_size=group_rows)
                    end += chunk.num_rows
                    if tmp.stat().st_size >= target:
                        break
            seqs = table.column("seq").slice(start, end - start)
            lo, hi = int(seqs[0].as_py()), int(seqs[-1].as_py())
            name = f"{folder}/part-s{number:06d}-{lo:012d}-{hi:012d}.parquet"
            os.replace(tmp, root / name)
        finally:
            tmp.unlink(missing_ok=True)
        path = root / name
        out.append(
            LakeFile(name, org, end - start, lo, hi, file_sha256(path), path.stat().st_size, number)
        )
        start = end
    return out


def _covering_checkpoint(store: Store, org: str, last_seq: int) -> str | None:
    """The newest stored checkpoint note whose tree the lake holds entirely."""
    notes = [c for c in list_checkpoints(store, org) if c.tree_size <= last_seq]
    return max(notes, key=lambda c: (c.tree_size, c.id)).note if notes else None


_OURS = re.compile(r"\.?part-s\d{6,}-\d+(?:-\d+)?\.parquet(?:\.tmp)?")


def _remove_leftovers(root: Path, state: LakeState) -> None:
    """Delete what a killed sync left: its temporary files and the Parquet files it named
    that no manifest lists. Files a sync does not name (a retention archive's, yours) stay.

    Only when every file the manifests list is there: otherwise a manifest is missing (or
    a file was removed), and the unlisted files may hold the only copy of rows (archived
    ones, removed from the store): nothing is deleted, the sync refuses."""
    for f in state.files.values():
        if not (root / f.path).is_file():
            raise ArchiveError(
                f"{root / f.path} (seq {f.first_seq}..{f.last_seq} of organization "
                f"{f.organization_id}), listed in {manifest_name(f.sync)}, is missing: the "
                "lake's manifests and files disagree (a manifest removed?); nothing was "
                "deleted or written: run `auditlens verify --lake`"
            )
    for path in root.glob("organization_id=*/**/*"):
        if not path.is_file() or not _OURS.fullmatch(path.name):
            continue
        if path.name.endswith(".tmp") or path.relative_to(root).as_posix() not in state.files:
            path.unlink()
