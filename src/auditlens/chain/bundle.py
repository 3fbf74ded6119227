"""Verifiable export bundles: a zip an auditor checks offline, with no store.

Layout (``auditlens.bundle.v1``)::

    manifest.json          format, creation time, query, counts, SHA-256 of every other file
    entries.jsonl          the selected entries in the interchange shape, with seq,
                           prev_hash, entry_hash and details_json (the exact hashed text)
    proofs.jsonl           one inclusion proof per entry, against its organization's checkpoint
    checkpoints/<org>.txt  the signed checkpoint note each proof refers to
    keys/<name>.vkey       the public keys the store knows (log and witnesses)
    README.txt             how to verify

Example:
    >>> import auditlens as al, tempfile, pathlib
    >>> from auditlens.chain.notes import SigningKey
    >>> store = al.open_store("sqlite://")
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> _ = store.append([{"actor": {"type": "system"}, "action": "auth.failed",
    ...     "organization_id": org, "result": "failure"}])
    >>> key = SigningKey.generate("audit.example/log")
    >>> _ = store.checkpoint(org, key)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "b.zip"
    >>> export_bundle(store, "failed", out).entries
    1
    >>> verify_bundle(out, keys=[key.verifier]).ok
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import orjson

from auditlens.chain.canonical import entry_hash
from auditlens.chain.checkpoints import latest_checkpoint, org_tree, recorded_keys
from auditlens.chain.notes import VerifierKey, parse_checkpoint, parse_note
from auditlens.chain.zipped import member_digests, open_zip, write_zip
from auditlens.errors import StoreError
from auditlens.merkle import leaf_hash, verify_inclusion
from auditlens.schema import parse_timestamp, row_to_entry

if TYPE_CHECKING:
    from auditlens.query.keywords import FilterKeywords
    from auditlens.store.store import Store

__all__ = [
    "BUNDLE_FORMAT",
    "BundleProblem",
    "BundleReport",
    "ExportedBundle",
    "export_bundle",
    "verify_bundle",
]

BUNDLE_FORMAT = "auditlens.bundle.v1"

_README = """This is an auditlens evidence bundle ({fmt}).

Check it offline:
  auditlens verify-bundle THIS.zip --key LOG_PUBLIC_KEY.vkey
or, with nothing but Python's standard library (plus `cryptography` for the
Ed25519 signature check):
  python tools/verify_bundle_stdlib.py THIS.zip --key LOG_PUBLIC_KEY.vkey

