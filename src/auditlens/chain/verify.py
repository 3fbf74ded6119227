"""Verification of a store: every link of every chain, and every checkpoint against it.

Entries are read in ``seq`` order in chunks (constant memory apart from 32 bytes per
leaf for the Merkle tree), content hashes are computed column-wise, then each link
is checked: ``entry_hash == SHA-256(prev_hash ‖ content_hash)`` and ``prev_hash`` equals
the previous entry's ``entry_hash``. Checkpoints are checked for signatures (against
the keys you trust, else the keys recorded in the store — which an attacker with
write access could replace, so pass your own) and for their root at their size.

With keys you trust, an organization with entries but no checkpoint signed by one of
them is a problem (``no_checkpoint``): deleting checkpoints must not hide a truncation.
With a monitor state (``state=path``), the largest checkpoint each organization had on
the last clean run must still be there, with its witnesses, and the current tree must
be consistent with it (RFC 6962 consistency proof) — otherwise ``checkpoint_missing``,
``truncated`` or ``checkpoint_mismatch``. The state file is written only after a run
without problems.

After retention, an organization's chain starts at its archived boundary: the
``retention_log`` rows are checked against the archive's manifests (see
:func:`auditlens.retention.check_archive`), the first live entry must continue the last
one exactly, and every live entry is checked whatever the rows say. The report counts
the archived entries apart, says how they were checked and whether a signed checkpoint
covers them. An archived range that no trusted checkpoint covers is re-read file by file
and link by link: its manifest and row may be the work of whoever deleted the entries.
Every row must also have its ``audit_log.retention_applied`` entry in the chain, and the
plan in force at that entry's time must have allowed the removal (``retention``, see
:func:`auditlens.retention.unrecorded_removals`).

Side tables are checked too: a standing ``retention_authorizations`` row
(``authorization``) and a current plan no audit entry records (``plan``).

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> _ = store.append([{"actor": {"type": "system"}, "action": "auth.login",
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11", "result": "success"}] * 1)
    >>> report = al.verify(store)
    >>> report.ok, report.checked
    (True, 1)
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import func, select

from auditlens.chain.canonical import (
    CONTENT_FIELDS,
    GENESIS_HASH,
    content_hash_expr,
    content_hashes,
)
from auditlens.chain.checkpoints import (
    SeenCheckpoint,
    list_checkpoints,
    load_monitor_state,
    recorded_keys,
    save_monitor_state,
)
from auditlens.chain.notes import VerifierKey, parse_checkpoint, parse_note
from auditlens.errors import ConfigError
from auditlens.merkle import MerkleTree, leaf_hash, verify_consistency
from auditlens.retention_tables import org_plans
from auditlens.store.backend import ArrowReader, entries, retention_authorizations, retention_log

if TYPE_CHECKING:
    from auditlens.retention import ArchiveCheck
    from auditlens.store.store import Store

__all__ = ["MAX_PROBLEMS", "OrganizationResult", "Problem", "VerificationReport", "verify"]

_C = entries.c
_COLUMNS = (*CONTENT_FIELDS, "prev_hash", "entry_hash")
_SCHEMA = pa.schema(
    [pa.field(c, pa.int64() if c in ("seq", "ts") else pa.string()) for c in _COLUMNS]
)
_MAX_LOOKUPS = 50
_RANGE_ROWS = 250_000  # rows per id range of the fast pass (two ranges are read at once)
MAX_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    """One place where the log does not verify."""

    organization_id: str
    seq: int | None
    audit_id: str | None
    #: modified | missing | inserted | reordered | truncated | bad_signature |
    #: checkpoint_mismatch | no_checkpoint | checkpoint_missing | archive | boundary |
    #: retention | authorization | plan
    kind: str
    expected: str | None
    found: str | None
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "checkpoint"
        aid = f" ({self.audit_id})" if self.audit_id else ""
        return f"{self.organization_id} {where}{aid}: {self.kind} — {self.detail}"


@dataclass
class OrganizationResult:
    """What was checked for one organization."""

    organization_id: str
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    latest_checkpoint_size: int | None = None
    latest_checkpoint_root: str | None = None  #: hex root of the largest trusted checkpoint
    latest_checkpoint_ms: int | None = None  #: its ``time`` line
    latest_checkpoint_witnesses: list[str] = field(default_factory=list)  #: who cosigned that size
    signed_by: list[str] = field(default_factory=list)
    witnesses: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    omitted_problems: int = 0  #: problems past the first MAX_PROBLEMS, counted only
    #: entries removed by retention (retention_log rows), not counted in ``entries``
    archived_entries: int = 0
    archived_through: int | None = None  #: last archived seq
    #: how the archive was checked: "none" (nothing archived), "manifest" (manifests and
    #: boundary against retention_log), "files" (also every file's SHA-256 and chain link)
    archive_check: str = "none"
    #: tree size of a signed checkpoint whose root covers the archived range, else None
    archive_checkpoint: int | None = None
    #: a restored side store (retention_log rows, never a plan): the archived ranges'
    #: ``audit_log.retention_applied`` entries are in the source store, checked there
    restored_copy: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.problems


@dataclass
class VerificationReport:
    """Result of :func:`verify`: data, with the first broken place of each organization."""

    organizations: list[OrganizationResult]
    started_at: float
    seconds: float
    keys_source: str  # "given" | "store" | "none"
    #: the monitor state file this run wrote (None: no state given, or problems found)
    state_written: str | None = None

    @property
    def ok(self) -> bool:
        """True when every organization verified."""
        return all(o.ok for o in self.organizations)

    @property
    def problems(self) -> list[Problem]:
        """Every problem, by organization and seq."""
        return [p for o in self.organizations for p in o.problems]

    @property
    def checked(self) -> int:
        """Live entries checked (every one, whatever retention_log says)."""
        return sum(o.entries for o in self.organizations)

    @property
    def archived(self) -> int:
        """Entries removed by retention; each organization says how they were checked."""
        return sum(o.archived_entries for o in self.organizations)

    def first_problem(self, organization_id: str) -> Problem | None:
        """The first broken place in an organization's chain, if any."""
        for o in self.organizations:
            if o.organization_id == organization_id and o.problems:
                return min(o.problems, key=lambda p: (p.seq is None, p.seq or 0))
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "archived": self.archived,
            "seconds": round(self.seconds, 3),
            "keys_source": self.keys_source,
            "state_written": self.state_written,
            "organizations": [
                {
                    **{k: v for k, v in o.__dict__.items() if k != "problems"},
                    "ok": o.ok,
                    "problems": [p.__dict__ for p in o.problems],
                }
                for o in self.organizations
            ],
        }


