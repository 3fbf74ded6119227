"""Exports of matching entries to CSV, JSON, JSON Lines or Parquet, streamed in chunks.

Rows flow from the database in Arrow record batches straight into the writer, so an
export of any size holds one batch in memory. Each export also writes a manifest
(``<file>.manifest.json``: query, fields, rows, time range, SHA-256 of the file) and,
unless told not to, appends an ``audit_log.exported`` entry per organization to the
audit trail itself — who took out what, and when, is an ordinary search.

Fields are flat columns (``actor_email``) or dotted paths of the interchange shape
(``actor.email``, ``resource.name``, ``details.conditions``), in the order given.

Example:
    >>> import auditlens as al, tempfile, pathlib
    >>> store = al.open_store("sqlite://")
    >>> _ = store.append({"actor": {"email": "jane@company.com", "type": "user"},
    ...     "action": "webhook.created", "result": "success", "details": {"url": "=HYPERLINK()"},
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"})
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> res = export(store, out, format="csv", fields=["actor.email", "action", "details.url"],
    ...              record=False)
    >>> out.read_text().splitlines()
    ['actor.email,action,details.url', "jane@company.com,webhook.created,'=HYPERLINK()"]
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import io
import json
import os
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Unpack

import polars as pl

from auditlens.errors import ConfigError, ExportFormatError, FilterError
from auditlens.fields import EXPORT_DEFAULTS, EXPORT_PATHS
from auditlens.review import check_review, record_review

if TYPE_CHECKING:
    from auditlens.query.keywords import FilterKeywords
    from auditlens.store.store import Store, Where

__all__ = ["FORMATS", "ExportResult", "export", "resolve_fields", "write_csv"]

FORMATS = ("csv", "json", "jsonl", "parquet", "pdf", "ocsf")

#: dotted interchange paths → flat columns.
_PATHS = dict(EXPORT_PATHS)
_FLAT = {v: k for k, v in _PATHS.items()}
#: the fields of an export when none are chosen (the interchange shape, flattened)
DEFAULT_FIELDS = list(EXPORT_DEFAULTS)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_RE = "^[=+\\-@\t\r]"  # one anchored pass per cell (a regex of _FORMULA_START)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path | None
    format: str
    rows: int
    bytes: int
    sha256: str
    fields: list[str]
    first: str | None = None
    last: str | None = None
    organizations: dict[str, int] = field(default_factory=dict)
    manifest: Path | None = None


def resolve_fields(fields: Sequence[str] | str | None) -> list[tuple[str, str, str | None]]:
    """``(output name, flat column, details JSON path or None)`` for each requested field."""
    if fields is None:
        names = list(DEFAULT_FIELDS)
    elif isinstance(fields, str):
        names = [f.strip() for f in fields.split(",") if f.strip()]
    else:
        names = list(fields)
    if not names:
        raise FilterError("fields: name at least one field, e.g. timestamp,actor.email,action")
    out: list[tuple[str, str, str | None]] = []
    for name in names:
        if name in _PATHS:
            out.append((name, _PATHS[name], None))
        elif name in _FLAT:
            out.append((name, name, None))
        elif name.startswith("details.") and len(name) > 8:
            out.append((name, "details", "$." + name[8:]))
        else:
            known = ", ".join([*_PATHS, "details.<path>"])
            raise FilterError(f"fields: unknown field {name!r}; known: {known}")
    return out


def _columns(batch: pl.DataFrame, spec: list[tuple[str, str, str | None]]) -> pl.DataFrame:
    exprs = []
    for name, col, path in spec:
        if path is not None:
            exprs.append(pl.col("details").str.json_path_match(path).alias(name))
        else:
            exprs.append(pl.col(col).alias(name))
    return batch.select(exprs)


def _neutralise(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to text cells a spreadsheet would run as a formula."""
    text_cols = [c for c, t in frame.schema.items() if t == pl.Utf8]
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA_RE))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in text_cols
    )


