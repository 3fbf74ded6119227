"""Reading what vendors write: files, folders, gzip, JSON documents and JSON Lines.

Every importer reads its input through :func:`iter_files` (a path or folder, any
number of them; ``.gz`` opened transparently) and, for JSON sources, through
:func:`json_records`, which yields each record with the line it starts on:

* a JSON Lines file (one record per line; CloudTrail Lake / Athena exports, GitHub
  streaming, ``jq -c`` output),
* a JSON array of records (GitHub's JSON export),
* a JSON object holding the array under a known key (CloudTrail's ``Records``,
  the Reports API's ``items``).

A record that is not a JSON object, or a line that is not JSON, is yielded as an
:class:`~auditlens.errors.IngestError` naming what is wrong, so it is rejected
with its ``file:line`` while the rest of the file is imported.

Example:
    >>> import gzip, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.json").write_bytes(b'{"Records": [{"eventID": "1"},\\n {"eventID": "2"}]}')
    >>> _ = (folder / "b.jsonl.gz").write_bytes(gzip.compress(b'{"eventID": "3"}\\n[1]\\n'))
    >>> [(p.name, line, getattr(v, "get", lambda k: v)("eventID"))
    ...  for p in iter_files([folder]) for line, v, _ in json_records(p, ("Records",))]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('a.json', 1, '1'), ('a.json', 2, '2'), ('b.jsonl.gz', 1, '3'),
     ('b.jsonl.gz', 2, IngestError('a record must be a JSON object, got list'))]
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

import orjson

from auditlens.errors import IngestError
from auditlens.ingest import SourceRecord

__all__ = ["iter_files", "json_records", "mapped", "open_binary", "open_text", "read_bytes"]

#: files a folder walk skips (CloudTrail digest files, hidden files, manifests)
_SKIPPED_SUFFIXES = (".sha256", ".md5", ".manifest")


def iter_files(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> Iterator[Path]:
    """Every file named, folders walked recursively in name order (hidden files and
    CloudTrail ``CloudTrail-Digest`` folders skipped).

    Raises:
        IngestError: a path does not exist.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for sub in sorted(path.rglob("*")):
                rel = sub.relative_to(path).parts
                if (
                    sub.is_file()
                    and not any(p.startswith(".") for p in rel)
                    and "CloudTrail-Digest" not in rel
                    and not sub.name.endswith(_SKIPPED_SUFFIXES)
                ):
                    yield sub
        elif path.is_file():
            yield path
        else:
            raise IngestError(f"{path}: no such file or folder")


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """The whole (decompressed) content of a file.

    Raises:
        IngestError: the file cannot be read or its gzip stream is broken.
    """
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{path}: cannot be read: {exc}") from None


def open_text(path: Path) -> IO[str]:
    """A text stream over a (possibly gzipped) file: UTF-8, undecodable bytes replaced."""
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return path.open(encoding="utf-8", errors="replace", newline="")


def open_binary(path: Path) -> IO[bytes]:
    """A binary stream over a (possibly gzipped) file."""
    if _is_gzip(path):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def json_records(path: Path, keys: Sequence[str] = ()) -> Iterator[tuple[int, Any, bytes]]:
    """``(line, record or IngestError, raw bytes)`` for each record of a JSON file.

    ``keys``: names of the top-level key that holds the records in a JSON object
    (``("Records",)`` for CloudTrail). A JSON object without any of them is one record.
    JSON Lines are streamed line by line (a Lake export may be larger than memory); a
    JSON document (an array, or an object holding the records) is parsed whole.
    """
    try:
        with open_binary(path) as fh:
            first = fh.readline()
            lineno = 1
            while first and not first.strip():
                first = fh.readline()
                lineno += 1
            try:
                head: Any = orjson.loads(first)
            except orjson.JSONDecodeError:
                head = _NOT_A_LINE
            one_record = isinstance(head, dict) and not any(k in head for k in keys)
            if one_record:  # JSON Lines: stream them
                yield from _lines(_chain(first, fh), lineno)
                return
            data = first + fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{path}: cannot be read: {exc}") from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        yield from _lines(data.split(b"\n"), lineno)  # broken JSON: each line says why
        return
    yield from _document(path, data, doc, keys, lineno - 1)


_NOT_A_LINE = object()