def verify(
    store: Store,
    organization_id: str | None = None,
    *,
    since_seq: int | None = None,
    checkpoint: str | None = None,
    keys: list[VerifierKey] | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 100_000,
    include_archive: bool = False,
    state: str | os.PathLike[str] | None = None,
) -> VerificationReport:
    """Re-compute every link of every (or one) organization's chain and check checkpoints.

    Args:
        organization_id: only this organization.
        since_seq: start at this seq (its link to seq − 1 is still checked).
        checkpoint: a signed checkpoint note to check against, instead of the stored ones.
        keys: verifier keys you trust (log and witnesses). Without them, the keys
            recorded in the store are used and the report says so. With them, an
            organization with entries but no checkpoint signed by one of them is a problem.
        progress: called with the number of entries checked since the last call.
        include_archive: also re-verify every archived range against its manifest
            (file hashes and every link); without it the archive is only read for the
            leaves that checkpoints need.
        state: a monitor state file (JSON): the largest checkpoint seen per organization.
            A checkpoint remembered there that is gone (or lost its witness cosignature),
            a smaller tree or one not consistent with it is a problem. Written (created
            or updated) only when the run finds no problem.

    Raises:
        ConfigError: ``state`` together with ``checkpoint``, or a malformed state file.
    """
    if state is not None and checkpoint is not None:
        raise ConfigError("a monitor state checks the stored checkpoints; drop `checkpoint`")
    seen = load_monitor_state(state) if state is not None else {}
    started = time.time()
    t0 = time.perf_counter()
    if keys is not None:
        trusted, source = list(keys), "given"
    else:
        trusted = [k for k, _ in recorded_keys(store)]
        source = "store" if trusted else "none"
    with store.engine.connect() as conn:
        orgs = [
            o
            for (o,) in conn.execute(
                select(_C.organization_id).group_by(_C.organization_id).order_by(_C.organization_id)
            )
        ]
        cp_orgs = {r.organization_id for r in list_checkpoints(store)}
        archived = set(conn.execute(select(retention_log.c.organization_id).distinct()).scalars())
        # outside a retention transaction this table is empty: a row lets anyone delete
        standing = {
            o: int(t)
            for o, t in conn.execute(
                select(
                    retention_authorizations.c.organization_id,
                    retention_authorizations.c.through_seq,
                )
            )
        }
        planned = set(conn.execute(select(org_plans.c.organization_id).distinct()).scalars())
        # organizations whose chain records a retention run (checked against retention_log)
        applied = set(
            conn.execute(
                select(_C.organization_id)
                .where(_C.action == "audit_log.retention_applied")
                .distinct()
            ).scalars()
        )
    if organization_id is not None:
        orgs = [organization_id]
    else:
        orgs = sorted(set(orgs) | cp_orgs | set(seen) | archived | set(standing) | planned)
    need_tree = cp_orgs | set(seen)
    require = keys is not None
    reader = ArrowReader(store.engine, _SCHEMA)
    results = []
    try:
        fast: dict[str, OrganizationResult] = {}
        if organization_id is None and not since_seq:
            fast = _fast_pass(
                store,
                reader,
                orgs,
                checkpoint,
                trusted,
                progress,
                chunk_size,
                include_archive,
                need_tree=need_tree,
                require=require,
                seen=seen,
                archived=archived,
            )
        for org in orgs:
            if org in fast:
                results.append(fast[org])
                continue
            results.append(
                _verify_org(
                    store,
                    reader,
                    org,
                    since_seq,
                    checkpoint,
                    trusted,
                    None if fast else progress,
                    chunk_size,
                    include_archive,
                    require=require,
                    seen=seen,
                )
            )
    finally:
        reader.close()
    for res in results:
        org = res.organization_id
        _check_side_tables(
            store,
            res,
            standing.get(org),
            planned=org in planned,
            applied=org in applied and not res.archived_entries and org not in archived,
        )
    report = VerificationReport(results, started, time.perf_counter() - t0, source)
    if state is not None and report.ok:
        save_monitor_state(state, _next_state(seen, results))
        report.state_written = str(state)
    return report