def write_csv(frame: pl.DataFrame, sink: IO[bytes], *, header: bool = True) -> None:
    """Write ``frame`` as CSV to ``sink``: the one CSV writer of auditlens.

    Timestamps become ISO 8601 UTC with milliseconds (``2025-01-20T10:30:00.123Z``),
    text a spreadsheet would run as a formula (starting with ``= + - @``, a tab or a
    carriage return) gets a leading ``'``, and a cell is quoted only when it holds a
    comma, a quote or a line break. UTF-8, ``\\n`` line ends, an empty cell for null.
    Column-wise: no Python per row. Exports (:func:`export`) and the CLI's
    ``--format csv`` both write through it.

    Example:
        >>> import io
        >>> buf = io.BytesIO()
        >>> write_csv(pl.DataFrame({"who": ["=SUM(A1)", "a,b"], "n": [1, None]}), buf)
        >>> print(buf.getvalue().decode(), end="")
        who,n
        '=SUM(A1),1
        "a,b",
    """
    if frame.is_empty() and header:  # polars writes nothing at all for a frame without rows
        sink.write((",".join(_csv_quote(name) for name in frame.columns) + "\n").encode())
        return
    frame = _neutralise(
        frame.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
    )
    frame.write_csv(sink, include_header=header)


def _csv_quote(text: str) -> str:
    """One header cell, quoted when it must be (as polars quotes data cells)."""
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_lines(frame: pl.DataFrame, spec: list[tuple[str, str, str | None]]) -> list[str]:
    """JSON objects in the interchange shape (only the chosen fields), built column-wise."""
    nested: dict[str, Any] = {}
    raw_details = False
    for name, col, path in spec:
        if name == "details":
            raw_details = True
            continue
        expr = pl.col("details").str.json_path_match(path) if path else pl.col(col)
        if col == "timestamp":
            expr = expr.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        parts = name.split(".", 1) if path is None else [name]
        if len(parts) == 2:
            nested.setdefault(parts[0], {})[parts[1]] = expr
        else:
            nested[name] = expr
    fields = []
    for key, value in nested.items():
        if isinstance(value, dict):
            struct = pl.struct([v.alias(k) for k, v in value.items()])
            if key == "resource" and "type" in value:
                struct = pl.when(pl.col("resource_type").is_null()).then(None).otherwise(struct)
            fields.append(struct.alias(key))
        else:
            fields.append(value.alias(key))
    if fields:
        encoded = frame.select(pl.struct(fields).struct.json_encode().alias("j"))["j"]
    else:
        encoded = pl.Series("j", ["{}"] * frame.height)
    if raw_details:  # splice the stored JSON text in, byte for byte, as the last key
        encoded = frame.select(
            pl.when(pl.lit(bool(fields)))
            .then(
                pl.lit(encoded).str.slice(0, pl.lit(encoded).str.len_chars() - 1)
                + pl.lit(',"details":')
            )
            .otherwise(pl.lit('{"details":'))
            + pl.col("details")
            + pl.lit("}")
        ).to_series()
    return encoded.to_list()


def export(
    store: Store,
    out: str | os.PathLike[str] | IO[bytes],
    *,
    format: str = "csv",
    fields: Sequence[str] | str | None = None,
    where: Where = None,
    gzip: bool | None = None,
    record: bool = True,
    manifest: bool = True,
    batch_size: int = 50_000,
    **filters: Unpack[FilterKeywords],
) -> ExportResult:
    """Export matching entries (``where`` = search string or filters, plus keyword filters).

    Args:
        out: a file path, ``"-"`` for standard output, or a binary stream.
        format: ``csv``, ``json`` (an array), ``jsonl``, ``parquet``, ``pdf`` or ``ocsf``
            (OCSF 1.5 events as JSON Lines; to a ``.parquet`` path: a folder with one
            Parquet file per class, see :mod:`auditlens.export.ocsf`).
        fields: output fields in order (default: every field of the interchange shape).
        gzip: compress (text formats); default: when the path ends with ``.gz``.
        record: append an ``audit_log.exported`` entry per organization.
        manifest: write ``<path>.manifest.json`` beside a file export.
    """
    if format not in FORMATS:
        raise ExportFormatError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "ocsf" and fields is not None:
        raise ExportFormatError("fields do not apply to format ocsf (events have the OCSF shape)")
    if format == "ocsf" and isinstance(out, str | os.PathLike) and Path(out).suffix == ".parquet":
        from auditlens.export.ocsf import (
            export_ocsf_parquet,  # lazy: export.ocsf imports this module
        )

        return export_ocsf_parquet(
            store,
            out,
            where=where,
            record=record,
            manifest=manifest,
            batch_size=batch_size,
            **filters,
        )
    spec = resolve_fields(fields)
    path: Path | None = None
    if isinstance(out, str | os.PathLike) and os.fspath(out) != "-":
        path = Path(out)
        if not path.parent.is_dir():
            raise ConfigError(f"cannot write {path}: folder {path.parent} does not exist")
    compress = gzip if gzip is not None else bool(path and path.suffix == ".gz")
    if compress and format in ("parquet", "pdf"):
        raise ExportFormatError("gzip applies to text formats (csv, json, jsonl)")
    names = [name for name, _, _ in spec]
    if record:  # the record must be possible before anything is written (raises if not)
        check_review(
            store,
            "audit_log.exported",
            _review_details(format, names, where, filters, "0" * 64),
            path.name if path else "stdout",
        )
    # a file is written under a temporary name and published (renamed) only once its
    # audit entry is appended: never a file without its record
    tmp = (
        path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part") if path else None
    )
    mtmp = tmp.with_name(tmp.name + ".manifest") if tmp is not None and manifest else None
    try:
        result = _export_to(
            store, out, tmp, format, spec, compress, where, filters, batch_size, mtmp, path
        )
        if record:
            _record(store, result, where, filters, path)
    except BaseException:
        for t in (tmp, mtmp):
            if t is not None:
                t.unlink(missing_ok=True)
        raise
    if tmp is not None and path is not None:
        os.replace(tmp, path)
        mpath = None
        if mtmp is not None:
            mpath = path.with_name(path.name + ".manifest.json")
            os.replace(mtmp, mpath)
        result = ExportResult(**{**result.__dict__, "path": path, "manifest": mpath})
    return result


