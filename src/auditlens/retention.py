"""Retention per plan, through a verified Parquet archive — the one controlled way entries leave.

Plans: ``free`` keeps 7 days, ``starter`` 30, ``pro`` 365, ``enterprise`` a custom number of
days or everything. Organizations without a plan are never touched.

The archive is a lake (:mod:`auditlens.lake`): the same Hive partitions, Parquet schema
and chained manifests as ``auditlens lake sync``, so ``auditlens verify --lake ARCHIVE`` and
``al.open_lake(ARCHIVE)`` work on it, and one folder can be both the lake you sync and the
retention archive: it then holds the whole history once, archived and live.

For each organization, :func:`apply_retention` takes the oldest entries older than the
plan allows — always a prefix of the chain, so what stays is still one unbroken chain —
and, in this order:

1. has the lake's writer (:func:`~auditlens.lake.sync_lake`, up to the range's last seq)
   add what the lake does not hold yet: nothing when a sync already wrote the range; a
   new lake is partitioned by month (``organization_id=…/month=YYYY-MM/``). The writer
   refuses when the store does not continue the lake's chain, and the lake's rows of the
   range must be the store's entries (entry hashes compared);
2. writes one more lake manifest, chained to the others, that records the range (seq
   range, prev_hash of the first entry, last entry_hash, Merkle root of the archived
   leaves, rows, the files that hold it), atomically and never over another one;
3. reads the range back from the lake and checks every file hash (against the lake's
   manifests, whose chain must hold) and every chain link;
4. only then, in one transaction, deletes the range through the
   ``retention_authorizations`` path, records the boundary in ``retention_log`` (with the
   manifest's path and SHA-256) and appends an ``audit_log.retention_applied`` entry
   (with the plan it applied, the range, the manifest, its SHA-256, the range's Merkle root
   and the cutoff: ``verify`` ties each row to it, :func:`unrecorded_removals`).

Archives of the previous layout (files and one ``manifest-<first>-<last>.json`` per range
in the organization's folder, ``auditlens.archive.v1``) are still read, checked and
restored, in a folder or on S3; a folder or prefix holding such an archive takes the next
ranges in the lake layout beside it.

An ``s3://bucket/prefix`` archive is the same lake on S3 (through
:class:`~auditlens.lake.layout.LakeStorage`): same record, same read-back (from the
bucket) before removal, same refusals. There is no lock there: the record, like every
manifest, is written put-if-absent (``If-None-Match: *``), so a writer that numbered its
manifest alike is refused rather than replacing it; running one writer per lake at a time
is the operator's duty.

The plan it applies must be on record in the chain: the organization's newest
``organization.plan_changed`` or ``audit_log.retention_applied`` entry names the same
plan and days as its newest ``org_plans`` row (:func:`unrecorded_plan`); a plan row
written behind auditlens' back is refused, and ``verify`` reports it.

A crash anywhere loses nothing: before step 4 the entries are still in the store, and
the rerun reuses what the killed run synced (a manifest no ``retention_log`` row names
records nothing removed and stays in the lake's chain; files no manifest lists are removed
by the next sync; in the previous layout they are set aside); step 4 is one transaction.
The archive folder is recorded as an absolute path. New entries continue the chain from
the boundary even when every live entry was archived.

The boundary is checked, never trusted (:func:`check_archive`, used by ``verify``,
checkpoints and :func:`restore_archive`): archived ranges must follow each other without
gap or overlap, each manifest must have the SHA-256 recorded at retention time and name
the same organization, seq range and last entry hash as its ``retention_log`` row, and
the first live entry must continue the last one. Only a signed checkpoint whose tree
covers the archived range vouches for its content against someone who can rewrite both
the archive and the database; a restore says which one does, and refuses when none does
unless told otherwise.

Example:
    >>> RETENTION_DAYS["starter"]
    30
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete, func, select, text, true

from auditlens import s3
from auditlens.chain.canonical import CONTENT_FIELDS, GENESIS_HASH, content_hashes, link_hash
from auditlens.chain.verify import verify
from auditlens.config import redact_url, resolve_url
from auditlens.context import carry_forward
from auditlens.errors import ArchiveError, ConfigError, StoreError
from auditlens.frames import FRAME_SCHEMA
from auditlens.lake.layout import FORMAT as LAKE_FORMAT
from auditlens.lake.layout import (
    MANIFESTS,
    LakeState,
    LakeStorage,
    lake_lock,
    manifest_name,
    read_state,
)
from auditlens.lake.sync import sync_lake
from auditlens.merkle import MerkleTree, leaf_hash
from auditlens.plans import RETENTION_DAYS
from auditlens.query.filters import parse_when
from auditlens.retention_tables import org_plans
from auditlens.review import record_review, reviewer
from auditlens.schema import ip_key
from auditlens.store.backend import (
    FRAME_COLUMNS,
    entries,
    insert_chained,
    retention_authorizations,
    retention_log,
)
from auditlens.store.roles import REMOVE_FUNCTION
from auditlens.store.store import Store

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from auditlens.chain.notes import VerifierKey

__all__ = [
    "PLANS",
    "RETENTION_DAYS",
    "ArchiveCheck",
    "ArchiveError",
    "ArchivedRange",
    "RestoreResult",
    "RetentionResult",
    "apply_retention",
    "archive_boundary",
    "archived_leaves",
    "archived_ranges",
    "check_archive",
    "is_restored_copy",
    "plan_of",
    "read_archive",
    "read_manifest",
    "require_plan",
    "restore_archive",
    "set_plan",
    "unrecorded_plan",
    "unrecorded_removals",
]

PLANS = ("free", "starter", "pro", "enterprise")
_C = entries.c


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


@dataclass(frozen=True)
class ArchivedRange:
    """One archived range as retention recorded it: a ``retention_log`` row."""

    organization_id: str
    first_seq: int
    through_seq: int
    last_entry_hash: str  #: entry_hash of seq ``through_seq``: what the next entry chains to
    rows: int
    manifest: str  #: absolute path or s3:// URL of the manifest
    manifest_sha256: str  #: SHA-256 of the manifest's bytes when retention wrote it


@dataclass
class ArchiveCheck:
    """What :func:`check_archive` found about an organization's archived prefix.

    ``problems`` are ``(seq, kind, detail)``: kind ``boundary`` when a ``retention_log``
    row does not hold (against its manifest, or the row before it), ``archive`` when the
    archive cannot be read or its files and links do not match their manifest.
    """

    organization_id: str
    ranges: list[ArchivedRange]
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    #: the archived entries up to the boundary, when read (None otherwise)
    frame: pl.DataFrame | None = None

    @property
    def through_seq(self) -> int:
        """The last archived seq (0 when nothing is archived)."""
        return self.ranges[-1].through_seq if self.ranges else 0

    @property
    def last_entry_hash(self) -> str:
        """What the first live entry must chain to (the genesis hash when nothing is archived)."""
        return self.ranges[-1].last_entry_hash if self.ranges else GENESIS_HASH

    @property
    def entries(self) -> int:
        """Archived entries, as ``retention_log`` counts them."""
        return sum(r.rows for r in self.ranges)

    def leaves(self) -> list[bytes]:
        """Merkle leaves of the archived entries (read with ``read=True``)."""
        if self.frame is None:
            return []
        return [leaf_hash(bytes.fromhex(h)) for h in self.frame["entry_hash"].to_list()]


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore_archive` restored, and what vouches for it."""

    organization_id: str
    entries: pl.DataFrame  #: the restored entries (entries layout, with their chain fields)
    first_seq: int | None
    last_seq: int | None
    #: tree size of the signed checkpoint whose root covers the restored range, or None
    checkpoint_size: int | None
    signed_by: list[str]  #: who signed the covering checkpoint (trusted keys only)
    keys_source: str  #: "given" | "store" | "none": where the trusted keys came from

    @property
    def anchored(self) -> bool:
        """True when a signed checkpoint covers the restored range."""
        return self.checkpoint_size is not None