def _next_state(
    seen: dict[str, SeenCheckpoint], results: list[OrganizationResult]
) -> dict[str, SeenCheckpoint]:
    """The remembered checkpoints after a clean run: each organization's largest one."""
    out = dict(seen)
    for r in results:
        if r.latest_checkpoint_size is None or r.latest_checkpoint_root is None:
            continue
        old = out.get(r.organization_id)
        witnesses = set(r.latest_checkpoint_witnesses)
        if old is not None and old.size == r.latest_checkpoint_size:
            witnesses |= set(old.witnesses)
        out[r.organization_id] = SeenCheckpoint(
            r.latest_checkpoint_size,
            r.latest_checkpoint_root,
            r.latest_checkpoint_ms,
            tuple(sorted(witnesses)),
        )
    return out


@dataclass
class _OrgState:
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    entries: int = 0
    first_seq: int | None = None
    suspicious: bool = False
    leaves: list[bytes] | None = None


def _fast_pass(
    store: Store,
    reader: ArrowReader,
    orgs: list[str],
    checkpoint: str | None,
    trusted: list[VerifierKey],
    progress: Callable[[int], None] | None,
    chunk: int,
    include_archive: bool = False,
    *,
    need_tree: set[str] | None = None,
    require: bool = False,
    seen: dict[str, SeenCheckpoint] | None = None,
    archived: set[str] | None = None,
) -> dict[str, OrganizationResult]:
    """Check every organization in one sequential read of the table, column-wise.

    Rows come in row order, which is each organization's seq order unless someone
    tampered with seq numbers. Content hashes, link hashes and the comparisons are
    vectorized; an organization where anything is off is left out of the result, so
    the caller re-verifies it in seq order to name the problem precisely.
    """
    import polars as pl  # lazy: polars costs ~0.2 s at start-up; only this path needs it
    import polars_hash  # noqa: F401 - registers .chash  # lazy: polars-hash only for column-wise hashing

    if checkpoint is not None:
        with_checkpoints = set(orgs)
    elif need_tree is not None:
        with_checkpoints = need_tree
    else:
        with_checkpoints = {r.organization_id for r in list_checkpoints(store)}
    state = {org: _OrgState(leaves=[] if org in with_checkpoints else None) for org in orgs}
    results = {org: OrganizationResult(org) for org in orgs}
    for org, org_state in state.items():
        if archived is not None and org not in archived:
            continue  # no retention_log row: the chain starts at genesis
        arch = _archived(
            store,
            org,
            results[org],
            include_archive,
            org_state.leaves is not None,
            partial(_trusted_size, store, org, checkpoint, trusted),
        )
        org_state.last_seq, org_state.last_hash = arch.through_seq, arch.last_entry_hash
        if org_state.leaves is not None:
            org_state.leaves.extend(arch.leaves())
        org_state.suspicious = bool(results[org].problems)
    cols = [_C[c] for c in _COLUMNS]
    stmt = select(*cols).order_by(_C.id)
    # disjoint id ranges, two read at once (two reader processes on SQLite)
    with store.engine.connect() as conn:
        lo, hi = conn.execute(select(func.min(_C.id), func.max(_C.id))).one()
    span = max(chunk, _RANGE_ROWS)
    ranges = (
        [stmt.where(_C.id >= a, _C.id < a + span) for a in range(int(lo), int(hi) + 1, span)]
        if lo is not None
        else [stmt]
    )
    # entry_hash = SHA-256(prev ‖ content): hex text joined, decoded, hashed, all in Rust
    # (a prev_hash that is not hex decodes to null: a null link, flagged below)
    link_expr = (
        pl.concat_str([pl.col("prev_hash"), content_hash_expr()])
        .str.decode("hex", strict=False)
        .chash.sha2_256()  # type: ignore[attr-defined]
    )
    for batch in reader.ranged_batches(ranges, chunk):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        link = frame.select(link_expr.alias("_link")).to_series()
        firsts = frame.with_row_index("_i").group_by("organization_id").agg(pl.col("_i").first())
        start_seq = {
            o: state[o].last_seq for o in firsts["organization_id"].to_list() if o in state
        }
        start_hash = {o: state[o].last_hash for o in start_seq}
        checked = (
            frame.with_columns(link.alias("_link"))
            .with_columns(
                pl.col("seq")
                .shift(1)
                .over("organization_id")
                .fill_null(
                    pl.col("organization_id").replace_strict(
                        start_seq, default=-1, return_dtype=pl.Int64
                    )
                )
                .alias("_prev_seq"),
                pl.col("entry_hash")
                .shift(1)
                .over("organization_id")
                .fill_null(
                    pl.col("organization_id").replace_strict(
                        start_hash, default="", return_dtype=pl.Utf8
                    )
                )
                .alias("_prev_hash"),
            )
            .with_columns(
                (
                    (pl.col("seq") != pl.col("_prev_seq") + 1)
                    | (pl.col("prev_hash") != pl.col("_prev_hash"))
                    | (pl.col("_link") != pl.col("entry_hash"))
                    | pl.col("_link").is_null()
                ).alias("_bad")
            )
        )
        summary = checked.group_by("organization_id").agg(
            pl.col("_bad").any().alias("bad"),
            pl.len().alias("n"),
            pl.col("seq").first().alias("first"),
            pl.col("seq").last().alias("last"),
            pl.col("entry_hash").last().alias("hash"),
        )
        for org, bad, n, first, last, last_hash in summary.iter_rows():
            st = state.get(org)
            if st is None:
                continue
            st.suspicious |= bool(bad)
            st.entries += int(n)
            st.first_seq = st.first_seq if st.first_seq is not None else int(first)
            st.last_seq, st.last_hash = int(last), str(last_hash)
        need = [
            o
            for o in firsts["organization_id"].to_list()
            if o in state and state[o].leaves is not None
        ]
        if need:
            # RFC 6962 leaves, SHA-256(0x00 ‖ entry hash), column-wise
            leaf = (
                (pl.lit("00") + pl.col("entry_hash"))
                .str.decode("hex", strict=False)
                .chash.sha2_256()  # type: ignore[attr-defined]
                .str.decode("hex")
            )
            for org, hashes in (
                frame.filter(pl.col("organization_id").is_in(need))
                .group_by("organization_id", maintain_order=True)
                .agg(leaf.alias("leaf"))
                .iter_rows()
            ):
                leaves = state[org].leaves
                assert leaves is not None
                if None in hashes:  # an entry hash that is not hex
                    state[org].suspicious = True
                leaves.extend(h for h in hashes if h is not None)
        if progress is not None:
            progress(frame.height)
    out: dict[str, OrganizationResult] = {}
    for org, st in state.items():
        if st.suspicious:
            continue
        res = results[org]  # with what was found about its archive
        res.entries, res.first_seq = st.entries, st.first_seq
        res.last_seq = st.last_seq if st.entries else None
        tree = MerkleTree(st.leaves or [])
        _check_checkpoints(
            store, res, tree, checkpoint, trusted, require=require, seen=(seen or {}).get(org)
        )
        out[org] = res
    return out