def _review_details(
    format: str, names: list[str], where: Any, filters: Mapping[str, Any], sha256: str
) -> dict[str, Any]:
    """The details of an export's ``audit_log.exported`` entry."""
    return {
        "format": format,
        "fields": names,
        "query": where if isinstance(where, str) else None,
        "filters": {k: str(v) for k, v in filters.items() if v is not None},
        "sha256": sha256,
    }


def _export_to(
    store: Store,
    out: str | os.PathLike[str] | IO[bytes],
    tmp: Path | None,
    format: str,
    spec: list[tuple[str, str, str | None]],
    compress: bool,
    where: Any,
    filters: Mapping[str, Any],
    batch_size: int,
    mtmp: Path | None,
    path: Path | None,
) -> ExportResult:
    """Write the export to ``tmp`` (for a file export to ``path``) or to ``out``, and its
    manifest to ``mtmp``."""
    sink: IO[bytes]
    if tmp is not None:
        sink = tmp.open("wb")
    elif out == "-" or isinstance(out, str | os.PathLike):
        sink = sys.stdout.buffer
    else:
        sink = out
    hasher = _HashingWriter(sink)
    try:
        stats = _write(store, hasher, format, spec, compress, where, filters, batch_size)
    finally:
        if tmp is not None:
            sink.close()
        else:
            sink.flush()
    names = [name for name, _, _ in spec]
    result = ExportResult(
        tmp,
        format,
        stats["rows"],
        hasher.size,
        hasher.sha256.hexdigest(),
        names,
        stats["first"],
        stats["last"],
        stats["orgs"],
    )
    if mtmp is not None and path is not None:
        mtmp.write_text(
            json.dumps(
                {
                    "file": path.name,
                    "format": format,
                    "gzip": compress,
                    "fields": names,
                    "query": where if isinstance(where, str) else None,
                    "filters": {k: str(v) for k, v in filters.items() if v is not None} or None,
                    "rows": result.rows,
                    "first": result.first,
                    "last": result.last,
                    "organizations": result.organizations,
                    "bytes": result.bytes,
                    "sha256": result.sha256,
                    "created_at_ms": int(time.time() * 1000),
                },
                indent=2,
            )
        )
    return result


