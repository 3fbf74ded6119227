"""Retention per plan, through a verified Parquet archive — the one controlled way entries leave.

Plans: ``free`` keeps 7 days, ``starter`` 30, ``pro`` 365, ``enterprise`` a custom number of
days or everything. Organizations without a plan are never touched.

For each organization, :func:`apply_retention` takes the oldest entries older than the
plan allows — always a prefix of the chain, so what stays is still one unbroken chain —
and, in this order:

1. writes them to Hive-partitioned Parquet (``organization_id=…/month=YYYY-MM/``, files
   named by their seq range, written to a temporary name and renamed);
2. writes a manifest (seq range, prev_hash of the first entry, last entry_hash, Merkle
   root of the archived leaves, SHA-256 and rows of every file), also atomically;
3. reads the archive back and checks every file hash and every chain link;
4. only then, in one transaction, deletes the range through the
   ``retention_authorizations`` path and records the boundary in ``retention_log``;
5. appends an ``audit_log.retention_applied`` entry.

A crash anywhere loses nothing: before step 4 the entries are still in the store and a
rerun rewrites the same files; step 4 is one transaction. Verification afterwards starts
at the recorded boundary (the first remaining entry must chain to the archived last hash).

Example:
    >>> RETENTION_DAYS["starter"]
    30
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete, func, select

from auditlens.chain.canonical import CONTENT_FIELDS, content_hashes, link_hash
from auditlens.errors import AuditLensError, ConfigError, StoreError
from auditlens.frames import FRAME_SCHEMA
from auditlens.merkle import MerkleTree, leaf_hash
from auditlens.review import record_review
from auditlens.store.tables import entries, org_plans, retention_authorizations, retention_log

if TYPE_CHECKING:
    from auditlens.store.store import AuditStore

__all__ = [
    "PLANS",
    "RETENTION_DAYS",
    "ArchiveError",
    "RetentionResult",
    "apply_retention",
    "archive_boundary",
    "plan_of",
    "read_archive",
    "require_plan",
    "restore_archive",
    "set_plan",
]

PLANS = ("free", "starter", "pro", "enterprise")
RETENTION_DAYS: dict[str, int | None] = {"free": 7, "starter": 30, "pro": 365, "enterprise": None}
_C = entries.c


class ArchiveError(AuditLensError, RuntimeError):
    """An archive does not match its manifest (or the manifest is missing)."""


@dataclass(frozen=True)
class RetentionResult:
    """What retention did (or, with ``dry_run``, would do) for one organization."""

    organization_id: str
    plan: str
    retention_days: int | None
    first_seq: int | None
    through_seq: int | None
    rows: int
    manifest: Path | str | None  #: a local path, or the s3:// URL of the manifest
    dry_run: bool


def set_plan(
    store: AuditStore, organization_id: str, plan: str, retention_days: int | None = None
) -> None:
    """Give an organization a plan.

    ``retention_days`` is for the enterprise plan only; None there keeps everything.
    """
    if plan not in PLANS:
        raise ConfigError(f"plan must be one of {', '.join(PLANS)}, got {plan!r}")
    if retention_days is not None and (plan != "enterprise" or retention_days < 1):
        raise ConfigError("custom retention_days (≥ 1) is for the enterprise plan only")
    with store._write() as conn:
        conn.execute(delete(org_plans).where(org_plans.c.organization_id == organization_id))
        conn.execute(
            org_plans.insert().values(
                organization_id=organization_id,
                plan=plan,
                retention_days=retention_days,
                updated_ms=int(time.time() * 1000),
            )
        )


def plan_of(store: AuditStore, organization_id: str) -> tuple[str, int | None] | None:
    """``(plan, retention days)`` of an organization (days None: keeps everything), or None
    when it has no plan.

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> set_plan(store, "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11", "starter")
        >>> plan_of(store, "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11")
        ('starter', 30)
    """
    with store.engine.connect() as conn:
        row = conn.execute(
            select(org_plans.c.plan, org_plans.c.retention_days).where(
                org_plans.c.organization_id == organization_id
            )
        ).first()
    return None if row is None else _effective(row[0], row[1])


def _effective(plan: str, days: int | None) -> tuple[str, int | None]:
    """Custom days are the enterprise plan's only; the others keep their plan's days."""
    return plan, days if plan == "enterprise" else RETENTION_DAYS[plan]


def require_plan(store: AuditStore, organization_id: str, plans: tuple[str, ...], what: str) -> str:
    """The organization's plan, or a ConfigError naming the plans that allow ``what``."""
    found = plan_of(store, organization_id)
    plan = found[0] if found else None
    if plan not in plans:
        raise ConfigError(
            f"{what} requires the {' or '.join(plans)} plan; organization "
            f"{organization_id} is on {plan or 'no plan'} (`auditlens plan set`)"
        )
    return str(plan)