def _chain(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _lines(lines: Iterable[bytes], start: int) -> Iterator[tuple[int, Any, bytes]]:
    for lineno, line in enumerate(lines, start):
        line = line.strip()
        if not line:
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield lineno, IngestError(f"not valid JSON: {exc}"), line
            continue
        if isinstance(value, dict):
            yield lineno, value, line
        else:
            yield lineno, _not_object(value), line


def _not_object(value: object) -> IngestError:
    return IngestError(f"a record must be a JSON object, got {type(value).__name__}")


def _document(
    path: Path, data: bytes, doc: Any, keys: Sequence[str], skipped: int = 0
) -> Iterator[tuple[int, Any, bytes]]:
    if isinstance(doc, dict):
        key = next((k for k in keys if k in doc), None)
        if key is None:
            yield 1 + skipped, doc, orjson.dumps(doc)
            return
        items = doc[key]
        if not isinstance(items, list):
            raise IngestError(f"{path}: {key!r} must be a JSON array, got {type(items).__name__}")
    elif isinstance(doc, list):
        items = doc
    else:  # pragma: no cover - guarded by the first byte
        raise IngestError(f"{path}: expected a JSON object or array")
    lines = _record_lines(data, len(items)) if b"\n" in data.strip() else None
    for i, item in enumerate(items):
        line = skipped + (lines[i] if lines is not None and i < len(lines) else 1)
        raw = orjson.dumps(item)
        if isinstance(item, dict):
            yield line, item, raw
        else:
            yield line, IngestError(f"record {i}: {_not_object(item)}"), raw


def _record_lines(data: bytes, count: int) -> list[int]:
    """Line numbers where the records start: the elements of the first array found at
    depth 1 or 2 (a top-level array, or the array under the document's key).

    Only pretty-printed documents get here (one-line files are line 1 throughout).
    """
    lines: list[int] = []
    depth = 0
    in_str = esc = False
    line = 1
    array_depth = 0
    expecting = False
    for ch in data:
        if ch == 0x0A:
            line += 1
            continue
        if in_str:
            if esc:
                esc = False
            elif ch == 0x5C:
                esc = True
            elif ch == 0x22:
                in_str = False
            continue
        if expecting and depth == array_depth and ch not in b" \t\r,]":
            lines.append(line)
            expecting = False
            if len(lines) == count:
                break
        if ch == 0x22:
            in_str = True
        elif ch in b"[{":
            depth += 1
            if ch == 0x5B and not array_depth and depth <= 2:
                array_depth = depth
                expecting = True
        elif ch in b"]}":
            depth -= 1
        elif ch == 0x2C and array_depth and depth == array_depth:
            expecting = True
    return lines


def mapped(
    path: Path,
    rows: Iterable[tuple[int, Any, bytes]],
    convert: Callable[[dict[str, Any], bytes], dict[str, Any] | list[dict[str, Any]]],
    named: Callable[[dict[str, Any]], str],
) -> Iterator[SourceRecord]:
    """One file's records (``(line, native record or read error, raw bytes)``) as
    :class:`~auditlens.ingest.SourceRecord`: ``convert(record, raw)`` gives its entry (or
    entries); a record it cannot map becomes an ``IngestError`` named by ``named(record)``
    (the source's own id), so the rejects say which record and why.

    Example:
        >>> rows = [(1, {"id": "a"}, b"{}"), (2, {"id": "b"}, b"{}")]
        >>> def convert(rec, raw):
        ...     if rec["id"] == "b":
        ...         raise ValueError("no time")
        ...     return {"audit_id": rec["id"]}
        >>> [(r.line, str(r.value)) for r in mapped(Path("x.json"), rows, convert,
        ...     lambda rec: f"id {rec.get('id')!r}")]
        [(1, "{'audit_id': 'a'}"), (2, "id 'b': no time")]
    """
    where = str(path)
    for line, value, raw in rows:
        if isinstance(value, Exception):
            yield SourceRecord(where, line, value, raw)
            continue
        try:
            out = convert(value, raw)
        except (ValueError, TypeError, KeyError) as exc:
            yield SourceRecord(where, line, IngestError(f"{named(value)}: {exc}"), raw)
            continue
        for entry in out if isinstance(out, list) else [out]:
            yield SourceRecord(where, line, entry, raw)