What is checked: every file against manifest.json; every entry's entry_hash
recomputed from its fields (docs/CHAIN.md); every entry's inclusion proof against
the root of its organization's signed checkpoint; the checkpoint signatures
against the key you pass (the keys/ folder only says which keys the store knew).
"""


@dataclass(frozen=True)
class ExportedBundle:
    """What :func:`export_bundle` wrote."""

    path: Path
    entries: int
    organizations: dict[str, int]
    sha256: str


@dataclass(frozen=True)
class BundleProblem:
    """One thing in a bundle that does not verify."""

    kind: (
        str  # manifest | entry_modified | details_mismatch | proof | link | bad_signature | format
    )
    detail: str
    audit_id: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        where = f"entry {self.audit_id} (seq {self.seq}): " if self.audit_id else ""
        return f"{self.kind}: {where}{self.detail}"


@dataclass
class BundleReport:
    """Result of :func:`verify_bundle`."""

    entries: int = 0
    organizations: dict[str, int] = field(default_factory=dict)
    signed_by: dict[str, list[str]] = field(default_factory=dict)
    keys_source: str = "given"
    problems: list[BundleProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.problems


def _key_file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in name) + ".vkey"


def export_bundle(
    store: Store,
    where: Any = None,
    out: str | os.PathLike[str] = "bundle.zip",
    **filters: Unpack[FilterKeywords],
) -> ExportedBundle:
    """Write the matching entries, their proofs, checkpoints and keys to a zip.

    Every selected entry must be covered by its organization's latest checkpoint.

    Raises:
        StoreError: nothing matched, or an organization has no covering checkpoint.
    """
    from auditlens.store.backend import ROW_COLUMNS  # lazy: offline bundle checks need no store

    stmt = store.select(ROW_COLUMNS, where, order="asc", **filters)
    by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with store.connect() as conn:
        for r in conn.execute(stmt).mappings():
            entry = row_to_entry(r, chain=True)
            entry["details_json"] = r["details"]
            by_org[entry["organization_id"]].append(entry)
    if not by_org:
        raise StoreError("nothing matched the query; no bundle written")
    files: dict[str, bytes] = {}
    entry_lines: list[bytes] = []
    proof_lines: list[bytes] = []
    for org in sorted(by_org):
        rows = sorted(by_org[org], key=lambda e: e["seq"])
        cp = latest_checkpoint(store, org)
        if cp is None or cp.tree_size < rows[-1]["seq"]:
            raise StoreError(
                f"organization {org}: entries up to seq {rows[-1]['seq']} are selected but the "
                "latest checkpoint does not cover them; run `auditlens checkpoint` first"
            )
        tree = org_tree(store, org)
        files[f"checkpoints/{org}.txt"] = cp.note.encode()
        for e in rows:
            entry_lines.append(orjson.dumps(e))
            proof = tree.inclusion_proof(e["seq"] - 1, cp.tree_size)
            proof_lines.append(
                orjson.dumps(
                    {
                        "audit_id": e["audit_id"],
                        "organization_id": org,
                        "seq": e["seq"],
                        "tree_size": cp.tree_size,
                        "proof": [p.hex() for p in proof],
                    }
                )
            )
    files["entries.jsonl"] = b"\n".join(entry_lines) + b"\n"
    files["proofs.jsonl"] = b"\n".join(proof_lines) + b"\n"
    for key, role in recorded_keys(store):
        files[f"keys/{_key_file_name(key.name)}"] = f"{key.vkey}\n# role: {role}\n".encode()
    files["README.txt"] = _README.format(fmt=BUNDLE_FORMAT).encode()
    counts = {org: len(rows) for org, rows in sorted(by_org.items())}
    manifest = {
        "format": BUNDLE_FORMAT,
        "created_at_ms": int(time.time() * 1000),
        "query": where if isinstance(where, str) else None,
        "filters": {k: v for k, v in filters.items() if v is not None} or None,
        "entries": sum(counts.values()),
        "organizations": counts,
        "files": member_digests(files),
    }
    path = Path(out)
    text = json.dumps(manifest, indent=2, default=str).encode()
    digest = write_zip(path, "manifest.json", text, files)
    return ExportedBundle(path, sum(counts.values()), counts, digest)


def _row_of(entry: dict[str, Any]) -> dict[str, Any]:
    actor = entry.get("actor") or {}
    res = entry.get("resource") or {}
    return {
        "organization_id": entry["organization_id"],
        "seq": entry["seq"],
        "audit_id": entry["audit_id"],
        "ts": parse_timestamp(entry["timestamp"]),
        "actor_type": actor.get("type"),
        "actor_user_id": actor.get("user_id"),
        "actor_email": actor.get("email"),
        "action": entry["action"],
        "resource_type": res.get("type"),
        "resource_id": res.get("id"),
        "resource_name": res.get("name"),
        "application_id": entry.get("application_id"),
        "ip_address": entry.get("ip_address"),
        "user_agent": entry.get("user_agent"),
        "details": entry["details_json"],
        "result": entry["result"],
        "prev_hash": entry["prev_hash"],
    }


def verify_bundle(
    path: str | os.PathLike[str], keys: list[VerifierKey] | None = None
) -> BundleReport:
    """Check a bundle offline: manifest, entry hashes, inclusion proofs, signatures.

    Without ``keys`` the bundled keys are used and ``keys_source`` says so: they prove
    only that the bundle is self-consistent, not who signed it.
    """
    report = BundleReport()
    problems = report.problems
    with open_zip(path) as zf:
        names = set(zf.namelist())
        try:
            manifest = json.loads(zf.read("manifest.json"))
        except (KeyError, ValueError):
            problems.append(BundleProblem("format", "manifest.json is missing or not JSON"))
            return report
        if manifest.get("format") != BUNDLE_FORMAT:
            problems.append(BundleProblem("format", f"unknown format {manifest.get('format')!r}"))
        listed = manifest.get("files", {})
        for name, digest in sorted(listed.items()):
            if name not in names:
                problems.append(BundleProblem("manifest", f"{name} is listed but missing"))
            elif hashlib.sha256(zf.read(name)).hexdigest() != digest:
                problems.append(BundleProblem("manifest", f"{name} does not match its SHA-256"))
        for extra in sorted(names - set(listed) - {"manifest.json"}):
            problems.append(BundleProblem("manifest", f"{extra} is not listed in the manifest"))
        if keys is None:
            report.keys_source = "bundle"
            keys = [
                VerifierKey.parse(zf.read(n).decode().splitlines()[0])
                for n in sorted(names)
                if n.startswith("keys/")
            ]
        roots: dict[str, tuple[int, bytes]] = {}
        for name in sorted(n for n in names if n.startswith("checkpoints/")):
            org = name.split("/", 1)[1].removesuffix(".txt")
            try:
                note = parse_note(zf.read(name).decode())
                cp = parse_checkpoint(note.body)
            except ValueError as exc:
                problems.append(BundleProblem("format", f"{name}: {exc}"))
                continue
            signers = note.verified_by(keys)
            report.signed_by[org] = signers
            if not signers or note.failed_known(keys):
                problems.append(
                    BundleProblem("bad_signature", f"{name}: no valid signature from a trusted key")
                )
            roots[org] = (cp.size, cp.root)
        proofs = {}
        for n, line in enumerate(_lines(zf, "proofs.jsonl", names), 1):
            try:
                p = json.loads(line)
                proofs[str(p["audit_id"])] = p
            except (ValueError, KeyError, TypeError):
                problems.append(BundleProblem("format", f"proofs.jsonl line {n} is not a proof"))
        prev_by_org: dict[str, dict[str, Any]] = {}
        for n, line in enumerate(_lines(zf, "entries.jsonl", names), 1):
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    raise ValueError
            except ValueError:
                report.entries += 1
                problems.append(BundleProblem("format", f"entries.jsonl line {n} is not JSON"))
                continue
            _check_entry(entry, proofs, roots, prev_by_org, report)
    return report


def _lines(zf: zipfile.ZipFile, name: str, names: set[str]) -> list[bytes]:
    if name not in names:
        return []
    return [line for line in zf.read(name).splitlines() if line.strip()]


def _check_entry(
    e: dict[str, Any],
    proofs: dict[str, dict[str, Any]],
    roots: dict[str, tuple[int, bytes]],
    prev_by_org: dict[str, dict[str, Any]],
    report: BundleReport,
) -> None:
    aid, seq, org = e.get("audit_id"), e.get("seq"), e.get("organization_id", "")
    report.entries += 1
    report.organizations[org] = report.organizations.get(org, 0) + 1
    add = report.problems.append
    try:
        row = _row_of(e)
        if json.loads(e["details_json"]) != e.get("details"):
            add(
                BundleProblem(
                    "details_mismatch", "details differs from the hashed details_json", aid, seq
                )
            )
        if entry_hash(row) != e["entry_hash"]:
            add(
                BundleProblem(
                    "entry_modified", "its fields do not hash to its entry_hash", aid, seq
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        add(BundleProblem("format", f"unreadable entry: {exc}", aid, seq))
        return
    prev = prev_by_org.get(org)
    if prev is not None and prev["seq"] + 1 == seq and prev["entry_hash"] != e["prev_hash"]:
        add(BundleProblem("link", f"prev_hash is not seq {seq - 1}'s entry_hash", aid, seq))
    prev_by_org[org] = e
    proof = proofs.get(str(aid))
    if org not in roots or proof is None:
        add(BundleProblem("proof", "no checkpoint or inclusion proof for this entry", aid, seq))
        return
    size, root = roots[org]
    try:
        ok = proof["tree_size"] == size and verify_inclusion(
            leaf_hash(bytes.fromhex(e["entry_hash"])),
            int(seq) - 1,  # type: ignore[arg-type]
            size,
            [bytes.fromhex(h) for h in proof["proof"]],
            root,
        )
    except (ValueError, TypeError):
        ok = False
    if not ok:
        add(
            BundleProblem("proof", "its inclusion proof does not lead to the signed root", aid, seq)
        )