class _HashingWriter(io.RawIOBase):
    """Counts and hashes what goes through to the sink."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.sha256, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        b = bytes(data)
        self.sha256.update(b)
        self.size += len(b)
        self.sink.write(b)
        return len(b)


def _write(
    store: Store,
    sink: _HashingWriter,
    fmt: str,
    spec: list[tuple[str, str, str | None]],
    compress: bool,
    where: Any,
    filters: Mapping[str, Any],
    batch_size: int,
) -> dict[str, Any]:
    stats: dict[str, Any] = {"rows": 0, "first": None, "last": None, "orgs": {}}
    text: IO[bytes] = gzip_module.GzipFile(fileobj=sink, mode="wb", mtime=0) if compress else sink  # type: ignore[assignment]
    writer: Any = None
    first = True
    try:
        if fmt == "pdf":
            return _write_pdf(store, text, spec, where, filters, stats)
        if fmt == "ocsf":
            from auditlens.export.ocsf import (
                write_ocsf_jsonl,  # lazy: export.ocsf imports this module
            )

            write_ocsf_jsonl(store, text, where, filters, batch_size, lambda b: _tally(stats, b))
            return stats
        if fmt == "json":
            text.write(b"[")
        for rb in store.batches(where, order="asc", batch_size=batch_size, **filters):
            batch = pl.from_arrow(rb)
            assert isinstance(batch, pl.DataFrame)
            if batch.is_empty():
                continue
            _tally(stats, batch)
            if fmt == "csv":
                write_csv(_columns(batch, spec), text, header=first)
            elif fmt in ("json", "jsonl"):
                lines = _json_lines(batch, spec)
                if fmt == "jsonl":
                    text.write(("\n".join(lines) + "\n").encode())
                else:
                    text.write(((",\n" if not first else "\n") + ",\n".join(lines)).encode())
            else:
                import pyarrow.parquet as pq  # lazy: the Parquet writer only for Parquet output

                table = _columns(batch, spec).to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(sink, table.schema, compression="zstd")
                writer.write_table(table)
            first = False
        if fmt == "json":
            text.write(b"\n]\n" if not first else b"]\n")
        if fmt == "csv" and first:  # no rows: still a header
            write_csv(pl.DataFrame(schema={name: pl.Utf8 for name, _, _ in spec}), text)
        if fmt == "parquet" and writer is None:
            import pyarrow.parquet as pq  # lazy: the Parquet writer only for Parquet output

            empty = _columns(pl.from_arrow(store.to_arrow(limit=0)), spec).to_arrow()  # type: ignore[arg-type]
            writer = pq.ParquetWriter(sink, empty.schema, compression="zstd")
    finally:
        if writer is not None:
            writer.close()
        if compress:
            text.close()
    return stats


def _write_pdf(
    store: Store,
    sink: IO[bytes],
    spec: list[tuple[str, str, str | None]],
    where: Any,
    filters: Mapping[str, Any],
    stats: dict[str, Any],
) -> dict[str, Any]:
    from auditlens.export.pdf import (  # lazy: only PDFs need jinja2 and weasyprint
        MAX_PDF_ROWS,
        render_pdf,
    )

    table = store.to_arrow(where, order="asc", limit=MAX_PDF_ROWS + 1, **filters)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if not frame.is_empty():
        _tally(stats, frame)
    shown = _columns(frame, spec).with_columns(
        pl.col(pl.Datetime).dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    )
    names = [name for name, _, _ in spec]
    meta = {
        "Query": where if isinstance(where, str) and where else "(all entries)",
        "Filters": ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None) or "(none)",
        "Entries": f"{frame.height:,}",
        "Time range": f"{stats['first'] or '-'} → {stats['last'] or '-'}",
        "Organizations": ", ".join(f"{o} ({n:,})" for o, n in sorted(stats["orgs"].items())) or "-",
    }
    sink.write(render_pdf(shown.to_dicts(), names, meta))
    return stats


def _tally(stats: dict[str, Any], batch: pl.DataFrame) -> None:
    stats["rows"] += batch.height
    lo, hi = batch["timestamp"].min(), batch["timestamp"].max()
    fmt = "%Y-%m-%dT%H:%M:%S.%f"
    lo_s = lo.strftime(fmt)[:-3] + "Z"  # type: ignore[union-attr]
    hi_s = hi.strftime(fmt)[:-3] + "Z"  # type: ignore[union-attr]
    stats["first"] = lo_s if stats["first"] is None or lo_s < stats["first"] else stats["first"]
    stats["last"] = hi_s if stats["last"] is None or hi_s > stats["last"] else stats["last"]
    for org, n in batch.group_by("organization_id").len().iter_rows():
        stats["orgs"][org] = stats["orgs"].get(org, 0) + n


def _record(
    store: Store, result: ExportResult, where: Any, filters: Mapping[str, Any], path: Path | None
) -> None:

    counts = dict(result.organizations)
    org_filter = filters.get("organization_id")
    if not counts and isinstance(org_filter, str):
        counts = {org_filter.lower(): 0}  # an empty export of one organization is still an export
    record_review(
        store,
        "audit_log.exported",
        counts,
        _review_details(result.format, result.fields, where, filters, result.sha256),
        path.name if path else "stdout",
    )
