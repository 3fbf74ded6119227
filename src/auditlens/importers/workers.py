"""Reading, mapping and validating files in worker processes while the caller appends.

:func:`auditlens.importers.import_files` hands the files to :func:`checked_records`:
each file (up to :data:`POOLED_MAX_BYTES` on disk) is read, mapped and validated in a
worker process, and the records come back in file order, exactly as the format's
``records`` would have yielded them (same lines, same reasons), one
:class:`~auditlens.ingest.RowBlock` per file: the entries already checked, column-wise,
as tuples in the store's row layout with the part of their content hash's input that does
not depend on the chain (:func:`~auditlens.chain.canonical.content_tail`). The calling
process only chains and inserts, with no dict per row, so on two cores reading and
appending run side by side instead of sharing one interpreter lock. A file that cannot be
read raises the same error at the same place in the order (after the records before it);
a larger file is read in the calling process, streamed, as before. A worker hands a file's
block over as a pickle in a private temporary folder (removed when the import ends, also
after an error), which costs the calling process about half of reading it from the
pool's pipe; if the file cannot be written, the block goes through the pipe.

Workers start with ``fork`` on Linux (no re-import of auditlens, SQLAlchemy and pyarrow
in the child: ~1 s of CPU per worker saved), elsewhere with the platform's default. The
child only parses, maps and validates: it never touches the parent's threads, database
connections or polars, which is why Python 3.12's warning about forking a process with
threads is silenced around the pool's start.

Example:
    >>> from auditlens.resources import samples_dir
    >>> tally = Tally()
    >>> recs = list(checked_records("auditlens.importers.github", [samples_dir() / "github"],
    ...     {"organization_id": None}, tally=tally, workers=1))
    >>> [type(r).__name__ for r in recs], len(tally.files), len(recs[0].rows) > 0
    (['RowBlock', 'RowBlock'], 2, True)
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import gc
import importlib
import multiprocessing
import operator
import os
import pickle
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from auditlens.chain.canonical import content_tail
from auditlens.errors import IngestError
from auditlens.importers.files import iter_files
from auditlens.ingest import BULK_GC_THRESHOLD, RowBlock, SourceRecord, Validated, validate
from auditlens.schema import DEFAULT_MAX_DETAILS_BYTES, ROW_FIELDS

__all__ = ["POOLED_MAX_BYTES", "Tally", "checked_records", "default_workers", "kept"]

#: files larger than this (on disk) are read in the calling process, streamed: a worker
#: returns a file's records at once, so its memory grows with the file
POOLED_MAX_BYTES = 32 << 20


_ROW = operator.itemgetter(*ROW_FIELDS)


@dataclass
class Tally:
    """What an import read besides its records: the files that had any, the records
    skipped (not audit events, or before ``since``) and the organizations named."""

    files: set[str] = field(default_factory=set)
    skipped: int = 0
    organizations: set[str] = field(default_factory=set)

    def merge(self, other: Tally) -> None:
        """Add another tally (a worker's) to this one."""
        self.files |= other.files
        self.skipped += other.skipped
        self.organizations |= other.organizations


def kept(
    records: Iterable[SourceRecord], since_iso: str | None, tally: Tally
) -> Iterator[SourceRecord]:
    """The records an import appends or rejects: not the skipped ones (``None``: not an
    audit event) nor entries before ``since_iso``; ``tally`` counts them.

    Example:
        >>> t = Tally()
        >>> recs = [SourceRecord("a", 1, None, b""), SourceRecord("a", 2, {"timestamp":
        ...     "2024-01-01T00:00:00.000Z", "organization_id": "o"}, b"")]
        >>> [r.line for r in kept(recs, "2023-01-01T00:00:00.000Z", t)], t.skipped
        ([2], 1)
    """
    for rec in records:
        if rec.file is not None:
            tally.files.add(rec.file)
        value = rec.value
        if value is None:
            tally.skipped += 1
            continue
        if isinstance(value, dict):
            if since_iso is not None and str(value.get("timestamp", "")) < since_iso:
                tally.skipped += 1
                continue
            tally.organizations.add(str(value.get("organization_id")))
        yield rec


class _Part(NamedTuple):
    """One file's records as a worker returns them, column-wise (cheaper to pickle and to
    append than a tuple per record)."""

    block: RowBlock
    tally: Tally
    error: Exception | None  # raised after the records, as reading the file in order would


def default_workers() -> int:
    """Worker processes for an import: 2 (0 on a single core: everything in the calling
    process). Two, not one, on two cores: a worker needs more CPU per record than the
    appending process, so one worker would leave the appender waiting.

    Example:
        >>> default_workers() in (0, 2)
        True
    """
    return 2 if (os.cpu_count() or 1) > 1 else 0


def checked_records(
    module_name: str,
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    options: dict[str, Any],
    *,
    tally: Tally,
    since_iso: str | None = None,
    strict_actions: bool = False,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
    workers: int = 2,
) -> Iterator[SourceRecord | RowBlock]:
    """The records of ``paths`` read by the importer module ``module_name`` (``options`` as
    its ``records`` takes them), as :func:`kept` keeps them, in file order; files read,
    mapped and validated by ``workers`` processes (none: all in this process), each such
    file's records as one :class:`~auditlens.ingest.RowBlock`.

    Raises:
        IngestError: a path is missing or a file cannot be read (after every record before
            it, as in the order of the files), or a worker process died.
    """
    mod = importlib.import_module(module_name)
    files: list[Path] = []
    missing: IngestError | None = None
    try:
        files.extend(iter_files(paths))
    except IngestError as exc:  # raised where the walk reached it, after the files before
        missing = exc
    if workers < 1 or len(files) < 2 or multiprocessing.current_process().daemon:
        # one file gains nothing from a worker; a daemonic process may not have children
        yield from kept(mod.records(files, **options), since_iso, tally)
    else:
        yield from _pooled(
            module_name,
            files,
            options,
            tally,
            since_iso,
            strict_actions,
            max_details_bytes,
            workers,
        )
    if missing is not None:
        raise missing


def _pooled(
    module_name: str,
    files: list[Path],
    options: dict[str, Any],
    tally: Tally,
    since_iso: str | None,
    strict_actions: bool,
    max_details_bytes: int,
    workers: int,
) -> Iterator[SourceRecord | RowBlock]:
    mod = importlib.import_module(module_name)
    ahead: collections.deque[tuple[Path, concurrent.futures.Future[_Part | str] | None]]
    ahead = collections.deque()
    todo = iter(files)
    spool = tempfile.TemporaryDirectory(prefix="auditlens-import-")
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=_context(), initializer=_worker_start
    )

    def submit() -> None:
        path = next(todo, None)
        if path is None:
            return
        if _size(path) > POOLED_MAX_BYTES:
            ahead.append((path, None))
            return
        args = (
            module_name,
            path,
            options,
            since_iso,
            strict_actions,
            max_details_bytes,
            spool.name,
        )
        with warnings.catch_warnings():  # forking with threads: see the module docstring
            warnings.simplefilter("ignore", DeprecationWarning)
            ahead.append((path, pool.submit(_read_file, *args)))

    try:
        for _ in range(2 * workers):
            submit()
        while ahead:
            path, future = ahead.popleft()
            submit()
            if future is None:
                yield from kept(mod.records([path], **options), since_iso, tally)
                continue
            try:
                part = _unspool(future.result())
            except BrokenProcessPool as exc:
                raise IngestError(f"{path}: the reader process stopped: {exc}") from None
            tally.merge(part.tally)
            yield part.block
            if part.error is not None:
                raise part.error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        spool.cleanup()


