"""Verification of a store: every link of every chain, and every checkpoint against it.

Entries are read in ``seq`` order in chunks (constant memory apart from 32 bytes per
leaf for the Merkle tree), content hashes are computed column-wise, then each link
is checked: ``entry_hash == SHA-256(prev_hash ‖ content_hash)`` and ``prev_hash`` equals
the previous entry's ``entry_hash``. Checkpoints are checked for signatures (against
the keys you trust, else the keys recorded in the store — which an attacker with
write access could replace, so pass your own) and for their root at their size.

After retention, an organization's chain starts at its archived boundary: the
``retention_log`` rows are checked against the archive's manifests (see
:func:`auditlens.retention.check_archive`), the first live entry must continue the last
one exactly, and every live entry is checked whatever the rows say. The report counts
the archived entries apart, says how they were checked and whether a signed checkpoint
covers them.

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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import select

from auditlens.chain.canonical import CONTENT_FIELDS, GENESIS_HASH, content_hashes
from auditlens.chain.checkpoints import list_checkpoints, recorded_keys
from auditlens.chain.notes import VerifierKey, parse_checkpoint, parse_note
from auditlens.merkle import MerkleTree, leaf_hash
from auditlens.store.readers import ArrowReader
from auditlens.store.tables import entries, retention_log

if TYPE_CHECKING:
    from auditlens.retention import ArchiveCheck
    from auditlens.store.store import AuditStore

__all__ = ["MAX_PROBLEMS", "OrganizationResult", "Problem", "VerificationReport", "verify"]

_C = entries.c
_COLUMNS = (*CONTENT_FIELDS, "prev_hash", "entry_hash")
_SCHEMA = pa.schema(
    [pa.field(c, pa.int64() if c in ("seq", "ts") else pa.string()) for c in _COLUMNS]
)
_MAX_LOOKUPS = 50
MAX_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    """One place where the log does not verify."""

    organization_id: str
    seq: int | None
    audit_id: str | None
    #: modified | missing | inserted | reordered | truncated | bad_signature | checkpoint_mismatch
    #: | boundary (a retention_log row that does not hold) | archive (archive files or links)
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
    store: AuditStore,
    organization_id: str | None = None,
    *,
    since_seq: int | None = None,
    checkpoint: str | None = None,
    keys: list[VerifierKey] | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 100_000,
    include_archive: bool = False,
) -> VerificationReport:
    """Re-compute every link of every (or one) organization's chain and check checkpoints.

    Args:
        organization_id: only this organization.
        since_seq: start at this seq (its link to seq − 1 is still checked).
        checkpoint: a signed checkpoint note to check against, instead of the stored ones.
        keys: verifier keys you trust (log and witnesses). Without them, the keys
            recorded in the store are used and the report says so.
        progress: called with the number of entries checked since the last call.
        include_archive: also re-verify every archived range against its manifest
            (file hashes and every link); without it the archive is only read for the
            leaves that checkpoints need.
    """
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
    orgs = (
        [organization_id] if organization_id is not None else sorted(set(orgs) | cp_orgs | archived)
    )
    reader = ArrowReader(store.engine, _SCHEMA)
    results = []
    try:
        fast: dict[str, OrganizationResult] = {}
        if organization_id is None and not since_seq:
            fast = _fast_pass(
                store, reader, orgs, checkpoint, trusted, progress, chunk_size, include_archive
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
                )
            )
    finally:
        reader.close()
    return VerificationReport(results, started, time.perf_counter() - t0, source)


@dataclass
class _OrgState:
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    entries: int = 0
    first_seq: int | None = None
    suspicious: bool = False
    leaves: list[bytes] | None = None


def _fast_pass(
    store: AuditStore,
    reader: ArrowReader,
    orgs: list[str],
    checkpoint: str | None,
    trusted: list[VerifierKey],
    progress: Callable[[int], None] | None,
    chunk: int,
    include_archive: bool = False,
) -> dict[str, OrganizationResult]:
    """Check every organization in one sequential read of the table, column-wise.

    Rows come in row order, which is each organization's seq order unless someone
    tampered with seq numbers. Content hashes, link hashes and the comparisons are
    vectorized; an organization where anything is off is left out of the result, so
    the caller re-verifies it in seq order to name the problem precisely.
    """
    import polars as pl
    import polars_hash  # noqa: F401 - registers .chash
    import pyarrow.compute as pc

    with_checkpoints = (
        {r.organization_id for r in list_checkpoints(store)} if checkpoint is None else set(orgs)
    )
    state = {org: _OrgState(leaves=[] if org in with_checkpoints else None) for org in orgs}
    results = {org: OrganizationResult(org) for org in orgs}
    for org, org_state in state.items():
        arch = _archived(store, org, results[org], include_archive, org_state.leaves is not None)
        org_state.last_seq, org_state.last_hash = arch.through_seq, arch.last_entry_hash
        if org_state.leaves is not None:
            org_state.leaves.extend(arch.leaves())
        org_state.suspicious = bool(results[org].problems)
    cols = [_C[c] for c in _COLUMNS]
    stmt = select(*cols).order_by(_C.id)
    for batch in reader.batches(stmt, chunk):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        contents = pa.array(content_hashes(frame), pa.binary())
        prev_bin = (
            frame.select(pl.col("prev_hash").str.decode("hex", strict=False)).to_series().to_arrow()
        )
        joined = pc.binary_join_element_wise(
            prev_bin.cast(pa.binary()), contents, pa.scalar(b"", pa.binary())
        )
        joined_frame = pl.DataFrame(pa.table({"j": joined}))
        link = joined_frame.select(pl.col("j").chash.sha2_256()).to_series()  # type: ignore[attr-defined]
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
            for org, hashes in (
                frame.filter(pl.col("organization_id").is_in(need))
                .group_by("organization_id", maintain_order=True)
                .agg(pl.col("entry_hash"))
                .iter_rows()
            ):
                leaves = state[org].leaves
                assert leaves is not None
                for h in hashes:
                    try:
                        leaves.append(leaf_hash(bytes.fromhex(h)))
                    except (ValueError, TypeError):
                        state[org].suspicious = True
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
        _check_checkpoints(store, res, tree, checkpoint, trusted)
        out[org] = res
    return out


def _batches(
    store: AuditStore, reader: ArrowReader, org: str, since: int, chunk: int
) -> Iterator[pa.RecordBatch]:
    cols = [_C[c] for c in _COLUMNS]
    stmt = select(*cols).where(_C.organization_id == org, _C.seq >= since).order_by(_C.seq)
    return reader.batches(stmt, chunk)


def _seq_of_hash(store: AuditStore, org: str, entry_hash: str) -> int | None:
    with store.engine.connect() as conn:
        r = conn.execute(
            select(_C.seq).where(_C.organization_id == org, _C.entry_hash == entry_hash).limit(1)
        ).first()
    return int(r[0]) if r is not None else None


def _verify_org(
    store: AuditStore,
    reader: ArrowReader,
    org: str,
    since_seq: int | None,
    checkpoint: str | None,
    trusted: list[VerifierKey],
    progress: Callable[[int], None] | None,
    chunk: int,
    include_archive: bool = False,
) -> OrganizationResult:
    import polars as pl

    res = OrganizationResult(org)
    problems = res.problems
    start = max(1, since_seq or 1)
    need_leaves = checkpoint is not None or bool(list_checkpoints(store, org))
    arch = _archived(store, org, res, include_archive, need_leaves)
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
    _check_checkpoints(store, res, tree, checkpoint, trusted)
    problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return res


def _archived(
    store: AuditStore,
    org: str,
    res: OrganizationResult,
    include_archive: bool,
    need_leaves: bool,
) -> ArchiveCheck:
    """The organization's archived prefix, checked against retention_log and its manifests
    (files and links too with ``include_archive``; read for its leaves when a checkpoint
    needs them). What does not hold is added to ``res`` with the archive counts."""
    from auditlens.retention import check_archive

    arch = check_archive(store, org, read=include_archive or need_leaves, verify=include_archive)
    res.problems.extend(
        Problem(org, seq, None, kind, None, None, detail) for seq, kind, detail in arch.problems
    )
    if arch.ranges:
        res.archived_entries = arch.entries
        res.archived_through = arch.through_seq
        res.archive_check = "files" if include_archive else "manifest"
    return arch


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
    store: AuditStore,
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
    store: AuditStore,
    res: OrganizationResult,
    tree: MerkleTree,
    checkpoint: str | None,
    trusted: list[VerifierKey],
) -> None:
    org = res.organization_id
    notes = (
        [checkpoint] if checkpoint is not None else [r.note for r in list_checkpoints(store, org)]
    )
    res.checkpoints = len(notes)
    known_roles = {k.vkey: role for k, role in recorded_keys(store)}
    good_size = 0
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
        res.witnesses = sorted(
            set(res.witnesses)
            | {n for n in signed if known_roles.get(_vkey(trusted, n)) == "witness"}
        )
        res.latest_checkpoint_size = max(res.latest_checkpoint_size or 0, cp.size)
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


def _vkey(keys: list[VerifierKey], name: str) -> str:
    for k in keys:
        if k.name == name:
            return k.vkey
    return ""
