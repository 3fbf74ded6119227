"""Signed checkpoints of each organization's Merkle tree, and proofs against them.

The leaves of an organization's tree are its entries' ``entry_hash`` values in
``seq`` order. A checkpoint is a C2SP signed note over (origin, tree size, root,
time) stored append-only in the ``checkpoints`` table; witnesses add their own
signatures (:func:`cosign`) after checking consistency with the last checkpoint they
saw. Trees are cached per store (the :data:`MERKLE_TREES` cache of the store) and
extended as entries are appended.

Example:
    >>> import auditlens as al
    >>> from auditlens.chain.notes import SigningKey
    >>> store = al.open_store("sqlite://")
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> entry = {"actor": {"type": "system"}, "action": "auth.login", "organization_id": org,
    ...          "result": "success"}
    >>> ids = [r.audit_id for r in store.append([dict(entry) for _ in range(5)])]
    >>> key = SigningKey.generate("audit.example/log")
    >>> cp = store.checkpoint(org, key)
    >>> cp.tree_size, store.inclusion_proof(ids[2]).verify()
    (5, True)
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from auditlens.chain.checkpoint_tables import checkpoints, signing_keys
from auditlens.chain.notes import (
    Checkpoint,
    Note,
    SigningKey,
    VerifierKey,
    checkpoint_body,
    parse_checkpoint,
    parse_note,
    sign_note,
)
from auditlens.errors import ConfigError, StoreError, WitnessError
from auditlens.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from auditlens.store.backend import entries

if TYPE_CHECKING:
    from auditlens.store.store import Store

__all__ = [
    "MERKLE_TREES",
    "CheckpointRecord",
    "ConsistencyProof",
    "InclusionProof",
    "SeenCheckpoint",
    "WitnessError",
    "cosign",
    "create_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_monitor_state",
    "make_consistency_proof",
    "make_inclusion_proof",
    "org_tree",
    "recorded_keys",
    "save_monitor_state",
]

_C = entries.c
_K = checkpoints.c

#: the store cache (:meth:`AuditStore.cache`) holding each organization's Merkle tree;
#: whoever removes or rewrites entries invalidates it.
MERKLE_TREES = "merkle_trees"


@dataclass(frozen=True)
class CheckpointRecord:
    """A stored checkpoint."""

    id: int
    organization_id: str
    tree_size: int
    root_hash: str
    created_ms: int
    note: str

    @property
    def parsed(self) -> Checkpoint:
        """The checkpoint body, parsed."""
        return parse_checkpoint(parse_note(self.note).body)


@dataclass(frozen=True)
class InclusionProof:
    """Proof that one entry is leaf ``seq - 1`` of a checkpointed tree."""

    audit_id: str
    organization_id: str
    seq: int
    entry_hash: str
    tree_size: int
    root_hash: str
    proof: list[str]
    checkpoint: str

    def verify(self) -> bool:
        """Check the path against the root (not the checkpoint's signature)."""
        return verify_inclusion(
            leaf_hash(bytes.fromhex(self.entry_hash)),
            self.seq - 1,
            self.tree_size,
            [bytes.fromhex(p) for p in self.proof],
            bytes.fromhex(self.root_hash),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return self.__dict__.copy()


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that the tree at ``old_size`` is a prefix of the tree at ``new_size``."""

    organization_id: str
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str] = field(default_factory=list)

    def verify(self) -> bool:
        """Check the proof against both roots."""
        return verify_consistency(
            self.old_size,
            self.new_size,
            [bytes.fromhex(p) for p in self.proof],
            bytes.fromhex(self.old_root),
            bytes.fromhex(self.new_root),
        )


@dataclass(frozen=True)
class SeenCheckpoint:
    """The largest checkpoint a monitor (``verify(..., state=path)``) saw for one organization.

    A later run that no longer finds it, finds a smaller tree, or a tree not consistent
    with ``root`` at ``size`` reports a problem: checkpoints are append-only, so one that
    disappears was removed behind auditlens' back.
    """

    size: int
    root: str  #: hex
    time_ms: int | None  #: the checkpoint's own ``time`` line
    witnesses: tuple[str, ...] = ()  #: witnesses that had cosigned a checkpoint of this size


_STATE_FORMAT = "auditlens.monitor.v1"


def load_monitor_state(path: str | os.PathLike[str]) -> dict[str, SeenCheckpoint]:
    """The checkpoints a monitor remembered, by organization (empty when the file is absent).

    Raises:
        ConfigError: the file is not a monitor state.
    """
    file = Path(path)
    if not file.exists():
        return {}
    try:
        data = json.loads(file.read_text())
        if data.get("format") != _STATE_FORMAT:
            raise ValueError(f"format is not {_STATE_FORMAT}")
        return {
            org: SeenCheckpoint(
                int(v["size"]),
                bytes.fromhex(v["root"]).hex(),
                None if v.get("time_ms") is None else int(v["time_ms"]),
                tuple(str(w) for w in v.get("witnesses", ())),
            )
            for org, v in data["organizations"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{file}: not an auditlens monitor state ({exc}); "
            "pass the file an earlier `auditlens verify --state` wrote"
        ) from None


def save_monitor_state(path: str | os.PathLike[str], state: dict[str, SeenCheckpoint]) -> None:
    """Write the monitor state atomically (a temporary file renamed over the old one)."""
    file = Path(path)
    data = {
        "format": _STATE_FORMAT,
        "organizations": {
            org: {
                "size": seen.size,
                "root": seen.root,
                "time_ms": seen.time_ms,
                "witnesses": list(seen.witnesses),
            }
            for org, seen in sorted(state.items())
        },
    }
    if file.parent != Path():
        file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, file)


def org_tree(store: Store, organization_id: str) -> MerkleTree:
    """The organization's Merkle tree over all its entries (cached, extended incrementally).

    After retention, the tree starts with the archived leaves, read back and checked
    against ``retention_log`` (an :class:`~auditlens.errors.ArchiveError` otherwise).
    """
    cache: dict[str, MerkleTree] = store.cache(MERKLE_TREES)
    tree = cache.get(organization_id)
    if tree is None:
        from auditlens.retention import (
            archived_leaves,
        )  # lazy: retention imports the chain (upward use)

        tree = MerkleTree(archived_leaves(store, organization_id))
    stmt = (
        select(_C.entry_hash)
        .where(_C.organization_id == organization_id, _C.seq > len(tree))
        .order_by(_C.seq)
    )
    with store.connect() as conn:
        new = [leaf_hash(bytes.fromhex(h)) for (h,) in conn.execute(stmt)]
    tree.extend(new)
    cache[organization_id] = tree
    return tree


def _record(row: Any) -> CheckpointRecord:
    return CheckpointRecord(
        int(row.id),
        row.organization_id,
        int(row.tree_size),
        row.root_hash,
        int(row.created_ms),
        row.note,
    )


def list_checkpoints(store: Store, organization_id: str | None = None) -> list[CheckpointRecord]:
    """Stored checkpoints, oldest first."""
    stmt = select(checkpoints).order_by(_K.organization_id, _K.tree_size, _K.id)
    if organization_id is not None:
        stmt = stmt.where(_K.organization_id == organization_id)
    with store.connect() as conn:
        return [_record(r) for r in conn.execute(stmt)]


def latest_checkpoint(store: Store, organization_id: str) -> CheckpointRecord | None:
    """The checkpoint with the largest tree size (the most-signed one among equals)."""
    stmt = (
        select(checkpoints)
        .where(_K.organization_id == organization_id)
        .order_by(_K.tree_size.desc(), _K.id.desc())
        .limit(1)
    )
    with store.connect() as conn:
        row = conn.execute(stmt).first()
    return _record(row) if row is not None else None


def recorded_keys(store: Store) -> list[tuple[VerifierKey, str]]:
    """Keys the store has seen sign checkpoints, with their role (log or witness)."""
    with store.connect() as conn:
        rows = conn.execute(select(signing_keys.c.vkey, signing_keys.c.role)).all()
    return [(VerifierKey.parse(v), role) for v, role in rows]


def _remember_key(store: Store, key: VerifierKey, role: str) -> None:
    with store.transaction() as conn:
        exists = conn.execute(
            select(func.count()).select_from(signing_keys).where(signing_keys.c.vkey == key.vkey)
        ).scalar_one()
        if not exists:
            conn.execute(
                signing_keys.insert().values(
                    vkey=key.vkey, name=key.name, role=role, first_seen_ms=int(time.time() * 1000)
                )
            )


def _store_note(
    store: Store, organization_id: str, size: int, root: bytes, note: str
) -> CheckpointRecord:
    now = int(time.time() * 1000)
    with store.transaction() as conn:
        res = conn.execute(
            checkpoints.insert().values(
                organization_id=organization_id,
                tree_size=size,
                root_hash=root.hex(),
                created_ms=now,
                note=note,
            )
        )
        new_id = int(res.inserted_primary_key[0])  # type: ignore[index]
    return CheckpointRecord(new_id, organization_id, size, root.hex(), now, note)


def create_checkpoint(
    store: Store, organization_id: str, key: SigningKey, *, origin: str | None = None
) -> CheckpointRecord:
    """Sign and record the organization's current tree head.

    The origin defaults to ``<key name>/<organization_id>``.
    """
    tree = org_tree(store, organization_id)
    if len(tree) == 0:
        raise StoreError(f"organization {organization_id} has no entries to checkpoint")
    size, root = len(tree), tree.root()
    body = checkpoint_body(
        origin or f"{key.name}/{organization_id}", size, root, int(time.time() * 1000)
    )
    note = sign_note(body, key)
    _remember_key(store, key.verifier, "log")
    return _store_note(store, organization_id, size, root, note)


def _checkpoint_size(
    store: Store, organization_id: str, checkpoint: CheckpointRecord | str | int | None
) -> tuple[int, str]:
    if checkpoint is None:
        rec = latest_checkpoint(store, organization_id)
        if rec is None:
            raise StoreError(
                f"organization {organization_id} has no checkpoint yet; run `auditlens checkpoint`"
            )
        return rec.tree_size, rec.note
    if isinstance(checkpoint, CheckpointRecord):
        return checkpoint.tree_size, checkpoint.note
    if isinstance(checkpoint, int):
        return checkpoint, ""
    return parse_checkpoint(parse_note(checkpoint).body).size, checkpoint


def make_inclusion_proof(
    store: Store, audit_id: str, checkpoint: CheckpointRecord | str | int | None = None
) -> InclusionProof:
    """Inclusion proof of an entry in its organization's tree at a checkpoint (default: latest)."""
    with store.connect() as conn:
        row = conn.execute(
            select(_C.organization_id, _C.seq, _C.entry_hash).where(_C.audit_id == audit_id.lower())
        ).first()
    if row is None:
        raise StoreError(f"no entry with audit_id {audit_id}")
    org, seq, ehash = row
    size, note = _checkpoint_size(store, org, checkpoint)
    if seq > size:
        raise StoreError(
            f"entry seq {seq} is newer than the checkpoint (tree size {size}); "
            "create a new checkpoint"
        )
    tree = org_tree(store, org)
    proof = tree.inclusion_proof(seq - 1, size)
    return InclusionProof(
        audit_id.lower(),
        org,
        int(seq),
        ehash,
        size,
        tree.root(size).hex(),
        [p.hex() for p in proof],
        note,
    )


def make_consistency_proof(
    store: Store,
    organization_id: str,
    old: CheckpointRecord | str | int,
    new: CheckpointRecord | str | int | None = None,
) -> ConsistencyProof:
    """Consistency proof between two checkpoints (or tree sizes) of one organization."""
    old_size, _ = _checkpoint_size(store, organization_id, old)
    tree = org_tree(store, organization_id)
    new_size = len(tree) if new is None else _checkpoint_size(store, organization_id, new)[0]
    if not 0 <= old_size <= new_size <= len(tree):
        raise StoreError(f"cannot prove consistency from size {old_size} to {new_size}")
    proof = tree.consistency_proof(old_size, new_size)
    return ConsistencyProof(
        organization_id,
        old_size,
        new_size,
        tree.root(old_size).hex(),
        tree.root(new_size).hex(),
        [p.hex() for p in proof],
    )


def cosign(
    store: Store,
    note_text: str,
    witness: SigningKey,
    log_keys: list[VerifierKey],
    state_dir: str | os.PathLike[str],
) -> CheckpointRecord:
    """Witness a checkpoint: verify the log's signature and consistency with the last
    checkpoint this witness cosigned for that origin, then add the witness signature.

    The witness keeps its own state (last size and root per origin) in ``state_dir``.

    Raises:
        WitnessError: bad signature, a smaller tree than already seen, or inconsistency.
    """
    note = parse_note(note_text)
    if not note.verified_by(log_keys):
        raise WitnessError("the checkpoint is not signed by a trusted log key; refusing to cosign")
    cp = parse_checkpoint(note.body)
    org = cp.origin.rsplit("/", 1)[-1]
    state_path = Path(state_dir) / (base64.urlsafe_b64encode(cp.origin.encode()).decode() + ".json")
    if state_path.exists():
        seen = json.loads(state_path.read_text())
        old_size, old_root = int(seen["size"]), bytes.fromhex(seen["root"])
        if cp.size < old_size:
            raise WitnessError(
                f"tree size went down from {old_size} to {cp.size}: the log was truncated"
            )
        proof = make_consistency_proof(store, org, old_size, cp.size)
        ok = verify_consistency(
            old_size, cp.size, [bytes.fromhex(p) for p in proof.proof], old_root, cp.root
        )
        if not ok:
            raise WitnessError(
                f"checkpoint of size {cp.size} is not consistent with the size-{old_size} "
                "checkpoint this witness saw: the log was rewritten"
            )
    signed = sign_note(Note(note.body, note.signatures), witness)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps({"size": cp.size, "root": cp.root.hex()}))
    _remember_key(store, witness.verifier, "witness")
    return _store_note(store, org, cp.size, cp.root, signed)