def _batches(
    store: Store, reader: ArrowReader, org: str, since: int, chunk: int
) -> Iterator[pa.RecordBatch]:
    cols = [_C[c] for c in _COLUMNS]
    stmt = select(*cols).where(_C.organization_id == org, _C.seq >= since).order_by(_C.seq)
    return reader.batches(stmt, chunk)


def _seq_of_hash(store: Store, org: str, entry_hash: str) -> int | None:
    with store.engine.connect() as conn:
        r = conn.execute(
            select(_C.seq).where(_C.organization_id == org, _C.entry_hash == entry_hash).limit(1)
        ).first()
    return int(r[0]) if r is not None else None


def _verify_org(
    store: Store,
    reader: ArrowReader,
    org: str,
    since_seq: int | None,
    checkpoint: str | None,
    trusted: list[VerifierKey],
    progress: Callable[[int], None] | None,
    chunk: int,
    include_archive: bool = False,
    *,
    require: bool = False,
    seen: dict[str, SeenCheckpoint] | None = None,
) -> OrganizationResult:
    import polars as pl  # lazy: polars costs ~0.2 s at start-up; only this path needs it

    res = OrganizationResult(org)
    problems = res.problems
    start = max(1, since_seq or 1)
    notes = _notes_of(store, org, checkpoint)  # read once: for the archive and the checks
    covered = partial(_trusted_size, store, org, checkpoint, trusted, notes)
    arch = _archived(store, org, res, include_archive, bool(notes), covered)
    through = arch.through_seq
    tree = MerkleTree(arch.leaves())
    at_boundary = start <= through + 1  # the first live entry must continue the boundary
    if at_boundary:
        prev_seq, prev_hash = through, arch.last_entry_hash
    else:  # leaves before the range still make up the tree
        with store.engine.connect() as conn:
            head = conn.execute(
                select(_C.entry_hash)
                .where(_C.organization_id == org, _C.seq > through, _C.seq < start)
                .order_by(_C.seq)
            ).all()
        tree.extend([leaf_hash(bytes.fromhex(h)) for (h,) in head])
        prev_seq, prev_hash = start - 1, head[-1][0] if head else arch.last_entry_hash
    prev_bad = False
    lookups = 0
    sha = hashlib.sha256
    for batch in _batches(store, reader, org, start, chunk):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        contents = content_hashes(frame)
        seqs = frame["seq"].to_list()
        prevs = frame["prev_hash"].to_list()
        hashes = frame["entry_hash"].to_list()
        ids = frame["audit_id"].to_list()
        leaves = []
        for seq, prev, stored, content, aid in zip(seqs, prevs, hashes, contents, ids, strict=True):
            if res.first_seq is None:
                res.first_seq = seq
                crossed = _boundary_problem(org, seq, aid, prev, arch) if at_boundary else None
                if crossed is not None:  # named here; the live chain is checked on its own
                    problems.append(crossed)
                    prev_seq, prev_hash = seq - 1, prev if seq > 1 else GENESIS_HASH
            if seq != prev_seq + 1:
                problems.append(
                    Problem(
                        org,
                        prev_seq + 1,
                        None,
                        "missing",
                        None,
                        None,
                        f"seq {prev_seq + 1}..{seq - 1} absent from the chain",
                    )
                )
            try:
                recomputed = sha(bytes.fromhex(prev) + content).hexdigest()
            except (ValueError, TypeError):
                recomputed = ""
            modified = recomputed != stored
            if prev != prev_hash and not prev_bad and seq == prev_seq + 1:
                found = _classify_link(store, org, seq, aid, prev, prev_hash, modified, lookups)
                lookups += 1
                problems.extend(found)
            elif modified:
                problems.append(
                    Problem(
                        org,
                        seq,
                        aid,
                        "modified",
                        stored,
                        recomputed,
                        "the entry's content does not match its entry_hash",
                    )
                )
            prev_bad = modified
            prev_seq, prev_hash = seq, stored
            try:
                leaves.append(leaf_hash(bytes.fromhex(stored)))
            except (ValueError, TypeError):
                leaves.append(leaf_hash(b""))
        tree.extend(leaves)
        if len(problems) > MAX_PROBLEMS:
            res.omitted_problems += len(problems) - MAX_PROBLEMS
            del problems[MAX_PROBLEMS:]
        res.entries += len(seqs)
        res.last_seq = prev_seq
        if progress is not None:
            progress(len(seqs))
    _check_checkpoints(
        store,
        res,
        tree,
        checkpoint,
        trusted,
        require=require,
        seen=(seen or {}).get(org),
        notes=notes,
    )
    problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return res


