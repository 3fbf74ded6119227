"""Importers: real audit trails (AWS CloudTrail, Okta, GitHub, Google Workspace, sshd)
read into entries, without hand-written converters.

Each source has a module (``auditlens.importers.cloudtrail``, ``okta``, ``github``,
``workspace``, ``sshd``) with ``read(paths, **options)`` (the entries, streamed),
``records(...)`` (the entries with their ``file:line`` and raw text, or why a record
cannot be one) and ``MAPPING`` (the documented field mapping, ``docs/IMPORTERS.md``).
:func:`import_files` appends them through the ingest path (batches, duplicates,
rejects file); ``auditlens import FORMAT PATH…`` is the same from the terminal.

Re-importing is a no-op: every entry's ``audit_id`` is derived from the source's own
id, so entries already stored are counted as such.

Example:
    >>> import auditlens as al
    >>> from auditlens.resources import samples_dir
    >>> store = al.open_store("sqlite://")
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> report = import_files(store, "sshd", [samples_dir() / "sshd"], year=2024,
    ...                       timezone="Europe/Berlin", organization=org)
    >>> report.appended > 0, report.ok
    (True, True)
    >>> import_files(store, "sshd", [samples_dir() / "sshd"], year=2024,
    ...              timezone="Europe/Berlin", organization=org).appended
    0
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from auditlens.context import org_profiles
from auditlens.errors import AmbiguousOrganizationError, ConfigError, FilterError, IngestError
from auditlens.importers.workers import Tally, checked_records, default_workers
from auditlens.ingest import IngestReport, SourceRecord, ingest_records
from auditlens.query.filters import parse_when
from auditlens.schema import format_timestamp, normalize_entries

if TYPE_CHECKING:
    import polars as pl  # lazy: polars only for frame()

    from auditlens.importers.entries import SourceMapping
    from auditlens.store.store import Store

__all__ = [
    "FORMATS",
    "ImportReport",
    "entries_only",
    "frame",
    "import_files",
    "mapping",
    "mappings_markdown",
    "module",
    "read",
    "records",
    "resolve_organization",
]

#: format name → module (imported on first use)
FORMATS: dict[str, str] = {
    "cloudtrail": "auditlens.importers.cloudtrail",
    "okta": "auditlens.importers.okta",
    "github": "auditlens.importers.github",
    "workspace": "auditlens.importers.workspace",
    "sshd": "auditlens.importers.sshd",
}

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def __getattr__(name: str) -> ModuleType:
    """``auditlens.importers.cloudtrail`` and the other format modules, imported on first use."""
    if name in FORMATS:
        return importlib.import_module(FORMATS[name])
    raise AttributeError(f"module 'auditlens.importers' has no attribute {name!r}")


def module(fmt: str) -> ModuleType:
    """The importer module of a format.

    Raises:
        ConfigError: no such format (the message lists them).
    """
    try:
        return importlib.import_module(FORMATS[fmt])
    except KeyError:
        raise ConfigError(
            f"unknown import format {fmt!r}; expected one of {', '.join(FORMATS)}"
        ) from None


def mapping(fmt: str) -> SourceMapping:
    """The documented mapping of a format."""
    result: SourceMapping = module(fmt).MAPPING
    return result


def mappings_markdown() -> str:
    """Every format's mapping table, as ``docs/IMPORTERS.md`` shows them."""
    return "\n".join(mapping(f).markdown() for f in FORMATS)


def records(fmt: str, paths: Paths, **options: Any) -> Iterator[SourceRecord]:
    """The records of ``paths`` read as ``fmt``: each entry (or why the record cannot be
    one) with its file, line and raw text."""
    result: Iterator[SourceRecord] = module(fmt).records(paths, **options)
    return result


def entries_only(recs: Iterable[SourceRecord]) -> Iterator[dict[str, Any]]:
    """The entries of records; the first record that is not one raises.

    Raises:
        IngestError: ``file:line: reason`` of the first bad record.
    """
    for rec in recs:
        if rec.value is None:  # not an audit event (skipped by the importer)
            continue
        if isinstance(rec.value, Exception):
            raise IngestError(f"{rec.file}:{rec.line}: {rec.value}")
        yield rec.value


def read(fmt: str, paths: Paths, **options: Any) -> Iterator[dict[str, Any]]:
    """The entries of ``paths`` read as ``fmt`` (streamed; ``options`` as the format's
    ``read`` takes them, e.g. ``year=`` and ``timezone=`` for ``sshd``).

    Example:
        >>> from auditlens.resources import samples_dir
        >>> entries = list(read("okta", samples_dir() / "okta", okta_org="acme.okta.com"))
        >>> sorted({e["result"] for e in entries})
        ['failure', 'partial', 'success']

    Raises:
        IngestError: at the first record that cannot be an entry (file:line: reason).
    """
    return entries_only(records(fmt, paths, **options))