def _unspool(result: _Part | str) -> _Part:
    """A worker's part: as it came, or read from the file it was written to (and removed)."""
    if isinstance(result, _Part):
        return result
    with open(result, "rb") as fh:
        data = fh.read()
    os.unlink(result)
    part: _Part = pickle.loads(data)  # noqa: S301 - our worker's, in our private (0700) folder
    return part


def _worker_start() -> None:
    """In a new worker: the objects inherited from the parent by ``fork`` are put out of
    the garbage collector's reach (``gc.freeze``: a collection would walk them all, and
    touch their memory, copying the pages), and it runs as in a bulk load
    (:data:`~auditlens.ingest.BULK_GC_THRESHOLD`): a file's records hold no cycles."""
    gc.freeze()
    threshold = gc.get_threshold()
    if 0 < threshold[0] < BULK_GC_THRESHOLD:
        gc.set_threshold(BULK_GC_THRESHOLD, *threshold[1:])


def _read_file(
    module_name: str,
    path: Path,
    options: dict[str, Any],
    since_iso: str | None,
    strict_actions: bool,
    max_details_bytes: int,
    spool: str | None = None,
) -> _Part | str:
    """In a worker: one file's kept records, each entry validated (a row tuple and its
    content tail) or the reason it is rejected, and the error that stopped the file."""
    tally = Tally()
    block = RowBlock(str(path), [], [], [], [], [])
    error: Exception | None = None
    try:
        records = importlib.import_module(module_name).records([path], **options)
        for rec in kept(records, since_iso, tally):
            value = rec.value
            if not isinstance(value, Exception):
                value = validate(
                    value, strict_actions=strict_actions, max_details_bytes=max_details_bytes
                )
            if isinstance(value, Validated):
                block.lines.append(rec.line)
                block.raws.append(rec.raw)
                block.rows.append(_ROW(value.row))
                block.tails.append(content_tail(value.row))
            else:
                block.rejected.append((rec.line, str(value), rec.raw))
    except Exception as exc:
        error = exc
    part = _Part(block, tally, error)
    if spool is None:
        return part
    name = None
    try:  # a file is cheaper to hand over than the pool's pipe (read 64 KiB at a time)
        data = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
        fd, name = tempfile.mkstemp(dir=spool)
        with open(fd, "wb") as fh:
            fh.write(data)
    except Exception:  # no room, or the part cannot be pickled: through the pool as before
        if name is not None:
            with contextlib.suppress(OSError):
                os.unlink(name)
        return part
    return name


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the worker reports why it cannot be read


def _context() -> multiprocessing.context.BaseContext:
    """``fork`` on Linux (see the module docstring), else the platform's default."""
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()