def _archived(
    store: Store,
    org: str,
    res: OrganizationResult,
    include_archive: bool,
    need_leaves: bool,
    covered: Callable[[], int] = lambda: 0,
) -> ArchiveCheck:
    """The organization's archived prefix, checked against retention_log and its manifests
    (files and links too with ``include_archive``; read for its leaves when a checkpoint
    needs them). What does not hold is added to ``res`` with the archive counts.

    ``covered``: the largest tree size a trusted checkpoint claims (asked only when
    there is an archive). An archived range
    beyond it has no signed root to be checked against — its manifest and its
    ``retention_log`` row may both be the work of whoever deleted the entries — so its
    files and links are re-verified as with ``include_archive``."""
    from auditlens.retention import (  # lazy: retention imports the chain (upward use)
        archived_ranges,
        check_archive,
        is_restored_copy,
        unrecorded_removals,
    )

    ranges = archived_ranges(store, org)  # read once, checked by check_archive
    files = include_archive or (bool(ranges) and ranges[-1].through_seq > covered())
    # read whenever something is archived: the retention entries are checked against it
    read = files or need_leaves or bool(ranges)
    arch = check_archive(store, org, read=read, verify=files, ranges=ranges)
    res.problems.extend(
        Problem(org, seq, None, kind, None, None, detail) for seq, kind, detail in arch.problems
    )
    if arch.ranges:
        res.archived_entries = arch.entries
        res.archived_through = arch.through_seq
        res.archive_check = "files" if files else "manifest"
        res.restored_copy = is_restored_copy(store, org, arch.ranges)
        res.problems.extend(
            Problem(org, seq, None, "retention", None, None, detail)
            for seq, detail in unrecorded_removals(store, arch)
        )
    return arch