def set_plan(
    store: Store, organization_id: str, plan: str, retention_days: int | None = None
) -> None:
    """Give an organization a plan.

    ``retention_days`` is for the enterprise plan only; None there keeps everything.
    Plans are a history: each change is a new ``org_plans`` row (the table refuses UPDATE
    and DELETE), and the same transaction appends an ``organization.plan_changed`` entry to
    the organization's log with the old and new plan and days. Setting the plan it already
    has changes nothing.
    """
    if plan not in PLANS:
        raise ConfigError(f"plan must be one of {', '.join(PLANS)}, got {plan!r}")
    if retention_days is not None and (plan != "enterprise" or retention_days < 1):
        raise ConfigError("custom retention_days (≥ 1) is for the enterprise plan only")

    with store.transaction() as conn:
        old = _plan_rows(conn, organization_id).get(organization_id)
        if old == (plan, retention_days):
            return
        conn.execute(
            org_plans.insert().values(
                organization_id=organization_id,
                plan=plan,
                retention_days=retention_days,
                changed_ms=int(time.time() * 1000),
            )
        )
        old_plan, old_days = _effective(*old) if old else (None, None)
        store.append(  # nested in this transaction: the plan and its audit entry, or neither
            {
                "actor": reviewer(),
                "action": "organization.plan_changed",
                "organization_id": organization_id,
                "result": "success",
                "resource": {"type": "organization", "id": organization_id},
                "details": {
                    "old_plan": old_plan,
                    "old_retention_days": old_days,
                    "plan": plan,
                    "retention_days": _effective(plan, retention_days)[1],
                },
            }
        )


def _plan_rows(conn: Connection, organization_id: str | None) -> dict[str, tuple[str, int | None]]:
    """The newest ``org_plans`` row (as stored) of one or every organization — the one query
    that reads plans."""
    p = org_plans.c
    newest = select(func.max(p.id)).group_by(p.organization_id)
    if organization_id is not None:
        newest = newest.where(p.organization_id == organization_id)
    current = p.id.in_(newest.scalar_subquery())
    rows = conn.execute(select(p.organization_id, p.plan, p.retention_days).where(current))
    return {o: (plan, days) for o, plan, days in rows}


def plan_of(store: Store, organization_id: str) -> tuple[str, int | None] | None:
    """``(plan, retention days)`` of an organization (days None: keeps everything), or None
    when it has no plan. The current plan is the organization's newest plan change.

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> set_plan(store, "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11", "starter")
        >>> plan_of(store, "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11")
        ('starter', 30)
    """
    with store.connect() as conn:
        row = _plan_rows(conn, organization_id).get(organization_id)
    return None if row is None else _effective(*row)


_PLAN_ACTIONS = ("organization.plan_changed", "audit_log.retention_applied")


def unrecorded_plan(store: Store, organization_id: str) -> str | None:
    """Why the organization's current plan is not on record in its chain, or None when it is.

    :func:`set_plan` writes an ``org_plans`` row and an ``organization.plan_changed`` entry
    together, and retention records the plan it applied in its
    ``audit_log.retention_applied`` entry (which stays live when the plan's own entry is
    archived). So the newest of those entries must name the newest ``org_plans`` row's
    plan and days; a row INSERTed behind auditlens' back (to make retention remove more)
    does not.
    """
    with store.connect() as conn:
        row = _plan_rows(conn, organization_id).get(organization_id)
        if row is None:
            return None
        found = conn.execute(
            select(_C.seq, _C.action, _C.details)
            .where(_C.organization_id == organization_id, _C.action.in_(_PLAN_ACTIONS))
            .order_by(_C.seq.desc())
            .limit(1)
        ).first()
    plan, days = _effective(*row)
    if found is not None:
        try:
            details = json.loads(found.details)
        except ValueError:
            details = None
        if isinstance(details, dict) and (details.get("plan"), details.get("retention_days")) == (
            plan,
            days,
        ):
            return None
    where = (
        f"the newest entry recording a plan (seq {found.seq}, {found.action}) names another"
        if found is not None
        else "no organization.plan_changed entry records it"
    )
    return (
        f"the current plan {plan} ({days if days is not None else 'unlimited'} days) in "
        f"org_plans is not on record in the chain: {where}; the plan row was written behind "
        "auditlens' back (`auditlens plan set` records a change)"
    )


def _effective(plan: str, days: int | None) -> tuple[str, int | None]:
    """Custom days are the enterprise plan's only; the others keep their plan's days."""
    return plan, days if plan == "enterprise" else RETENTION_DAYS[plan]


def require_plan(store: Store, organization_id: str, plans: tuple[str, ...], what: str) -> str:
    """The organization's plan, or a ConfigError naming the plans that allow ``what``."""
    found = plan_of(store, organization_id)
    plan = found[0] if found else None
    if plan not in plans:
        raise ConfigError(
            f"{what} requires the {' or '.join(plans)} plan; organization "
            f"{organization_id} is on {plan or 'no plan'} (`auditlens plan set`)"
        )
    return str(plan)


def archive_boundary(store: Store, organization_id: str) -> tuple[int, str] | None:
    """``(through_seq, last entry_hash)`` of the organization's archived prefix, if any
    (as recorded; :func:`check_archive` checks it)."""
    ranges = archived_ranges(store, organization_id)
    return (ranges[-1].through_seq, ranges[-1].last_entry_hash) if ranges else None


def archived_ranges(store: Store, organization_id: str | None = None) -> list[ArchivedRange]:
    """The organization's ``retention_log`` rows, in seq order (as recorded, not checked);
    every organization's, by organization, when ``organization_id`` is None."""
    r = retention_log.c
    which = r.organization_id == organization_id if organization_id is not None else true()
    with store.connect() as conn:
        rows = conn.execute(
            select(
                r.organization_id,
                r.first_seq,
                r.through_seq,
                r.last_entry_hash,
                r.rows,
                r.manifest,
                r.manifest_sha256,
            )
            .where(which)
            .order_by(r.organization_id, r.through_seq, r.id)
        ).all()
    return [
        ArchivedRange(o, int(a), int(b), str(h), int(n), str(m), str(sha))
        for o, a, b, h, n, m, sha in rows
    ]