def archive_boundary(store: AuditStore, organization_id: str) -> tuple[int, str] | None:
    """``(through_seq, last entry_hash)`` of the organization's archived prefix, if any."""
    r = retention_log.c
    with store.engine.connect() as conn:
        row = conn.execute(
            select(r.through_seq, r.last_entry_hash)
            .where(r.organization_id == organization_id)
            .order_by(r.through_seq.desc())
            .limit(1)
        ).first()
    return (int(row[0]), str(row[1])) if row is not None else None


def _plans(store: AuditStore) -> dict[str, tuple[str, int | None]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(org_plans.c.organization_id, org_plans.c.plan, org_plans.c.retention_days)
        )
        return {o: _effective(p, d) for o, p, d in rows}


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _rows(store: AuditStore, org: str, first: int, through: int) -> pl.DataFrame:
    from auditlens.store.store import _FRAME_COLUMNS

    stmt = (
        select(*_FRAME_COLUMNS)
        .where(_C.organization_id == org, _C.seq >= first, _C.seq <= through)
        .order_by(_C.seq)
    )
    batches = list(store._reader.batches(stmt))
    table = pa.Table.from_batches(batches, schema=FRAME_SCHEMA)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _write_archive(root: Path, org: str, frame: pl.DataFrame, first: int, through: int) -> Path:
    base = root / f"organization_id={org}"
    files = []
    monthly = frame.with_columns(pl.col("timestamp").dt.strftime("%Y-%m").alias("_month"))
    for (month,), part in monthly.group_by(["_month"], maintain_order=True):
        folder = base / f"month={month}"
        folder.mkdir(parents=True, exist_ok=True)
        lo, hi = int(part["seq"].min()), int(part["seq"].max())  # type: ignore[arg-type]
        path = folder / f"seq-{lo:012d}-{hi:012d}.parquet"
        data = part.drop("_month").to_arrow()
        _atomic_write(path, lambda p, d=data: pq.write_table(d, p, compression="zstd"))
        files.append(
            {
                "path": str(path.relative_to(root)),
                "rows": part.height,
                "sha256": _sha(path),
                "first_seq": lo,
                "last_seq": hi,
            }
        )
    tree = MerkleTree([leaf_hash(bytes.fromhex(h)) for h in frame["entry_hash"].to_list()])
    manifest = {
        "format": "auditlens.archive.v1",
        "organization_id": org,
        "first_seq": first,
        "through_seq": through,
        "rows": frame.height,
        "first_prev_hash": frame["prev_hash"][0],
        "last_entry_hash": frame["entry_hash"][-1],
        "merkle_root": tree.root().hex(),
        "files": files,
        "created_at_ms": int(time.time() * 1000),
    }
    mpath = base / f"manifest-{first:012d}-{through:012d}.json"
    _atomic_write(mpath, lambda p: p.write_text(json.dumps(manifest, indent=2)))
    return mpath


def read_archive(manifest: str | Path, *, verify: bool = True) -> pl.DataFrame:
    """The entries of one archive (a manifest file), checked against it unless ``verify=False``.

    Raises:
        ArchiveError: a file is missing or changed, or a chain link does not hold.
    """
    if str(manifest).startswith("s3://"):
        return _read_remote(str(manifest), verify=verify)
    mpath = Path(manifest)
    try:
        meta = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{mpath}: unreadable manifest ({exc})") from None
    root = mpath.parent.parent
    parts = []
    for f in meta["files"]:
        path = root / f["path"]
        if not path.exists():
            raise ArchiveError(f"{path}: listed in {mpath.name} but missing")
        if verify and _sha(path) != f["sha256"]:
            raise ArchiveError(f"{path}: SHA-256 does not match the manifest")
        parts.append(pl.read_parquet(path))
    frame = pl.concat(parts).sort("seq") if parts else pl.DataFrame()
    if verify:
        _check_chain(frame, meta, mpath)
    return frame


def _remote_root(manifest_url: str) -> str:
    """``s3://b/p/organization_id=X/manifest-….json`` → ``s3://b/p`` (what file paths are under)."""
    return manifest_url.rsplit("/", 2)[0]


def _read_remote(manifest_url: str, *, verify: bool) -> pl.DataFrame:
    """Download an archive from S3 (manifest, then every file it lists) and read it."""
    import tempfile

    from auditlens import s3

    conn = s3.client()
    root_url = _remote_root(manifest_url)
    with tempfile.TemporaryDirectory(prefix="auditlens-archive-") as tmp:
        rel = manifest_url[len(root_url) + 1 :]
        local = s3.download(manifest_url, Path(tmp) / rel, s3=conn)
        try:
            meta = json.loads(local.read_text())
        except ValueError as exc:
            raise ArchiveError(f"{manifest_url}: unreadable manifest ({exc})") from None
        for f in meta["files"]:
            s3.download(f"{root_url}/{f['path']}", Path(tmp) / f["path"], s3=conn)
        return read_archive(local, verify=verify)