def _notes_of(store: Store, org: str, checkpoint: str | None) -> list[str]:
    """The checkpoint notes to check ``org`` against: the one given, else the stored ones."""
    if checkpoint is not None:
        return [checkpoint]
    return [r.note for r in list_checkpoints(store, org)]


def _trusted_size(
    store: Store,
    org: str,
    checkpoint: str | None,
    trusted: list[VerifierKey],
    notes: list[str] | None = None,
) -> int:
    """The largest tree size of ``org`` that a checkpoint signed by a trusted key claims
    (whether its root holds is checked later), 0 if none. ``notes``: already read."""
    size = 0
    for text in _notes_of(store, org, checkpoint) if notes is None else notes:
        try:
            note = parse_note(text)
            cp = parse_checkpoint(note.body)
        except ValueError:
            continue
        signed = note.verified_by(trusted) and not note.failed_known(trusted)
        if signed and _origin_org(cp.origin) == org:
            size = max(size, cp.size)
    return size


def _origin_org(origin: str) -> str:
    """The organization a checkpoint's origin (``<key name>/<organization_id>``) names."""
    return origin.rsplit("/", 1)[-1]


def _check_side_tables(
    store: Store,
    res: OrganizationResult,
    standing: int | None,
    *,
    planned: bool,
    applied: bool = False,
) -> None:
    """What the side tables claim about an organization beyond its chain: a standing
    retention authorization, a current plan no audit entry records (looked up only when
    the organization has an ``org_plans`` row: ``planned``), and ``audit_log.retention_applied``
    entries of an organization without ``retention_log`` rows (``applied``: the rows are gone)."""
    from auditlens.retention import (  # lazy: retention imports the chain (upward use)
        ArchiveCheck,
        unrecorded_plan,
        unrecorded_removals,
    )

    org = res.organization_id
    if standing is not None:
        res.problems.append(
            Problem(
                org,
                None,
                None,
                "authorization",
                None,
                str(standing),
                f"a row in retention_authorizations lets any client delete seq 1..{standing}; "
                "retention removes its row in the same transaction, so this one was written "
                "behind auditlens' back",
            )
        )
    if applied:
        res.problems.extend(
            Problem(org, seq, None, "retention", None, None, detail)
            for seq, detail in unrecorded_removals(store, ArchiveCheck(org, []))
        )
    plan = unrecorded_plan(store, org) if planned else None
    if plan is not None:
        res.problems.append(Problem(org, None, None, "plan", None, None, plan))