def check_archive(
    store: Store,
    organization_id: str,
    *,
    read: bool = False,
    verify: bool = False,
    ranges: list[ArchivedRange] | None = None,
) -> ArchiveCheck:
    """Check an organization's archived prefix against what retention recorded.

    Always (manifests only): the ``retention_log`` rows follow each other from seq 1 with
    no gap or overlap; each manifest has the SHA-256 recorded at retention time and names
    the same organization, first seq, last seq and last entry hash as its row, and starts
    from the row before it (``first_prev_hash``). With ``read``, the archived entries are
    read too (their seq range and Merkle root checked against the manifest), and with
    ``verify`` every file's SHA-256 and every chain link as well.

    The first live entry continuing the boundary is the caller's to check (``verify``
    does); so is what a signed checkpoint says about the archived leaves. ``ranges``: the
    organization's :func:`archived_ranges`, when the caller has already read them.
    """
    if ranges is None:
        ranges = archived_ranges(store, organization_id)
    check = ArchiveCheck(organization_id, ranges)
    frames = []
    states: dict[str, LakeState] = {}  # each lake's manifests, read once for all its ranges
    prev_seq, prev_hash = 0, GENESIS_HASH
    for rng in ranges:
        where = f"retention_log range {rng.first_seq}..{rng.through_seq} ({rng.manifest})"
        if rng.first_seq != prev_seq + 1 or rng.through_seq < rng.first_seq:
            check.problems.append(
                (
                    rng.first_seq,
                    "boundary",
                    f"{where} does not follow the archived range that ends at seq {prev_seq}: "
                    "archived ranges overlap or leave a gap",
                )
            )
        try:
            meta, sha = read_manifest(rng.manifest)
        except ArchiveError as exc:
            check.problems.append((rng.first_seq, "archive", f"{where}: {exc}"))
            prev_seq, prev_hash = rng.through_seq, rng.last_entry_hash
            continue
        found = _compare(rng, meta, sha, prev_hash)
        check.problems.extend((seq, "boundary", f"{where}: {what}") for seq, what in found)
        partial = rng.through_seq != meta.get("through_seq")
        if read or partial:
            try:
                frame = _read_archive(rng.manifest, verify, states)
            except ArchiveError as exc:
                seq = getattr(exc, "seq", None)
                check.problems.append((seq or rng.first_seq, "archive", str(exc)))
            except Exception as exc:  # a file that is not Parquet, a bucket out of reach
                check.problems.append(
                    (rng.first_seq, "archive", f"{rng.manifest}: archive unreadable ({exc})")
                )
            else:
                frame = frame.filter(pl.col("seq") <= rng.through_seq)
                if frame.height == 0 or frame["entry_hash"][-1] != rng.last_entry_hash:
                    check.problems.append(
                        (
                            rng.through_seq,
                            "boundary",
                            f"{where}: the archived entry seq {rng.through_seq} does not have "
                            "the last entry hash retention_log recorded",
                        )
                    )
                frames.append(frame)
        prev_seq, prev_hash = rng.through_seq, rng.last_entry_hash
    if read:
        check.frame = pl.concat(frames) if frames else _empty_frame()
    return check


def _compare(
    rng: ArchivedRange, meta: dict[str, Any], sha: str, prev_hash: str
) -> list[tuple[int, str]]:
    """Where a manifest departs from its retention_log row: ``(seq, what)``."""
    found = []
    if sha != rng.manifest_sha256:
        found.append(
            (
                rng.first_seq,
                f"the manifest's SHA-256 {sha[:16]}… is not the one recorded at retention "
                f"time ({rng.manifest_sha256[:16] or '-'}…): the manifest was changed",
            )
        )
    if meta.get("organization_id") != rng.organization_id:
        found.append(
            (
                rng.first_seq,
                f"the manifest is organization {meta.get('organization_id')}'s archive, "
                f"not organization {rng.organization_id}'s",
            )
        )
    first, through = meta.get("first_seq"), meta.get("through_seq")
    if (
        first != rng.first_seq
        or not isinstance(through, int)
        or not rng.first_seq <= rng.through_seq <= through
    ):
        found.append(
            (rng.first_seq, f"the manifest covers seq {first}..{through}, not the recorded range")
        )
    elif through == rng.through_seq and meta.get("last_entry_hash") != rng.last_entry_hash:
        found.append(
            (
                rng.through_seq,
                "the manifest's last entry hash is not the boundary hash retention_log recorded",
            )
        )
    if meta.get("first_prev_hash") != prev_hash:
        found.append(
            (
                rng.first_seq,
                f"the archive's seq {rng.first_seq} does not chain to the archived range before it",
            )
        )
    return found


def archived_leaves(store: Store, organization_id: str) -> list[bytes]:
    """Merkle leaves of an organization's archived entries (seq 1 up to the boundary), read
    back and checked against ``retention_log`` — what a checkpoint's tree starts with.

    Raises:
        ArchiveError: the archive does not match what retention recorded (the message
            lists where); a checkpoint signed over it would vouch for it.
    """
    check = check_archive(store, organization_id, read=True)
    if check.problems:
        raise ArchiveError(_summary(check, "its archive cannot be read back as recorded"))
    return check.leaves()


def _summary(check: ArchiveCheck, what: str) -> str:
    seq, _kind, detail = check.problems[0]
    more = len(check.problems) - 1
    return (
        f"organization {check.organization_id}: {what}: seq {seq}: {detail}"
        + (f" (and {more} more problem(s))" if more else "")
        + f"; run `auditlens verify --org {check.organization_id} --include-archive`"
    )


_APPLIED = "audit_log.retention_applied"
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class _Applied:
    """An ``audit_log.retention_applied`` entry of the chain (live or archived)."""

    seq: int
    ts: int
    details: dict[str, Any]

    def names(self, rng: ArchivedRange) -> bool:
        """True when its details name ``rng``'s range and manifest."""
        d = self.details
        return (d.get("first_seq"), d.get("through_seq"), d.get("manifest")) == (
            rng.first_seq,
            rng.through_seq,
            rng.manifest,
        )