def _publish(root: Path, manifest: Path, url: str) -> str:
    """Upload a verified local archive to ``s3://bucket/prefix``; the manifest goes last, so
    a manifest in the bucket always has its files. Returns the manifest's URL."""
    from auditlens import s3

    conn = s3.client()
    meta = json.loads(manifest.read_text())
    base = url.rstrip("/")
    for f in meta["files"]:
        s3.upload(root / f["path"], base, f["path"], s3=conn)
    return s3.upload(manifest, base, str(manifest.relative_to(root)), s3=conn)


def _check_chain(frame: pl.DataFrame, meta: dict[str, Any], where: Path) -> None:
    if frame.height != meta["rows"] or frame["seq"].to_list() != list(
        range(meta["first_seq"], meta["through_seq"] + 1)
    ):
        raise ArchiveError(f"{where}: rows or seq range differ from the manifest")
    rows = frame.rename({"timestamp": "ts"}).with_columns(pl.col("ts").dt.epoch("ms"))
    contents = content_hashes(rows.select(list(CONTENT_FIELDS)))
    prev = meta["first_prev_hash"]
    for stored, content, seq in zip(
        frame["entry_hash"].to_list(), contents, frame["seq"].to_list(), strict=True
    ):
        if link_hash(prev, content) != stored:
            raise ArchiveError(f"{where}: the chain breaks at seq {seq}")
        prev = stored
    if prev != meta["last_entry_hash"]:
        raise ArchiveError(f"{where}: the last entry hash differs from the manifest")