def _boundary_problem(
    org: str, seq: int, aid: str, prev: str, arch: ArchiveCheck
) -> Problem | None:
    """What is wrong with the first live entry (``seq``, chained to ``prev``) as the
    continuation of the archived boundary, if anything."""
    if not arch.ranges:
        return None
    through = arch.through_seq
    if seq <= through:
        return Problem(
            org,
            seq,
            aid,
            "boundary",
            str(through + 1),
            str(seq),
            f"retention_log says seq 1..{through} were archived "
            f"({arch.ranges[-1].manifest}), but live entries start at seq {seq}, at or below "
            "that boundary: the boundary is not accepted and every live entry is checked",
        )
    if seq == through + 1 and prev != arch.last_entry_hash:
        return Problem(
            org,
            seq,
            aid,
            "boundary",
            arch.last_entry_hash,
            prev,
            f"seq {seq} does not chain to the archived boundary: its prev_hash is not the "
            f"entry hash retention_log recorded for the last archived seq {through}",
        )
    return None


def _classify_link(
    store: Store,
    org: str,
    seq: int,
    aid: str,
    prev: str,
    expected: str,
    modified: bool,
    lookups: int,
) -> list[Problem]:
    """Name what broke the link into ``seq`` (its prev_hash is not the previous entry_hash)."""
    j = _seq_of_hash(store, org, prev) if lookups < _MAX_LOOKUPS else None
    if j is not None and j > seq:
        return [
            Problem(
                org,
                seq,
                aid,
                "reordered",
                expected,
                prev,
                f"links to seq {j}, which comes after it: entries were swapped",
            )
        ]
    if j is not None and j == seq - 2:
        return [
            Problem(
                org,
                seq - 1,
                None,
                "inserted",
                None,
                None,
                f"seq {seq} links over seq {seq - 1}: that entry was inserted",
            )
        ]
    if j is not None:
        return [
            Problem(
                org,
                j + 1,
                None,
                "missing",
                expected,
                prev,
                f"seq {seq} links to seq {j}: the entries between were removed "
                "and the rest renumbered",
            )
        ]
    if not modified:
        return [
            Problem(
                org,
                seq - 1,
                None,
                "modified",
                prev,
                expected,
                f"seq {seq - 1} was rewritten: its entry_hash is not the one seq {seq} "
                "was chained to",
            )
        ]
    return [
        Problem(
            org,
            seq,
            aid,
            "missing",
            expected,
            prev,
            "the entry it was chained to is gone and the entries after it were renumbered",
        )
    ]


def _check_checkpoints(
    store: Store,
    res: OrganizationResult,
    tree: MerkleTree,
    checkpoint: str | None,
    trusted: list[VerifierKey],
    *,
    require: bool = False,
    seen: SeenCheckpoint | None = None,
    notes: list[str] | None = None,
) -> None:
    """Check an organization's checkpoints against its tree.

    ``require``: the keys were given by the caller, so entries without any checkpoint
    signed by them are a problem. ``seen``: the checkpoint a monitor state remembers.
    ``notes``: the checkpoint notes, when the caller has already read them.
    """
    org = res.organization_id
    if notes is None:
        notes = _notes_of(store, org, checkpoint)
    res.checkpoints = len(notes)
    known_roles = {k.vkey: role for k, role in recorded_keys(store)}
    good_size = 0
    signers_at: dict[tuple[int, bytes], set[str]] = {}  # (size, root) → every trusted signer
    for text in notes:
        try:
            note = parse_note(text)
            cp = parse_checkpoint(note.body)
        except ValueError as exc:
            res.problems.append(
                Problem(
                    org, None, None, "bad_signature", None, None, f"unreadable checkpoint: {exc}"
                )
            )
            continue
        signed = note.verified_by(trusted)
        failed = note.failed_known(trusted)
        if _origin_org(cp.origin) != org:
            res.problems.append(
                Problem(
                    org,
                    None,
                    None,
                    "bad_signature",
                    org,
                    cp.origin,
                    f"checkpoint of size {cp.size}: its origin {cp.origin} is not this "
                    "organization's: a checkpoint of another log filed under it",
                )
            )
            continue
        if failed or not signed:
            who = ", ".join(failed) if failed else "no trusted key"
            res.problems.append(
                Problem(
                    org,
                    None,
                    None,
                    "bad_signature",
                    None,
                    None,
                    f"checkpoint of size {cp.size}: signature check failed ({who})",
                )
            )
            continue
        res.signed_by = sorted(
            set(res.signed_by)
            | {n for n in signed if known_roles.get(_vkey(trusted, n)) != "witness"}
        )
        witnessed = {n for n in signed if known_roles.get(_vkey(trusted, n)) == "witness"}
        res.witnesses = sorted(set(res.witnesses) | witnessed)
        signers_at.setdefault((cp.size, cp.root), set()).update(signed)
        if cp.size > (res.latest_checkpoint_size or 0):
            res.latest_checkpoint_size = cp.size
            res.latest_checkpoint_root = cp.root.hex()
            res.latest_checkpoint_ms = cp.timestamp_ms
            res.latest_checkpoint_witnesses = sorted(witnessed)
        elif cp.size == res.latest_checkpoint_size and cp.root.hex() == res.latest_checkpoint_root:
            res.latest_checkpoint_witnesses = sorted(
                set(res.latest_checkpoint_witnesses) | witnessed
            )
        if cp.size > len(tree):
            res.problems.append(
                Problem(
                    org,
                    len(tree) + 1,
                    None,
                    "truncated",
                    str(cp.size),
                    str(len(tree)),
                    f"a signed checkpoint covers {cp.size} "
                    f"entries but the chain ends at seq {len(tree)}",
                )
            )
            continue
        actual = tree.root(cp.size)
        if actual != cp.root:
            res.problems.append(
                Problem(
                    org,
                    None,  # a root covers a range; the detail names it
                    None,
                    "checkpoint_mismatch",
                    cp.root.hex(),
                    actual.hex(),
                    f"the tree of the first {cp.size} entries does not match the signed checkpoint "
                    f"(the change lies in seq {good_size + 1}..{cp.size})",
                )
            )
        else:
            good_size = max(good_size, cp.size)
    if res.archived_through and good_size >= res.archived_through:
        res.archive_checkpoint = good_size
    if checkpoint is not None:
        return
    if (
        require
        and res.latest_checkpoint_size is None
        and (res.entries or len(tree))
        and not any(p.kind == "bad_signature" for p in res.problems)
    ):
        res.problems.append(
            Problem(
                org,
                None,
                None,
                "no_checkpoint",
                None,
                None,
                f"{max(res.entries, len(tree))} entries but no checkpoint signed by a trusted "
                "key: checkpoints were removed, or none was ever made (`auditlens checkpoint`)",
            )
        )
    if seen is not None:
        _check_seen(res, tree, seen, signers_at)