def _details(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _chain_entries(
    store: Store, org: str, frame: pl.DataFrame | None, actions: tuple[str, ...]
) -> list[_Applied]:
    """The organization's entries with one of ``actions``, archived (``frame``) and live,
    in seq order, with their timestamps (ms) and details."""
    found: list[_Applied] = []
    if frame is not None and frame.height:
        rows = frame.filter(pl.col("action").is_in(list(actions))).select(
            "seq", pl.col("timestamp").dt.epoch("ms").alias("ts"), "details"
        )
        found += [_Applied(int(s), int(t), _details(d)) for s, t, d in rows.iter_rows()]
    with store.connect() as conn:
        rows2 = conn.execute(
            select(_C.seq, _C.ts, _C.details)
            .where(_C.organization_id == org, _C.action.in_(actions))
            .order_by(_C.seq)
        ).all()
    found += [_Applied(int(s), int(t), _details(d)) for s, t, d in rows2]
    return sorted({a.seq: a for a in found}.values(), key=lambda a: a.seq)


def _days_at(
    history: list[tuple[int, str, int | None]], changes: list[_Applied], ts: int
) -> tuple[bool, int | None]:
    """``(has a plan, retention days)`` in force at ``ts`` (days None: keeps everything),
    from both records of the plan history: the ``org_plans`` rows (``changed_ms``) and the
    ``organization.plan_changed`` entries. Where they differ the longer retention counts:
    a removal must be allowed by both."""
    by_row = [_effective(p, d)[1] for ms, p, d in history if ms <= ts]
    by_entry = [a.details.get("retention_days", -1) for a in changes if a.ts <= ts]
    known = ([by_row[-1]] if by_row else []) + ([by_entry[-1]] if by_entry else [])
    if not known:
        return False, None
    if any(d is None for d in known):
        return True, None
    days = [d for d in known if isinstance(d, int) and d > 0]
    return (True, max(days)) if len(days) == len(known) else (True, None)


def unrecorded_removals(store: Store, check: ArchiveCheck) -> list[tuple[int, str]]:
    """Where the archived ranges and the organization's ``audit_log.retention_applied``
    entries do not account for each other: ``(seq, detail)``.

    Retention deletes a range, writes its ``retention_log`` row and appends its
    ``audit_log.retention_applied`` entry in one transaction, so in the organization's
    chain (live entries, and archived ones in ``check.frame``, read with ``read=True``):

    - every ``retention_log`` row has an entry after its range that names the same seq
      range and manifest (and, when the entry records them, the manifest's SHA-256 and the
      Merkle root of the range's entry hashes);
    - that entry's timestamp (at most now) minus the retention days of the plan in force
      then (the ``org_plans`` rows and the ``organization.plan_changed`` entries; where
      they differ, the longer) is later than every entry of the range;
    - every ``audit_log.retention_applied`` entry names a range a row holds.

    A *restored side store* (:func:`restore_archive` with ``into``) holds archived entries
    and the ranges before them as its ``retention_log``, while their entries stay in the
    source store: an organization with ``retention_log`` rows but no plan ever (no
    ``org_plans`` row; retention refuses to run without one) is such a copy, and
    this check is the source store's (:func:`is_restored_copy`).

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
        >>> unrecorded_removals(store, check_archive(store, org, read=True))
        []
    """
    org, ranges, frame = check.organization_id, check.ranges, check.frame
    if is_restored_copy(store, org, ranges):
        return []
    applied = _chain_entries(store, org, frame, (_APPLIED,))
    if not ranges and not applied:
        return []
    changes = _chain_entries(store, org, frame, ("organization.plan_changed",))
    p = org_plans.c
    with store.connect() as conn:
        history = [
            (int(ms), str(plan), None if days is None else int(days))
            for ms, plan, days in conn.execute(
                select(p.changed_ms, p.plan, p.retention_days)
                .where(p.organization_id == org)
                .order_by(p.id)
            )
        ]
    now = int(time.time() * 1000)
    found: list[tuple[int, str]] = []
    for rng in ranges:
        where = f"retention_log row seq {rng.first_seq}..{rng.through_seq} ({rng.manifest})"
        part = (
            frame.filter(pl.col("seq").is_between(rng.first_seq, rng.through_seq))
            if frame is not None
            else None
        )
        entry = next(
            (a for a in applied if a.seq > rng.through_seq and _matches(a, rng, part)), None
        )
        if entry is None:
            near = [a.seq for a in applied if a.names(rng)]
            found.append(
                (
                    rng.first_seq,
                    f"{where}: no audit_log.retention_applied entry in the organization's "
                    "chain records this removal (same seq range, manifest, its SHA-256 and "
                    "Merkle root)"
                    + (f" — seq {', '.join(map(str, near))} name it otherwise" if near else "")
                    + ": the entries left the store outside a retention run, the row and "
                    "manifest are not retention's record",
                )
            )
            continue
        has_plan, days = _days_at(history, changes, entry.ts)
        if not has_plan or days is None:
            why = "no plan" if not has_plan else "a plan that keeps everything"
            found.append(
                (
                    rng.first_seq,
                    f"{where}: removed by the audit_log.retention_applied entry seq {entry.seq} "
                    f"while the organization had {why}: nothing could be removed",
                )
            )
            continue
        cutoff = min(entry.ts, now) - days * _DAY_MS
        if part is not None and part.height:
            newer = part.filter(pl.col("timestamp").dt.epoch("ms") >= cutoff)
            if newer.height:
                first_newer = int(newer["seq"][0])
                found.append(
                    (
                        first_newer,
                        f"{where}: removed earlier than the plan allows — the "
                        f"audit_log.retention_applied entry seq {entry.seq} is at "
                        f"{_iso(entry.ts)}, when the plan kept {days} days (cutoff "
                        f"{_iso(cutoff)}), but {newer.height} entries of the range, from seq "
                        f"{first_newer} on, are newer than that",
                    )
                )
    for a in applied:
        if not any(a.names(rng) for rng in ranges):
            d = a.details
            found.append(
                (
                    a.seq,
                    f"the audit_log.retention_applied entry seq {a.seq} names seq "
                    f"{d.get('first_seq')}..{d.get('through_seq')} ({d.get('manifest')}), "
                    "which no retention_log row holds: the row was removed or rewritten",
                )
            )
    return found


def _matches(a: _Applied, rng: ArchivedRange, part: pl.DataFrame | None) -> bool:
    """``a`` records ``rng``: range and manifest, and the manifest SHA-256 and Merkle root
    where the entry records them (entries of earlier versions record range and manifest)."""
    if not a.names(rng):
        return False
    sha = a.details.get("manifest_sha256")
    if sha is not None and sha != rng.manifest_sha256:
        return False
    root = a.details.get("merkle_root")
    if root is not None and part is not None and part.height == rng.rows:
        try:
            return _merkle_root(part) == str(root)
        except ValueError:  # an entry hash that is not hex: check_archive names it
            return False
    return True


def is_restored_copy(store: Store, organization_id: str, ranges: list[ArchivedRange]) -> bool:
    """True when the organization's archived ranges are a restored side store's anchors:
    ``retention_log`` rows in a store where the organization never had a plan (no
    ``org_plans`` row), which retention refuses — only :func:`restore_archive` writes them.

    Example:
        >>> import auditlens as al
        >>> is_restored_copy(al.open_store("sqlite://"), "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11", [])
        False
    """
    if not ranges:
        return False
    with store.connect() as conn:
        return _plan_rows(conn, organization_id).get(organization_id) is None


def _merkle_root(frame: pl.DataFrame) -> str:
    """Hex Merkle root of the entry hashes of ``frame`` (what a manifest records)."""
    leaves = [leaf_hash(bytes.fromhex(h)) for h in frame["entry_hash"].to_list()]
    return MerkleTree(leaves).root().hex()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _empty_frame() -> pl.DataFrame:
    return pl.DataFrame(pl.from_arrow(FRAME_SCHEMA.empty_table()))


def _plans(store: Store) -> dict[str, tuple[str, int | None]]:
    with store.connect() as conn:
        return {o: _effective(p, d) for o, (p, d) in _plan_rows(conn, None).items()}


def _through_function(conn: Connection) -> bool:
    """PostgreSQL, and this session may not DELETE entries itself (the retention role):
    removal goes through the archive-first function instead."""
    if conn.dialect.name != "postgresql":
        return False
    may_delete = conn.execute(
        text("SELECT has_table_privilege('audit_entries', 'DELETE')")
    ).scalar()
    return not may_delete


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


def _rows(store: Store, org: str, first: int, through: int) -> pl.DataFrame:
    stmt = (
        select(*FRAME_COLUMNS)
        .where(_C.organization_id == org, _C.seq >= first, _C.seq <= through)
        .order_by(_C.seq)
    )
    batches = list(store.read_batches(stmt))
    table = pa.Table.from_batches(batches, schema=FRAME_SCHEMA)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


_RANGE_FILE = re.compile(r"(?:seq|manifest)-(\d+)-\d+\.(?:parquet|json)")
_ORPHANS = "_orphaned"  # readers of Hive layouts skip folders starting with "_"


def _remove_orphans(root: Path, org: str, first: int) -> None:
    """Move aside what a killed run left in the organization's folder.

    Files of ranges from ``first`` on are listed by no manifest ``retention_log`` records
    (every recorded range ends before ``first``); left in place, a folder read would count
    their entries twice. They go to ``_orphaned/`` as ``<name>.orphaned`` — not deleted, in
    case another store shares the folder. Its own temporary files (``seq-…`` and
    ``manifest-…`` with ``.tmp``) are deleted; a lake sync's are its own (one may be running).
    """
    base = root / f"organization_id={org}"
    if not base.is_dir():
        return
    for path in [p for p in base.rglob("*") if p.is_file() and _ORPHANS not in p.parts]:
        m = _RANGE_FILE.fullmatch(path.name)
        if path.suffix == ".tmp" and _RANGE_FILE.fullmatch(path.stem):
            path.unlink()
        elif m and int(m[1]) >= first:
            (base / _ORPHANS).mkdir(exist_ok=True)
            path.replace(base / _ORPHANS / f"{path.name}.orphaned")


class _AtSeq(ArchiveError):
    """An archive problem at a known seq (``check_archive`` reports it there)."""

    def __init__(self, message: str, seq: int | None) -> None:
        super().__init__(message)
        self.seq = seq


def _range_record(org: str, frame: pl.DataFrame, first: int, through: int) -> dict[str, Any]:
    """What an archive's manifest records of the range ``first..through`` of ``org`` whose
    entries are ``frame`` (in seq order): its rows, the chain's ends and the Merkle root."""
    tree = MerkleTree([leaf_hash(bytes.fromhex(h)) for h in frame["entry_hash"].to_list()])
    return {
        "organization_id": org,
        "first_seq": first,
        "through_seq": through,
        "rows": frame.height,
        "first_prev_hash": frame["prev_hash"][0],
        "last_entry_hash": frame["entry_hash"][-1],
        "merkle_root": tree.root().hex(),
    }


def _archive_to_lake(
    store: Store, root: Path | str, org: str, frame: pl.DataFrame, first: int, through: int
) -> tuple[Path | str, str]:
    """Archive seq ``first..through`` of ``org`` into the lake at ``root`` (a folder or an
    ``s3://`` URL); the manifest that records the archived range (its path or URL) and the
    SHA-256 of its bytes.

    The lake's writer (:func:`~auditlens.lake.sync_lake`) adds what the lake does not hold
    yet, up to ``through`` (nothing when ``auditlens lake sync`` already wrote it; it
    refuses when the store does not continue the lake's chain); the lake's rows of the
    range must be the store's entries (their entry hashes compared). Then one more lake
    manifest, chained to the others, records the range: first and last seq, rows, the
    ``prev_hash`` of its first entry, its last ``entry_hash``, the Merkle root of its
    leaves, and the files that hold it. A new lake is partitioned by month. The record is
    written put-if-absent (:meth:`~auditlens.lake.layout.LakeStorage.create`): never over
    a manifest another writer numbered alike (on S3, where no lock keeps it out).
    """
    where = LakeStorage.at(root)
    state = read_state(where)
    head = state.heads.get(org)
    if head is None or head.last_seq < through:
        sync_lake(
            store,
            root,
            organization_id=org,
            through_seq=through,
            partition=None if state.manifests else "month",
        )
        state = read_state(where)
        head = state.heads.get(org)
    if head is None or head.first_seq > first or head.last_seq < through:
        held = f"seq {head.first_seq}..{head.last_seq}" if head else "nothing"
        raise ArchiveError(
            f"{where.url}: the lake holds {held} of organization {org}, not seq "
            f"{first}..{through}; nothing was removed"
        )
    record = _range_record(org, frame, first, through)
    files = [f for f in state.files_of(org) if f.last_seq >= first and f.first_seq <= through]
    meta = {**record, "format": LAKE_FORMAT, "files": [f.to_json() for f in files]}
    lake_rows = _read_lake_range(where, meta, where.url, verify=False, state=state)
    if lake_rows["entry_hash"].to_list() != frame["entry_hash"].to_list():
        raise ArchiveError(
            f"{where.url}: the lake's seq {first}..{through} of organization {org} are not this "
            "store's entries (another store synced there?); nothing was removed"
        )
    number = state.last_sync + 1
    manifest = {
        "format": LAKE_FORMAT,
        "sync": number,
        "kind": _RETENTION_KIND,
        "partition": state.partition,
        "previous_sha256": state.last_sha256,
        "created_at_ms": int(time.time() * 1000),
        "organizations": {},  # it adds no entries: the syncs before it did
        "files": meta["files"],  # the lake's current files that hold the range
        "replaces": [],
        **record,
    }
    rel = f"{MANIFESTS}/{manifest_name(number)}"
    data = json.dumps(manifest, indent=1).encode()
    try:
        where.create(rel, data)
    except FileExistsError:
        raise ArchiveError(
            f"{where.uri(rel)}: written by another lake sync or retention run meanwhile; "
            "nothing was removed: apply retention again"
        ) from None
    location = Path(where.uri(rel)) if where.local else where.uri(rel)
    return location, hashlib.sha256(data).hexdigest()


def _read_lake_range(
    lake: LakeStorage,
    meta: dict[str, Any],
    where: Path | str,
    *,
    verify: bool,
    state: LakeState | None = None,
) -> pl.DataFrame:
    """An archived range from the lake's current files (compaction may have rewritten the
    ones the retention manifest lists), as entries; with ``verify``, each file's SHA-256
    against the lake's manifests and the manifests' own chain too. ``state``: the lake's
    state when the caller has read it already (one read for every range it checks)."""
    if state is None:
        state = read_state(lake)
    org, first, through = meta["organization_id"], meta["first_seq"], meta["through_seq"]
    if verify:
        broken = [d for o, d in state.problems if o in ("", org)]
        if broken:
            raise _AtSeq(f"{where}: the lake's manifests do not hold: {broken[0]}", first)
    parts = []
    changed: _AtSeq | None = None  # the first file whose SHA-256 differs from its manifest
    for f in state.files_of(org):
        if f.last_seq < first or f.first_seq > through:
            continue
        what = f"{lake.uri(f.path)} (seq {f.first_seq}..{f.last_seq})"
        try:
            data = lake.read(f.path)
        except FileNotFoundError:
            raise _AtSeq(
                f"{what}: listed in {manifest_name(f.sync)} but missing", f.first_seq
            ) from None
        bad = verify and hashlib.sha256(data).hexdigest() != f.sha256
        if bad and changed is None:
            changed = _AtSeq(
                f"{what}: SHA-256 does not match the manifest {manifest_name(f.sync)}",
                f.first_seq,
            )
        try:
            rows = pl.read_parquet(io.BytesIO(data))
        except (OSError, pl.exceptions.PolarsError):
            if changed is not None:
                raise changed from None
            raise
        rows = rows.filter(pl.col("seq").is_between(first, through))
        parts.append(rows.with_columns(pl.lit(org, pl.String).alias("organization_id")))
    frame = (
        pl.concat([p.select(FRAME_SCHEMA.names) for p in parts]).sort("seq")
        if parts
        else _empty_frame()
    )
    if changed is not None:  # name the entry that changed, when the chain shows it
        try:
            _check_chain(frame, meta, where)
        except _AtSeq as exc:
            raise _AtSeq(f"{changed}; {exc}", exc.seq) from None
        except (ArchiveError, ValueError, pl.exceptions.PolarsError):
            pass
        raise changed
    return frame


def _write_archive(root: Path, org: str, frame: pl.DataFrame, first: int, through: int) -> Path:
    """The previous format, which retention no longer writes (what earlier versions wrote:
    the tests make archives of it, locally or with :func:`_publish` on S3): Parquet files
    and one manifest per range in the organization's folder."""
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
    manifest = {
        "format": "auditlens.archive.v1",
        **_range_record(org, frame, first, through),
        "files": files,
        "created_at_ms": int(time.time() * 1000),
    }
    mpath = base / f"manifest-{first:012d}-{through:012d}.json"
    _atomic_write(mpath, lambda p: p.write_text(json.dumps(manifest, indent=2)))
    return mpath


def read_manifest(manifest: str | Path) -> tuple[dict[str, Any], str]:
    """An archive manifest (a path or s3:// URL) and the SHA-256 of its bytes: a lake
    manifest that records a retained range (``"kind": "retention"``), or a manifest of the
    previous layout. Both carry ``organization_id``, ``first_seq``, ``through_seq``,
    ``rows``, ``first_prev_hash``, ``last_entry_hash``, ``merkle_root`` and ``files``.

    Raises:
        ArchiveError: the manifest is missing or is not a manifest.
    """
    if str(manifest).startswith("s3://"):
        import tempfile

        with tempfile.TemporaryDirectory(prefix="auditlens-manifest-") as tmp:
            return _load_manifest(s3.download(str(manifest), Path(tmp) / "manifest.json"))
    return _load_manifest(Path(manifest))


def _load_manifest(mpath: Path) -> tuple[dict[str, Any], str]:
    try:
        data = mpath.read_bytes()
        meta = json.loads(data)
        if not isinstance(meta, dict) or not isinstance(meta.get("files"), list):
            raise ValueError("not an auditlens archive manifest")
        if meta.get("format") == LAKE_FORMAT:
            meta = _retention_record(meta)
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{mpath}: unreadable manifest ({exc})") from None
    return meta, hashlib.sha256(data).hexdigest()


def _retention_record(meta: dict[str, Any]) -> dict[str, Any]:
    """A lake manifest that records an archived range (``"kind": "retention"``), checked
    to carry the fields of a previous-format manifest (``organization_id``, ``first_seq``,
    ``through_seq``, ``rows``, ``first_prev_hash``, ``last_entry_hash``, ``merkle_root``)."""
    if meta.get("kind") != _RETENTION_KIND:
        raise ValueError("a lake sync manifest, not a retention record")
    missing = [k for k in _RECORD_FIELDS if k not in meta]
    if missing:
        raise ValueError(f"a retention record without {', '.join(missing)}")
    return meta


_RETENTION_KIND = "retention"
_RECORD_FIELDS = (
    "organization_id",
    "first_seq",
    "through_seq",
    "rows",
    "first_prev_hash",
    "last_entry_hash",
    "merkle_root",
)


def read_archive(manifest: str | Path, *, verify: bool = True) -> pl.DataFrame:
    """The entries of one archive (a manifest file), checked against it unless ``verify=False``.

    Without ``verify``, only the rows' seq range and Merkle root are compared with the
    manifest; with it, every file's SHA-256 and every chain link too. A lake's range is
    read from the lake's current files (a later sync may have compacted the ones the
    manifest lists), their SHA-256 checked against the lake's manifests, whose own chain
    must hold.

    Raises:
        ArchiveError: a file is missing or changed, or a chain link does not hold.
    """
    return _read_archive(manifest, verify, {})


def _read_archive(manifest: str | Path, verify: bool, states: dict[str, LakeState]) -> pl.DataFrame:
    """:func:`read_archive`, with the lake states already read in this pass (by URL): a
    lake's manifests are read once however many archived ranges it holds."""
    text = str(manifest)
    remote = text.startswith("s3://")
    meta, _ = read_manifest(manifest)
    mpath: Path | str = text if remote else Path(manifest)
    if meta["format"] == LAKE_FORMAT:
        # <root>/manifests/sync-….json: the lake's files, in the folder or the bucket
        lake = LakeStorage.at(text.rsplit("/", 2)[0] if remote else Path(manifest).parent.parent)
        if lake.url not in states:
            states[lake.url] = read_state(lake)
        frame = _read_lake_range(lake, meta, mpath, verify=verify, state=states[lake.url])
    elif remote:
        return _read_remote(text, verify=verify)
    else:
        mpath = Path(manifest)
        root = mpath.parent.parent  # <root>/organization_id=…/manifest-….json
        parts = []
        for f in meta["files"]:
            path = root / f["path"]
            if not path.exists():
                raise ArchiveError(f"{path}: listed in {mpath.name} but missing")
            if verify and _sha(path) != f["sha256"]:
                raise _AtSeq(f"{path}: SHA-256 does not match the manifest", f.get("first_seq"))
            parts.append(pl.read_parquet(path))
        frame = pl.concat(parts).sort("seq") if parts else _empty_frame()
    _check_rows(frame, meta, mpath)
    if verify:
        _check_chain(frame, meta, mpath)
    return frame


def _remote_root(manifest_url: str) -> str:
    """``s3://b/p/organization_id=X/manifest-….json`` → ``s3://b/p`` (what file paths are under)."""
    return manifest_url.rsplit("/", 2)[0]


def _read_remote(manifest_url: str, *, verify: bool) -> pl.DataFrame:
    """Download an archive from S3 (manifest, then every file it lists) and read it."""
    import tempfile

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
    """Upload an archive of the previous layout (:func:`_write_archive`) to
    ``s3://bucket/prefix``, as earlier versions did; the manifest goes last, so a manifest
    in the bucket always has its files. Returns the manifest's URL."""

    conn = s3.client()
    meta = json.loads(manifest.read_text())
    base = url.rstrip("/")
    try:
        _remove_remote_orphans(conn, base, meta["organization_id"], meta["first_seq"])
        for f in meta["files"]:
            s3.upload(root / f["path"], base, f["path"], s3=conn)
        return s3.upload(manifest, base, str(manifest.relative_to(root)), s3=conn)
    except Exception as exc:  # boto3's errors: no bucket, no access, no network
        raise ArchiveError(
            f"{base}: cannot publish the archive ({type(exc).__name__}: {exc}); nothing was removed"
        ) from None


def _remove_remote_orphans(conn: Any, base: str, org: str, first: int) -> None:
    """What a killed upload left in the bucket, moved aside as :func:`_remove_orphans` does."""

    bucket, prefix = s3.split_url(base)
    folder = f"{prefix}/organization_id={org}/".lstrip("/")
    for page in conn.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for obj in page.get("Contents", []):
            key, name = obj["Key"], obj["Key"].rsplit("/", 1)[-1]
            m = _RANGE_FILE.fullmatch(name)
            if m and int(m[1]) >= first and f"/{_ORPHANS}/" not in key:
                aside = f"{folder}{_ORPHANS}/{name}.orphaned"
                conn.copy_object(
                    Bucket=bucket, Key=aside, CopySource={"Bucket": bucket, "Key": key}
                )
                conn.delete_object(Bucket=bucket, Key=key)


def _check_rows(frame: pl.DataFrame, meta: dict[str, Any], where: Path | str) -> None:
    if frame.height != meta["rows"] or frame["seq"].to_list() != list(
        range(meta["first_seq"], meta["through_seq"] + 1)
    ):
        raise ArchiveError(f"{where}: rows or seq range differ from the manifest")
    try:
        tree = MerkleTree([leaf_hash(bytes.fromhex(h)) for h in frame["entry_hash"].to_list()])
    except (TypeError, ValueError):
        raise ArchiveError(f"{where}: an entry_hash is not 64 hex digits") from None
    if tree.root().hex() != meta.get("merkle_root"):
        raise ArchiveError(
            f"{where}: the Merkle root of the entry hashes differs from the manifest"
        )


def _check_chain(frame: pl.DataFrame, meta: dict[str, Any], where: Path | str) -> None:
    rows = frame.rename({"timestamp": "ts"}).with_columns(pl.col("ts").dt.epoch("ms"))
    contents = content_hashes(rows.select(list(CONTENT_FIELDS)))
    prev = meta["first_prev_hash"]
    for stored, content, seq in zip(
        frame["entry_hash"].to_list(), contents, frame["seq"].to_list(), strict=True
    ):
        if link_hash(prev, content) != stored:
            raise _AtSeq(f"{where}: the chain breaks at seq {seq}", seq)
        prev = stored
    if prev != meta["last_entry_hash"]:
        raise ArchiveError(f"{where}: the last entry hash differs from the manifest")


def apply_retention(
    store: Store,
    archive_dir: str | os.PathLike[str],
    *,
    organization_id: str | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[RetentionResult]:
    """Archive, verify, then remove entries older than each organization's plan allows.

    ``archive_dir`` is a lake folder (new, or one ``auditlens lake sync`` writes too) or a
    lake at ``s3://bucket/prefix`` (settings from the environment, as for
    :class:`~auditlens.lake.layout.LakeStorage`); either way the range is read back from
    the lake before anything is removed.

    Raises:
        ArchiveError: the lake does not continue the organization's chain, holds other
            entries than the store for the range, does not read back as written, another
            writer holds the local lake or wrote the manifest number meanwhile (S3), or
            the bucket cannot be written.
        StoreError: the plan is not on record, the store's chain does not continue
            the archived boundary, or another run removed the range meanwhile.

    Example:
        >>> import tempfile
        >>> import auditlens as al
        >>> from datetime import UTC, datetime
        >>> store = al.open_store("sqlite://")
        >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
        >>> _ = store.append([{"actor": {"type": "system"}, "action": "auth.login",
        ...     "organization_id": org, "result": "success",
        ...     "timestamp": "2025-01-02T00:00:00Z"}])
        >>> set_plan(store, org, "free")
        >>> lake = tempfile.mkdtemp()
        >>> [res] = apply_retention(store, lake, now=datetime(2025, 3, 1, tzinfo=UTC))
        >>> res.through_seq, al.verify_lake(lake).ok, al.open_lake(lake).query().height
        (1, True, 1)
    """
    root: Path | str
    if str(archive_dir).startswith("s3://"):
        root = str(archive_dir).rstrip("/")
        s3.split_url(root)  # a bucket named, or a ConfigError
    else:  # recorded absolute: verify and restore run from any folder
        root = Path(archive_dir).expanduser().resolve()
    return _apply(store, root, organization_id, now, dry_run)


def _apply(
    store: Store,
    root: Path | str,
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
        unrecorded = unrecorded_plan(store, org)
        if unrecorded is not None:
            raise StoreError(f"organization {org}: retention refused: {unrecorded}")
        if days is None:
            results.append(RetentionResult(org, plan, None, None, None, 0, None, dry_run))
            continue
        cutoff = int((now - timedelta(days=days)).timestamp() * 1000)
        boundary = archive_boundary(store, org)
        first = (boundary[0] + 1) if boundary else 1
        with store.connect() as conn:
            keep_from = conn.execute(
                select(func.min(_C.seq)).where(_C.organization_id == org, _C.ts >= cutoff)
            ).scalar()
            last = conn.execute(select(func.max(_C.seq)).where(_C.organization_id == org)).scalar()
        through = (
            (int(keep_from) - 1)
            if keep_from is not None
            else (int(last) if last is not None else 0)
        )
        if not dry_run and isinstance(root, Path):
            _remove_orphans(root, org, first)
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
        if isinstance(root, Path):
            # the lake's one writer until the record is read back: a `lake sync` meanwhile
            # would number its manifest like the record (the record is put-if-absent: the
            # later one would be refused, after writing its files)
            with lake_lock(root):
                manifest, sha = _archive_to_lake(store, root, org, frame, first, through)
                read_archive(manifest)  # every file and link, before anything is deleted
        else:
            # no lock on S3: the record is put-if-absent, so two writers never share a
            # manifest; one run per lake at a time is the operator's to arrange
            manifest, sha = _archive_remote(store, root, org, frame, first, through)
            read_archive(manifest)  # read back from the bucket, before anything is deleted
        location = str(manifest)
        context = carry_forward(store, org, frame["audit_id"].to_list())
        record = {
            "organization_id": org,
            "first_seq": first,
            "through_seq": through,
            "last_entry_hash": frame["entry_hash"][-1],
            "rows": frame.height,
            "manifest": location,
            "manifest_sha256": sha,
            "applied_ms": int(time.time() * 1000),
        }
        with store.transaction() as conn:
            if _through_function(conn):
                # the retention role: no DELETE of its own, the archive-first function checks
                # the record against the store, removes and records (store/roles.py)
                conn.execute(
                    text(
                        f"SELECT {REMOVE_FUNCTION}(:organization_id, :first_seq, :through_seq, "
                        ":last_entry_hash, :rows, :manifest, :manifest_sha256, :applied_ms)"
                    ),
                    record,
                )
            else:
                conn.execute(
                    retention_authorizations.insert().values(
                        organization_id=org,
                        through_seq=through,
                        reason=f"retention {plan} {days}d",
                    )
                )
                removed = conn.execute(
                    delete(entries).where(_C.organization_id == org, _C.seq <= through)
                ).rowcount
                if removed != frame.height:  # rolls back: the range is recorded once
                    raise StoreError(
                        f"organization {org}: seq {first}..{through} were removed meanwhile "
                        f"({removed} of {frame.height} entries left: another retention run?); "
                        "this run removed and recorded nothing; run `auditlens verify`"
                    )
                conn.execute(
                    delete(retention_authorizations).where(
                        retention_authorizations.c.organization_id == org
                    )
                )
                conn.execute(retention_log.insert().values(**record))
            record_review(  # nested in this transaction: the removal and its entry, or neither
                store,
                "audit_log.retention_applied",
                {org: frame.height},
                {
                    "plan": plan,
                    "retention_days": days,
                    "first_seq": first,
                    "through_seq": through,
                    "manifest": location,
                    # what verify ties this entry to its retention_log row and range with
                    "manifest_sha256": record["manifest_sha256"],
                    "merkle_root": _merkle_root(frame),
                    "cutoff_ms": cutoff,
                },
                location.rsplit("/", 1)[-1],
            )
            if context:  # the organization's context outlives the entries that set it
                store.append(context)
        store.invalidate()  # entries were removed: every cache over them (Merkle trees)
        results.append(
            RetentionResult(
                org,
                plan,
                days,
                first,
                through,
                frame.height,
                manifest,
                False,
            )
        )
    return results


def _archive_remote(
    store: Store, url: str, org: str, frame: pl.DataFrame, first: int, through: int
) -> tuple[Path | str, str]:
    """:func:`_archive_to_lake` into the lake at ``s3://…``, after setting aside what a
    killed upload of the previous layout left in the organization's folder; the bucket's
    errors (no bucket, no access, no network) as an ArchiveError."""
    try:
        _remove_remote_orphans(s3.client(), url, org, first)
        return _archive_to_lake(store, url, org, frame, first, through)
    except (ArchiveError, ConfigError, StoreError):
        raise
    except Exception as exc:  # boto3's and pyarrow's errors
        raise ArchiveError(
            f"{url}: cannot write the archive ({type(exc).__name__}: {exc}); nothing was removed"
        ) from None


def restore_archive(
    store: Store,
    organization_id: str,
    *,
    start: Any = None,
    end: Any = None,
    into: str | None = None,
    keys: list[VerifierKey] | None = None,
    allow_unanchored: bool = False,
) -> RestoreResult:
    """Archived entries of an organization (enterprise plan), verified, and what vouches for them.

    Every archived range is checked against what retention recorded (see
    :func:`check_archive`: the manifests' SHA-256, organization, seq ranges and boundary
    hashes), every file and chain link against its manifest, and the signed checkpoints
    against the tree of archived and live entries (``keys``: the verifier keys you trust;
    default the store's). The result names the checkpoint that covers the restored range.

    ``into`` (a store URL or SQLite path of a new or empty store) also loads them, with
    their original seq and hashes, into that *side store*, where every auditlens query,
    search, detector and report works on them — and ``verify`` checks their chain,
    anchored at the first restored entry. The restore is recorded as ``audit_log.restored``.

    Raises:
        ArchiveError: the archive does not match what retention recorded or a signed
            checkpoint; or no signed checkpoint covers the restored range and
            ``allow_unanchored`` is False — without one, nothing tells the archive apart
            from one rewritten together with the database.
    """

    require_plan(store, organization_id, ("enterprise",), "restoring archived entries")
    check = check_archive(store, organization_id, read=True, verify=True)
    if check.problems:
        raise ArchiveError(_summary(check, "its archive does not match what retention recorded"))
    report = verify(store, organization_id, keys=keys)
    [res] = report.organizations
    refused = [p for p in res.problems if p.kind in ("boundary", "archive", "checkpoint_mismatch")]
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise ArchiveError(
            f"refusing to restore organization {organization_id}'s archive: {refused[0]}{more}; "
            f"run `auditlens verify --org {organization_id} --include-archive`"
        )
    frame = check.frame if check.frame is not None else _empty_frame()
    if frame.height and (start is not None or end is not None):
        ms = pl.col("timestamp").dt.epoch("ms")
        cond = pl.lit(True)
        if start is not None:
            cond = cond & (ms >= parse_when(start, field="start"))
        if end is not None:
            cond = cond & (ms <= parse_when(end, end_of_day=True, field="end"))
        chosen = frame.filter(cond)["seq"]
        if chosen.len():  # keep the seq range whole, so the restored chain has no holes
            frame = frame.filter(pl.col("seq").is_between(chosen.min(), chosen.max()))
        else:
            frame = frame.clear()
    lo = int(frame["seq"][0]) if frame.height else None
    hi = int(frame["seq"][-1]) if frame.height else None
    covered = res.archive_checkpoint
    if frame.height and covered is None and not allow_unanchored:
        raise ArchiveError(
            f"no signed checkpoint covers seq {lo}..{hi} of organization {organization_id} "
            f"(trusted keys: {report.keys_source}), so nothing tells this archive apart from "
            "one rewritten together with the database; pass the log's key (--key), or "
            "allow_unanchored=True (--allow-unanchored) to restore it anyway"
        )
    if into is not None and lo is not None:
        anchors = _anchors(check.ranges, lo, str(frame["prev_hash"][0]))
        _load_side_store(frame, organization_id, into, anchors)
    record_review(
        store,
        "audit_log.restored",
        {organization_id: frame.height},
        {
            "start": None if start is None else str(start),
            "end": None if end is None else str(end),
            "into": None if into is None else _redacted(into),
            "first_seq": lo,
            "last_seq": hi,
            "checkpoint": covered,
        },
        "archive",
    )
    return RestoreResult(
        organization_id,
        frame,
        lo,
        hi,
        covered,
        sorted({*res.signed_by, *res.witnesses}) if covered else [],
        report.keys_source,
    )


def _anchors(ranges: list[ArchivedRange], first: int, prev_hash: str) -> list[ArchivedRange]:
    """What a side store holding entries from seq ``first`` on records as its archived
    prefix: the archived ranges before ``first``, the last one cut at ``first - 1`` (whose
    entry_hash is ``prev_hash``, the first restored entry's link)."""
    out = [r for r in ranges if r.first_seq < first]
    if out and out[-1].through_seq >= first:
        cut = first - 1
        out[-1] = replace(
            out[-1], through_seq=cut, last_entry_hash=prev_hash, rows=cut - out[-1].first_seq + 1
        )
    return out


def _redacted(url: str) -> str:

    return redact_url(resolve_url(url))


def _load_side_store(frame: pl.DataFrame, org: str, url: str, anchors: list[ArchivedRange]) -> None:
    """Insert verified entries with their chain fields into an empty store, with the
    archived ranges before them as its ``retention_log`` (``verify`` checks them there)."""

    side = Store.open(url)
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
        with side.transaction() as conn:
            insert_chained(conn, rows)  # the one insert path of appends, with their chain fields
            for rng in anchors:  # verification starts at the first restored entry
                conn.execute(
                    retention_log.insert().values(
                        organization_id=org,
                        first_seq=rng.first_seq,
                        through_seq=rng.through_seq,
                        last_entry_hash=rng.last_entry_hash,
                        rows=rng.rows,
                        manifest=rng.manifest,
                        manifest_sha256=rng.manifest_sha256,
                        applied_ms=int(time.time() * 1000),
                    )
                )
    finally:
        side.close()
