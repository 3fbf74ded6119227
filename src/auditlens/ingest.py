"""Bulk ingest of JSON Lines or a JSON array, with per-line errors and a rejects file.

Valid entries are appended in batches (one transaction each) while the next batch
is being validated, so parsing and database work overlap on two cores. Invalid
lines are reported with their line number and reason and, if asked, written
verbatim to a rejects file that can be fixed and ingested again. A line whose
``audit_id`` is already stored (or on an earlier line) with different content is
rejected too; with the same content it is counted as already stored.

With ``strict=True`` the whole input is checked first — validation, and duplicates
against the store and within the file — and nothing is appended if any line is
rejected. (The check keeps a 16-byte digest per ``audit_id`` in memory.)

If the database refuses a batch (an outage, a constraint added outside auditlens),
that batch is rolled back, the rejects found so far are written, and
:class:`~auditlens.errors.IngestAbortedError` names the file, the line range and how
many entries of earlier batches were appended (they stay: one transaction per
batch, and a re-run skips them as already stored).

Example:
    >>> import io, auditlens as al
    >>> from auditlens.ingest import ingest
    >>> store = al.open_store("sqlite://")
    >>> data = io.BytesIO(b'{"actor": {"type": "system"}, "action": "auth.login",'
    ...     b' "result": "success",'
    ...     b' "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"}\\n{"action": 1}\\n')
    >>> report = ingest(store, data)
    >>> report.appended, [r.line for r in report.rejected]
    (1, [2])
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson
from sqlalchemy.exc import SQLAlchemyError

from auditlens.errors import (
    DuplicateConflict,
    DuplicateEntryError,
    IngestAbortedError,
    IngestError,
    StoreError,
    ValidationError,
)
from auditlens.schema import DEFAULT_MAX_DETAILS_BYTES, ROW_FIELDS, normalize_entry
from auditlens.store.store import AppendedEntry, Store

__all__ = [
    "IngestReport",
    "Rejected",
    "RowBlock",
    "SourceRecord",
    "Validated",
    "bulk_gc",
    "ingest",
    "ingest_records",
    "iter_entries",
    "validate",
]


@dataclass(frozen=True)
class Rejected:
    """One input line that was not appended (``file``: set when a run reads several files)."""

    line: int
    reason: str
    raw: bytes
    file: str | None = None

    @property
    def where(self) -> str:
        """``file:line`` (or ``line N`` when the input is one unnamed stream)."""
        return f"{self.file}:{self.line}" if self.file else f"line {self.line}"


class SourceRecord(NamedTuple):
    """One record read from a source: where it is, what it parsed to, its raw text.

    ``value`` is the entry in the interchange shape, a :class:`Validated` row (the entry
    already checked by :func:`validate`, e.g. in a reader process), or the exception that
    says why the record cannot be one (it is rejected with that reason, at ``file:line``).
    """

    file: str | None
    line: int
    value: Any
    raw: bytes


class Validated(NamedTuple):
    """An entry already checked by :func:`validate` with the store's settings: its flat row
    (as :func:`~auditlens.schema.normalize_entry` returns it), appended without a second
    check."""

    row: dict[str, Any]


class RowBlock(NamedTuple):
    """One file's records as a reader process returns them, column by column: the entries
    already checked by :func:`validate` (rows as tuples in
    :data:`~auditlens.schema.ROW_FIELDS` order, each with its
    :func:`~auditlens.chain.canonical.content_tail`) and the records rejected, both in file
    order. :func:`ingest_records` takes it in place of one :class:`SourceRecord` per record,
    with the same result, and appends the rows without a dict per row.
    """

    file: str
    lines: list[int]  # line of each row
    raws: list[bytes]  # raw text of each row (written to the rejects file if it conflicts)
    rows: list[tuple[Any, ...]]
    tails: list[bytes]
    rejected: list[tuple[int, str, bytes]]  # line, reason, raw


def validate(
    value: Any, *, strict_actions: bool = False, max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES
) -> Validated | IngestError:
    """Check one entry as ingest does: its :class:`Validated` row, or an
    :class:`~auditlens.errors.IngestError` whose message is the reject reason (every
    problem, ``field: message``, joined by ``; ``).

    Example:
        >>> validate({"action": "auth.login"})  # doctest: +ELLIPSIS
        IngestError('actor: is required ...; organization_id: is required; result: is required')
    """
    try:
        return Validated(
            normalize_entry(
                value,
                index=None,
                strict_actions=strict_actions,
                max_details_bytes=max_details_bytes,
            )
        )
    except ValidationError as exc:
        return IngestError("; ".join(f"{p.field or 'entry'}: {p.message}" for p in exc.problems))


@dataclass
class IngestReport:
    """What an ingest did."""

    source: str
    read: int = 0
    appended: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no line was rejected."""
        return not self.rejected