def _check_seen(
    res: OrganizationResult,
    tree: MerkleTree,
    seen: SeenCheckpoint,
    signers_at: dict[tuple[int, bytes], set[str]],
) -> None:
    """Compare with the checkpoint a monitor state remembers for this organization."""
    org = res.organization_id
    when = (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seen.time_ms / 1000))
        if seen.time_ms is not None
        else "an unknown time"
    )
    what = f"the checkpoint of size {seen.size} (signed at {when}) seen on an earlier run"
    signers = signers_at.get((seen.size, bytes.fromhex(seen.root)))
    if signers is None:
        latest = res.latest_checkpoint_size
        res.problems.append(
            Problem(
                org,
                None,
                None,
                "checkpoint_missing",
                seen.root,
                res.latest_checkpoint_root,
                f"{what} is gone; the largest trusted checkpoint now covers "
                + (f"{latest} entries" if latest is not None else "nothing")
                + " — checkpoints were deleted",
            )
        )
    elif lost := sorted(set(seen.witnesses) - signers):
        res.problems.append(
            Problem(
                org,
                None,
                None,
                "checkpoint_missing",
                seen.root,
                seen.root,
                f"{what} was cosigned by {', '.join(lost)}; that cosigned checkpoint is gone",
            )
        )
    if len(tree) < seen.size:
        if not any(p.kind == "truncated" for p in res.problems):
            res.problems.append(
                Problem(
                    org,
                    len(tree) + 1,
                    None,
                    "truncated",
                    str(seen.size),
                    str(len(tree)),
                    f"{what} covered {seen.size} entries but the chain ends at seq {len(tree)}",
                )
            )
        return
    size = max(res.latest_checkpoint_size or 0, seen.size)
    size = size if size <= len(tree) else len(tree)
    proof = tree.consistency_proof(seen.size, size)
    if not verify_consistency(seen.size, size, proof, bytes.fromhex(seen.root), tree.root(size)):
        res.problems.append(
            Problem(
                org,
                None,
                None,
                "checkpoint_mismatch",
                seen.root,
                tree.root(seen.size).hex(),
                f"the tree of {size} entries is not consistent with {what}: "
                f"history up to seq {seen.size} was rewritten",
            )
        )


def _vkey(keys: list[VerifierKey], name: str) -> str:
    for k in keys:
        if k.name == name:
            return k.vkey
    return ""
