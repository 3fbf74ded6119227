#!/usr/bin/env python3
"""Verify an auditlens evidence bundle with nothing but Python's standard library.

An auditor's independent check of docs/CHAIN.md; it shares no code with auditlens.
The Ed25519 signature of the checkpoint needs the `cryptography` package; without it
everything else is still checked and the script says the signature was not.

    python tools/verify_bundle_stdlib.py bundle.zip --key audit.example/log+1a2b3c4d+AX...

Exit status 0 only when every check passed (signature included).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import zipfile
from datetime import datetime, timezone

FIELDS = [
    "organization_id",
    "seq",
    "audit_id",
    "ts",
    "actor_type",
    "actor_user_id",
    "actor_email",
    "action",
    "resource_type",
    "resource_id",
    "resource_name",
    "application_id",
    "ip_address",
    "user_agent",
    "details",
    "result",
]


def netstring(value):
    if value is None:
        return b"~"
    data = str(value).encode("utf-8")
    return str(len(data)).encode() + b":" + data + b","


def epoch_ms(timestamp):
    dt = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    delta = dt - epoch
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def entry_hash(e):
    actor, res = e.get("actor") or {}, e.get("resource") or {}
    values = {
        "organization_id": e["organization_id"],
        "seq": e["seq"],
        "audit_id": e["audit_id"],
        "ts": epoch_ms(e["timestamp"]),
        "actor_type": actor.get("type"),
        "actor_user_id": actor.get("user_id"),
        "actor_email": actor.get("email"),
        "action": e["action"],
        "resource_type": res.get("type"),
        "resource_id": res.get("id"),
        "resource_name": res.get("name"),
        "application_id": e.get("application_id"),
        "ip_address": e.get("ip_address"),
        "user_agent": e.get("user_agent"),
        "details": e["details_json"],
        "result": e["result"],
    }
    canonical = b"18:auditlens.entry.v1," + b"".join(netstring(values[f]) for f in FIELDS)
    content = hashlib.sha256(canonical).digest()
    return hashlib.sha256(bytes.fromhex(e["prev_hash"]) + content).hexdigest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def parse_vkey(text):
    name, key_id, b64 = text.strip().split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == 1 and len(raw) == 33, "not an Ed25519 verifier key"
    return name, bytes.fromhex(key_id), raw[1:]


def check_signature(note_text, vkey):
    """Returns True, False, or None when `cryptography` is not installed."""
    name, key_id, public = parse_vkey(vkey)
    body, _, sigs = note_text.rpartition("\n\n")
    body += "\n"
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return None
    for line in sigs.splitlines():
        _, signer, b64 = line.split(" ")
        raw = base64.b64decode(b64)
        if signer == name and raw[:4] == key_id:
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], body.encode())
                return True
            except InvalidSignature:
                return False
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--key", help="the log's verifier key string or a .vkey file", required=True)
    args = ap.parse_args()
    vkey = open(args.key).read() if "+" not in args.key else args.key
    failures, skipped = [], []
    with zipfile.ZipFile(args.bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for name, digest in manifest["files"].items():
            if hashlib.sha256(zf.read(name)).hexdigest() != digest:
                failures.append(f"{name}: SHA-256 differs from the manifest")
        roots = {}
        for name in zf.namelist():
            if name.startswith("checkpoints/"):
                note = zf.read(name).decode()
                org = name[len("checkpoints/") : -len(".txt")]
                lines = note.split("\n")
                roots[org] = (int(lines[1]), base64.b64decode(lines[2]))
                ok = check_signature(note, vkey)
                if ok is None:
                    skipped.append(f"{name}: signature not checked (pip install cryptography)")
                elif not ok:
                    failures.append(f"{name}: signature does not verify with the given key")
        proofs = {}
        for line in zf.read("proofs.jsonl").splitlines():
            if line.strip():
                p = json.loads(line)
                proofs[p["audit_id"]] = p
        count = 0
        for line in zf.read("entries.jsonl").splitlines():
            if not line.strip():
                continue
            e = json.loads(line)
            count += 1
            where = f"entry {e['audit_id']} (seq {e['seq']})"
            if json.loads(e["details_json"]) != e["details"]:
                failures.append(f"{where}: details differs from details_json")
            if entry_hash(e) != e["entry_hash"]:
                failures.append(f"{where}: fields do not hash to entry_hash")
            size, root = roots[e["organization_id"]]
            p = proofs[e["audit_id"]]
            leaf = hashlib.sha256(b"\x00" + bytes.fromhex(e["entry_hash"])).digest()
            if p["tree_size"] != size or not verify_inclusion(
                leaf, e["seq"] - 1, size, [bytes.fromhex(h) for h in p["proof"]], root
            ):
                failures.append(f"{where}: inclusion proof does not lead to the signed root")
    print(f"{count} entries, {len(roots)} checkpoint(s)")
    for s in skipped:
        print("SKIPPED", s)
    for f in failures:
        print("FAIL", f)
    print("OK" if not failures and not skipped else "NOT VERIFIED")
    sys.exit(0 if not failures and not skipped else 1)


if __name__ == "__main__":
    main()