def apply_retention(
    store: AuditStore,
    archive_dir: str | os.PathLike[str],
    *,
    organization_id: str | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[RetentionResult]:
    """Archive, verify, then remove entries older than each organization's plan allows.

    ``archive_dir`` is a folder or ``s3://bucket/prefix`` (see :mod:`auditlens.s3` for the
    settings). An S3 archive is written and verified locally first, uploaded (manifest
    last), then downloaded and verified again before anything is removed.
    """
    remote = str(archive_dir).startswith("s3://")
    if remote:
        import shutil
        import tempfile

        staging = Path(tempfile.mkdtemp(prefix="auditlens-archive-"))
        try:
            return _apply(store, staging, str(archive_dir), organization_id, now, dry_run)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return _apply(store, Path(archive_dir), None, organization_id, now, dry_run)


def _apply(
    store: AuditStore,
    root: Path,
    remote: str | None,
    organization_id: str | None,
    now: datetime | None,
    dry_run: bool,
) -> list[RetentionResult]:
    now = now or datetime.now(UTC)
    plans = _plans(store)
    results = []
    for org in sorted(plans if organization_id is None else [organization_id]):
        if org not in plans:
            raise ConfigError(f"organization {org} has no plan; set one with set_plan()")
        plan, days = plans[org]
        if days is None:
            results.append(RetentionResult(org, plan, None, None, None, 0, None, dry_run))
            continue
        cutoff = int((now - timedelta(days=days)).timestamp() * 1000)
        boundary = archive_boundary(store, org)
        first = (boundary[0] + 1) if boundary else 1
        with store.engine.connect() as conn:
            keep_from = conn.execute(
                select(func.min(_C.seq)).where(_C.organization_id == org, _C.ts >= cutoff)
            ).scalar()
            last = conn.execute(select(func.max(_C.seq)).where(_C.organization_id == org)).scalar()
        through = (
            (int(keep_from) - 1)
            if keep_from is not None
            else (int(last) if last is not None else 0)
        )
        if through < first:
            results.append(RetentionResult(org, plan, days, None, None, 0, None, dry_run))
            continue
        if dry_run:
            results.append(
                RetentionResult(org, plan, days, first, through, through - first + 1, None, True)
            )
            continue
        frame = _rows(store, org, first, through)
        if boundary is not None and frame["prev_hash"][0] != boundary[1]:
            raise StoreError(
                f"organization {org}: seq {first} does not chain to the archived boundary; "
                "run `auditlens verify` before applying retention"
            )
        manifest = _write_archive(root, org, frame, first, through)
        read_archive(manifest)  # every file and link, read back before anything is deleted
        location = str(manifest)
        if remote is not None:
            location = _publish(root, manifest, remote)
            read_archive(location)  # and read back from the bucket too
        with store._write() as conn:
            conn.execute(
                retention_authorizations.insert().values(
                    organization_id=org, through_seq=through, reason=f"retention {plan} {days}d"
                )
            )
            conn.execute(delete(entries).where(_C.organization_id == org, _C.seq <= through))
            conn.execute(
                delete(retention_authorizations).where(
                    retention_authorizations.c.organization_id == org
                )
            )
            conn.execute(
                retention_log.insert().values(
                    organization_id=org,
                    first_seq=first,
                    through_seq=through,
                    last_entry_hash=frame["entry_hash"][-1],
                    rows=frame.height,
                    manifest=location,
                    manifest_sha256=_sha(manifest),
                    applied_ms=int(time.time() * 1000),
                )
            )
        store.__dict__.pop("_merkle_trees", None)
        record_review(
            store,
            "audit_log.retention_applied",
            {org: frame.height},
            {
                "plan": plan,
                "retention_days": days,
                "first_seq": first,
                "through_seq": through,
                "manifest": location,
            },
            manifest.name,
        )
        results.append(
            RetentionResult(
                org,
                plan,
                days,
                first,
                through,
                frame.height,
                location if remote else manifest,
                False,
            )
        )
    return results


def restore_archive(
    store: AuditStore,
    organization_id: str,
    *,
    start: Any = None,
    end: Any = None,
    into: str | None = None,
) -> pl.DataFrame:
    """Archived entries of an organization (enterprise plan), verified against their manifests.

    Returns them as a polars frame (the entries layout, with their chain fields). With
    ``into`` (a store URL or SQLite path of a new or empty store) they are also loaded,
    with their original seq and hashes, into that *side store*, where every auditlens
    query, search, detector and report works on them — and ``verify`` checks their
    chain, anchored at the first restored entry. The restore is recorded as
    ``audit_log.restored``.
    """
    from auditlens.query.filters import parse_when

    require_plan(store, organization_id, ("enterprise",), "restoring archived entries")
    r = retention_log.c
    with store.engine.connect() as conn:
        manifests = [
            m
            for (m,) in conn.execute(
                select(r.manifest).where(r.organization_id == organization_id).order_by(r.first_seq)
            )
        ]
    frames = [read_archive(m) for m in manifests]
    empty = pl.DataFrame(pl.from_arrow(FRAME_SCHEMA.empty_table()))
    frame = pl.concat(frames) if frames else empty
    if frame.height and (start is not None or end is not None):
        ms = pl.col("timestamp").dt.epoch("ms")
        cond = pl.lit(True)
        if start is not None:
            cond = cond & (ms >= parse_when(start, field="start"))
        if end is not None:
            cond = cond & (ms <= parse_when(end, end_of_day=True, field="end"))
        chosen = frame.filter(cond)["seq"]
        if chosen.len():  # keep the seq range whole, so the restored chain has no holes
            lo, hi = chosen.min(), chosen.max()
            frame = frame.filter(pl.col("seq").is_between(lo, hi))
        else:
            frame = frame.clear()
    if into is not None and frame.height:
        _load_side_store(frame, organization_id, into, manifests[0])
    record_review(
        store,
        "audit_log.restored",
        {organization_id: frame.height},
        {
            "start": None if start is None else str(start),
            "end": None if end is None else str(end),
            "into": None if into is None else _redacted(into),
        },
        "archive",
    )
    return frame


def _redacted(url: str) -> str:
    from auditlens.config import redact_url, resolve_url

    return redact_url(resolve_url(url))


def _load_side_store(frame: pl.DataFrame, org: str, url: str, manifest: str) -> None:
    """Insert verified entries with their chain fields into an empty store."""
    from auditlens.schema import ip_key
    from auditlens.store import open_store
    from auditlens.store.store import _FTS_FILL

    side = open_store(url)
    try:
        if side.count(organization_id=org):
            raise StoreError(
                f"{_redacted(url)} already holds entries of organization {org}; "
                "restore into a new store"
            )
        ips = frame["ip_address"].drop_nulls().unique().to_list()
        keys = {ip: ip_key(ip) for ip in ips}  # once per distinct address, not per row
        rows = (
            frame.with_columns(pl.col("timestamp").dt.epoch("ms").alias("ts"))
            .drop("timestamp")
            .with_columns(
                pl.col("ip_address")
                .replace_strict(keys, default=None, return_dtype=pl.Utf8)
                .alias("ip_key")
            )
            .to_dicts()
        )
        first = int(frame["seq"][0])
        with side._write() as conn:
            first_id = (conn.execute(select(func.coalesce(func.max(_C.id), 0))).scalar_one()) + 1
            conn.execute(entries.insert(), rows)
            if side.dialect == "sqlite":
                conn.execute(_FTS_FILL, {"first": first_id})
            if first > 1:  # anchor verification at the first restored entry
                conn.execute(
                    retention_log.insert().values(
                        organization_id=org,
                        first_seq=1,
                        through_seq=first - 1,
                        last_entry_hash=frame["prev_hash"][0],
                        rows=first - 1,
                        manifest=manifest,
                        manifest_sha256="",
                        applied_ms=int(time.time() * 1000),
                    )
                )
    finally:
        side.close()