def iter_entries(stream: IO[bytes]) -> Iterator[tuple[int, Any, bytes]]:
    """Yield ``(line number, parsed value or exception, raw bytes)`` for each entry.

    JSON Lines is read line by line (blank lines skipped). Input that starts with
    ``[`` is read as one JSON array; each element's line number is the line where
    it starts.
    """
    head = stream.read(1)
    while head and head.isspace():
        head = stream.read(1)
    if not head:
        return
    if head == b"[":
        text = head + stream.read()
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise IngestError(
                f"the input starts with '[' but is not a valid JSON array: {exc}"
            ) from None
        lines = _element_lines(text)
        for i, item in enumerate(items):
            yield (lines[i] if i < len(lines) else 0), item, orjson.dumps(item)
        return
    first = head + stream.readline()
    lineno = 0
    for raw in _chain_first(first, stream):
        lineno += 1
        line = raw.strip()
        if not line:
            continue
        try:
            yield lineno, orjson.loads(line), line
        except orjson.JSONDecodeError as exc:
            yield lineno, IngestError(f"not valid JSON: {exc}"), line


def _chain_first(first: bytes, stream: IO[bytes]) -> Iterator[bytes]:
    yield first
    yield from stream


def _element_lines(text: bytes) -> list[int]:
    """Line numbers where the top-level elements of a JSON array start."""
    lines: list[int] = []
    depth = 0
    in_str = esc = False
    line = 1
    expecting = False
    for ch in text:
        if ch == 0x0A:
            line += 1
        if in_str:
            if esc:
                esc = False
            elif ch == 0x5C:
                esc = True
            elif ch == 0x22:
                in_str = False
            continue
        if depth == 1 and expecting and ch not in b" \t\r\n,]":
            lines.append(line)
            expecting = False
        if ch == 0x22:
            in_str = True
        elif ch in b"[{":
            depth += 1
            if depth == 1:
                expecting = True
        elif ch in b"]}":
            depth -= 1
        elif ch == 0x2C and depth == 1:
            expecting = True
    return lines