def frame(fmt: str, paths: Paths, **options: Any) -> pl.DataFrame:
    """The entries of ``paths`` as a polars frame in the store's frame schema (no store
    needed; detectors run on it directly).

    Example:
        >>> from auditlens.resources import samples_dir
        >>> f = frame("cloudtrail", samples_dir() / "cloudtrail")
        >>> "actor_user_id" in f.columns and f.height > 0
        True
    """
    import polars as pl  # lazy: polars only for frame()

    from auditlens.frames import COLUMNS  # lazy: pyarrow only for frame()

    rows = normalize_entries(list(read(fmt, paths, **options)), max_details_bytes=1 << 62)
    names = [c for c in COLUMNS if c not in ("seq", "prev_hash", "entry_hash")]
    if not rows:
        return pl.DataFrame(schema=dict.fromkeys(names, pl.Utf8))
    out = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.from_epoch("ts", time_unit="ms").cast(pl.Datetime("ms", "UTC")).alias("timestamp")
    )
    return out.select(pl.col(c) if c == "timestamp" else pl.col(c).cast(pl.Utf8) for c in names)


@dataclass
class ImportReport(IngestReport):
    """What an import did: an :class:`~auditlens.ingest.IngestReport` plus the files read,
    the records skipped (not audit events: other programs in an auth.log, lines before
    ``since``) and the organizations written to."""

    files: int = 0
    skipped: int = 0
    organizations: tuple[str, ...] = ()


def resolve_organization(store: Store, value: str) -> str:
    """An organization id from ``--org``: a UUID as is (a new organization is fine), else
    the name set with ``auditlens org set --name``.

    Raises:
        FilterError: no organization has that name.
        AmbiguousOrganizationError: several do.
    """

    value = value.strip()
    if _UUID_RE.match(value):
        return value.lower()
    named = sorted(
        oid for oid, p in org_profiles(store).items() if (p.name or "").lower() == value.lower()
    )
    if not named:
        raise FilterError(
            f"no organization is named {value!r}; pass its id (a UUID), or name one with "
            "'auditlens org set ID --name NAME'"
        )
    if len(named) > 1:
        raise AmbiguousOrganizationError(value, named, named)
    return named[0]


def import_files(
    store: Store,
    fmt: str,
    paths: Paths,
    *,
    organization: str | None = None,
    since: object = None,
    rejects: str | os.PathLike[str] | None = None,
    batch_size: int = 10_000,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    **options: Any,
) -> ImportReport:
    """Import files (or folders) of a source into the store.

    Args:
        fmt: one of :data:`FORMATS`.
        organization: the organization (id or name) every entry goes to; without it the
            source's own tenant decides (see the format's mapping).
        since: skip records before this time (a date or ISO 8601 time, UTC if no zone).
        rejects: write each rejected record's raw text here (JSON Lines of native
            records, which the same importer reads back once fixed; sshd: the lines).
        workers: processes that read, map and validate files while this one appends
            (default: :func:`~auditlens.importers.workers.default_workers`; 0: all in this
            process). The result is the same either way, records in file order.
        options: the format's own options (``year``, ``timezone`` for ``sshd``).

    Returns:
        An :class:`ImportReport`: ``rejected`` entries carry ``file`` and ``line``.

    Raises:
        IngestError: a path is missing or a file cannot be read at all.
        IngestAbortedError: the database refused a batch.
    """

    mod = module(fmt)
    org = None if organization is None else resolve_organization(store, organization)
    since_iso = None if since is None else format_timestamp(parse_when(since, field="since"))
    tally = Tally()
    recs = checked_records(
        mod.__name__,
        paths,
        {"organization_id": org, "max_details_bytes": store.max_details_bytes, **options},
        tally=tally,
        since_iso=since_iso,
        strict_actions=store.strict_actions,
        max_details_bytes=store.max_details_bytes,
        workers=default_workers() if workers is None else workers,
    )
    done = ingest_records(
        store, recs, source=fmt, batch_size=batch_size, rejects=rejects, progress=progress
    )
    return ImportReport(
        source=fmt,
        read=done.read,
        appended=done.appended,
        duplicates=done.duplicates,
        rejected=done.rejected,
        files=len(tally.files),
        skipped=tally.skipped,
        organizations=tuple(sorted(tally.organizations)),
    )