def ingest(
    store: Store,
    source: str | os.PathLike[str] | IO[bytes],
    *,
    batch_size: int = 10_000,
    strict: bool = False,
    rejects: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Validate and append every entry of a JSONL file, JSON array file, or binary stream.

    Args:
        source: a path, ``"-"`` for standard input, or an open binary stream.
        batch_size: entries per transaction.
        strict: append nothing if any line is rejected (invalid, or an ``audit_id``
            already taken by different content).
        rejects: write each rejected line, verbatim, to this file (JSONL).
        progress: called with the number of entries handled since the last call.

    Returns:
        An :class:`IngestReport`; ``report.ok`` is False when anything was rejected.

    Raises:
        IngestAbortedError: the database refused a batch (see the module docstring).
        IngestError: the input cannot be read at all.
    """
    if batch_size < 1:
        raise IngestError("batch_size must be at least 1")
    name, stream, cleanup = _open(source, rewindable=strict)
    report = IngestReport(source=name)
    try:
        if strict:
            _validate_only(store, stream, report, batch_size, progress)
            if report.rejected:
                report.rejected.sort(key=lambda r: r.line)
                _write_rejects(rejects, report.rejected)
                return report
            stream.seek(0)
            report.read = 0
            progress = None
        _load(store, _records(stream), report, batch_size, progress)
    except _BatchRefused as refused:
        report.rejected.sort(key=lambda r: r.line)
        _write_rejects(rejects, report.rejected)
        raise IngestAbortedError(
            report.source,
            refused.first_line,
            refused.last_line,
            refused.reason,
            appended=report.appended,
            duplicates=report.duplicates,
            rejected=len(report.rejected),
            rejects_path=None if rejects is None else os.fspath(rejects),
            rejected_lines=[(r.line, r.reason) for r in report.rejected],
        ) from refused.__cause__
    except BaseException:
        # whatever stopped the ingest, the lines rejected so far are not lost
        report.rejected.sort(key=lambda r: r.line)
        _write_rejects(rejects, report.rejected)
        raise
    finally:
        cleanup()
    report.rejected.sort(key=lambda r: r.line)
    _write_rejects(rejects, report.rejected)
    return report


def ingest_records(
    store: Store,
    records: Iterable[SourceRecord | RowBlock],
    *,
    source: str,
    batch_size: int = 10_000,
    rejects: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Validate and append records read by someone else (an importer), through the same
    batches, duplicate handling and rejects file as :func:`ingest`.

    Each rejected record keeps its ``file`` and ``line``; the rejects file receives its
    ``raw`` text. A :class:`RowBlock` stands for its records, in their order; it is trusted
    input (auditlens' own import workers make it): its rows are taken as validated and its
    content tails as theirs — a tail that does not match its row is stored as given, and
    ``verify`` then reports the entry as modified.

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> good = {"actor": {"type": "system"}, "action": "auth.login", "result": "success",
        ...         "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"}
        >>> report = ingest_records(store, [SourceRecord("a.log", 3, good, b"..."),
        ...     SourceRecord("a.log", 9, ValueError("no time"), b"...")], source="a.log")
        >>> report.appended, [r.where for r in report.rejected]
        (1, ['a.log:9'])

    Raises:
        IngestAbortedError: the database refused a batch.
    """
    if batch_size < 1:
        raise IngestError("batch_size must be at least 1")
    report = IngestReport(source=source)
    try:
        _load(store, iter(records), report, batch_size, progress)
    except _BatchRefused as refused:
        report.rejected.sort(key=_order)
        _write_rejects(rejects, report.rejected)
        raise IngestAbortedError(
            report.source,
            refused.first_line,
            refused.last_line,
            refused.reason,
            appended=report.appended,
            duplicates=report.duplicates,
            rejected=len(report.rejected),
            rejects_path=None if rejects is None else os.fspath(rejects),
            rejected_lines=[(r.line, f"{r.where}: {r.reason}") for r in report.rejected],
        ) from refused.__cause__
    except BaseException:
        report.rejected.sort(key=_order)
        _write_rejects(rejects, report.rejected)
        raise
    report.rejected.sort(key=_order)
    _write_rejects(rejects, report.rejected)
    return report


def _order(r: Rejected) -> tuple[str, int]:
    return (r.file or "", r.line)


def _records(stream: IO[bytes]) -> Iterator[SourceRecord]:
    for lineno, value, raw in iter_entries(stream):
        yield SourceRecord(None, lineno, value, raw)


def _open(
    source: str | os.PathLike[str] | IO[bytes], *, rewindable: bool
) -> tuple[str, IO[bytes], Callable[[], None]]:
    if isinstance(source, str | os.PathLike):
        if os.fspath(source) == "-":
            import sys

            stdin = sys.stdin.buffer
            if not rewindable:
                return "<stdin>", stdin, lambda: None
            tmp = tempfile.TemporaryFile()
            shutil.copyfileobj(stdin, tmp)
            tmp.seek(0)
            return "<stdin>", tmp, tmp.close
        path = Path(source)
        if not path.is_file():
            raise IngestError(f"{path}: no such file")
        fh = path.open("rb")
        return str(path), fh, fh.close
    if rewindable and not source.seekable():
        tmp = tempfile.TemporaryFile()
        shutil.copyfileobj(source, tmp)
        tmp.seek(0)
        return "<stream>", tmp, tmp.close
    return getattr(source, "name", "<stream>"), source, lambda: None


def _check(
    store: Store,
    value: Any,
    lineno: int,
    raw: bytes,
    report: IngestReport,
    file: str | None = None,
) -> dict[str, Any] | None:
    report.read += 1
    if not isinstance(value, Validated | Exception):
        value = validate(
            value, strict_actions=store.strict_actions, max_details_bytes=store.max_details_bytes
        )
    if isinstance(value, Exception):
        report.rejected.append(Rejected(lineno, str(value), raw, file))
        return None
    row: dict[str, Any] = value.row
    return row


Item = tuple[int, bytes, dict[str, Any], str | None]  # line number, raw, validated row, file


class _Batch:
    """The rows of one transaction, column by column: lines, raw texts, files, rows (dicts,
    or tuples with their content tails when every row came in a :class:`RowBlock`)."""

    __slots__ = ("files", "lines", "raws", "rows", "tails")

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.raws: list[bytes] = []
        self.files: list[str | None] = []
        self.rows: list[Any] = []  # dict rows, or tuples (ROW_FIELDS order)
        self.tails: list[bytes] | None = []  # None once a dict row is in the batch

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, line: int, raw: bytes, row: dict[str, Any], file: str | None) -> None:
        """One validated row (a dict)."""
        self.lines.append(line)
        self.raws.append(raw)
        self.files.append(file)
        self.rows.append(row)
        self.tails = None

    def extend(self, block: RowBlock, start: int, end: int) -> None:
        """Rows ``start:end`` of a block."""
        self.lines += block.lines[start:end]
        self.raws += block.raws[start:end]
        self.files += [block.file] * (end - start)
        self.rows += block.rows[start:end]
        if self.tails is not None:
            self.tails += block.tails[start:end]

    def items(self) -> list[Item]:
        """The rows as :data:`Item`s with dict rows."""
        rows = [
            r if isinstance(r, dict) else dict(zip(ROW_FIELDS, r, strict=True)) for r in self.rows
        ]
        return list(zip(self.lines, self.raws, rows, self.files, strict=True))


class _BatchRefused(Exception):
    """The database refused the batch of these lines (raised in the append thread)."""

    def __init__(self, first_line: int, last_line: int, reason: str) -> None:
        super().__init__(reason)
        self.first_line = first_line
        self.last_line = last_line
        self.reason = reason


def _validate_only(
    store: Store,
    stream: IO[bytes],
    report: IngestReport,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Strict mode's first pass: validate every line and check every audit_id, append nothing."""
    first_seen: dict[str, tuple[int, bytes]] = {}  # audit_id → (first line, content digest)
    batch: list[Item] = []
    for lineno, value, raw in iter_entries(stream):
        row = _check(store, value, lineno, raw, report)
        if progress is not None:
            progress(1)
        if row is None:
            continue
        batch.append((lineno, raw, row, None))
        if len(batch) >= batch_size:
            _check_duplicates(store, batch, first_seen, report)
            batch = []
    if batch:
        _check_duplicates(store, batch, first_seen, report)


def _digest(row: dict[str, Any]) -> bytes:
    return hashlib.blake2b(orjson.dumps([row[f] for f in ROW_FIELDS]), digest_size=16).digest()


def _check_duplicates(
    store: Store,
    batch: list[Item],
    first_seen: dict[str, tuple[int, bytes]],
    report: IngestReport,
) -> None:
    """Reject lines re-using an audit_id with different content: within the file, then
    against the store (one set-based lookup for the batch's new ids)."""
    new: list[Item] = []
    for item in batch:
        lineno, raw, row, _ = item
        aid, digest = row["audit_id"], _digest(row)
        prior = first_seen.get(aid)
        if prior is None:
            first_seen[aid] = (lineno, digest)
            new.append(item)
        elif prior[1] != digest:
            reason = f"audit_id: {aid} is also on line {prior[0]} with different content"
            report.rejected.append(Rejected(lineno, reason, raw))
    for conflict in store.find_conflicts([row for _, _, row, _ in new]):
        assert conflict.index is not None
        lineno, raw, _, _ = new[conflict.index]
        report.rejected.append(Rejected(lineno, _conflict_reason(conflict), raw))


def _conflict_reason(conflict: DuplicateConflict) -> str:
    return (
        f"audit_id: {conflict.audit_id} already exists with different content "
        f"(fields differ: {', '.join(conflict.differing)}); audit entries are immutable, "
        "give the new event its own audit_id"
    )


def _load(
    store: Store,
    records: Iterator[SourceRecord | RowBlock],
    report: IngestReport,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> None:
    pending: Future[None] | None = None
    batch = _Batch()

    def flush(items: _Batch) -> None:
        try:
            _append_batch(store, items, report)
        except (StoreError, SQLAlchemyError) as exc:
            # the batch's transaction was rolled back; earlier batches are committed
            cause = exc if isinstance(exc, SQLAlchemyError) else exc.__cause__
            orig = getattr(cause, "orig", None)
            reason = str(orig).strip() if orig is not None else str(exc)
            raise _BatchRefused(items.lines[0], items.lines[-1], reason) from exc
        if progress is not None:
            progress(len(items))

    def submit() -> None:
        nonlocal pending, batch
        if pending is not None:
            pending.result()
        pending = pool.submit(flush, batch)
        batch = _Batch()

    def reject(file: str | None, line: int, reason: str, raw: bytes) -> None:
        report.rejected.append(Rejected(line, reason, raw, file))
        if progress is not None:
            progress(1)

    with (
        bulk_gc(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="auditlens-ingest") as pool,
    ):
        for rec in records:
            if isinstance(rec, RowBlock):
                # as its records one by one: rows batched in order, each reject noted
                # before the row after it (a refused batch is reported with the same ones)
                report.read += len(rec.rows) + len(rec.rejected)
                later = iter(rec.rejected)
                nxt = next(later, None)
                start, size = 0, len(rec.rows)
                while start < size:
                    end = min(size, start + batch_size - len(batch))
                    batch.extend(rec, start, end)
                    start = end
                    if len(batch) >= batch_size:
                        while nxt is not None and nxt[0] < rec.lines[end - 1]:
                            reject(rec.file, *nxt)
                            nxt = next(later, None)
                        submit()
                while nxt is not None:
                    reject(rec.file, *nxt)
                    nxt = next(later, None)
                continue
            file, lineno, value, raw = rec
            row = _check(store, value, lineno, raw, report, file)
            if row is None:
                if progress is not None:
                    progress(1)
                continue
            batch.add(lineno, raw, row, file)
            if len(batch) >= batch_size:
                submit()
        if pending is not None:
            pending.result()
        if len(batch):
            flush(batch)


#: the cyclic garbage collector's first threshold while a bulk load runs (Python's default
#: is 700 allocations): a load allocates millions of rows, none of them in a cycle, and each
#: collection walks the young objects, every tenth the older ones too (~15 % of the
#: appending process's CPU at the default)
BULK_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def bulk_gc() -> Iterator[None]:
    """Run the cyclic garbage collector less often inside the block (a bulk load's rows hold
    no reference cycles); the thresholds before it are restored after. A collector that is
    off (threshold 0) or already less eager stays as it is.

    Example:
        >>> before = gc.get_threshold()
        >>> with bulk_gc():
        ...     gc.get_threshold()[0] >= BULK_GC_THRESHOLD or before[0] == 0
        True
        >>> gc.get_threshold() == before
        True
    """
    before = gc.get_threshold()
    changed = 0 < before[0] < BULK_GC_THRESHOLD
    if changed:
        gc.set_threshold(BULK_GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        if changed and gc.get_threshold()[0] == BULK_GC_THRESHOLD:  # not changed meanwhile
            gc.set_threshold(*before)


def _append_batch(store: Store, batch: _Batch, report: IngestReport) -> None:
    """Append one batch; lines whose audit_id is taken by different content are rejected.

    The store reports every conflict of the batch at once (one lookup), so the
    batch is retried once without them, not once per conflicting line. Rows that came as
    tuples (every row of the batch from a :class:`RowBlock`) go in as they are.
    """
    tails = batch.tails
    if tails is None:
        _append_items(store, batch.items(), report)
        return
    rows, lines, raws, files = batch.rows, batch.lines, batch.raws, batch.files
    while rows:
        try:
            appended, duplicates = store.append_prepared(rows, tails)
        except DuplicateEntryError as exc:
            dropped: set[int] = set()
            for conflict in exc.conflicts:
                if conflict.index is None:  # pragma: no cover - the store always gives it
                    raise
                i = conflict.index
                report.rejected.append(
                    Rejected(lines[i], _conflict_reason(conflict), raws[i], files[i])
                )
                dropped.add(i)
            keep = [i for i in range(len(rows)) if i not in dropped]
            rows = [rows[i] for i in keep]
            tails = [tails[i] for i in keep]
            lines = [lines[i] for i in keep]
            raws = [raws[i] for i in keep]
            files = [files[i] for i in keep]
            continue
        report.appended += appended
        report.duplicates += duplicates
        return


def _append_items(store: Store, items: list[Item], report: IngestReport) -> None:
    """:func:`_append_batch` for dict rows."""
    while items:
        try:
            results: list[AppendedEntry] = store.append_rows([row for _, _, row, _ in items])
        except DuplicateEntryError as exc:
            dropped: set[int] = set()
            for conflict in exc.conflicts:
                if conflict.index is None:  # pragma: no cover - the store always gives it
                    raise
                lineno, raw, _, file = items[conflict.index]
                report.rejected.append(Rejected(lineno, _conflict_reason(conflict), raw, file))
                dropped.add(conflict.index)
            items = [item for i, item in enumerate(items) if i not in dropped]
            continue
        report.appended += sum(1 for r in results if r.created)
        report.duplicates += sum(1 for r in results if not r.created)
        return


def _write_rejects(path: str | os.PathLike[str] | None, rejected: list[Rejected]) -> None:
    if path is None:
        return
    with open(path, "wb") as fh:
        for r in rejected:
            fh.write(r.raw.rstrip(b"\n") + b"\n")
