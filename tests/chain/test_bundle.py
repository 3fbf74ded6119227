"""Evidence bundles: export, offline verification, and tampering with any byte of the entries."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.chain.bundle import export_bundle, verify_bundle
from auditlens.chain.notes import SigningKey, generate_keys, load_signing_key, load_verifier
from auditlens.cli import app
from tests.helpers import ORG, ORG2, make_entry

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_bundle_stdlib.py"


@pytest.fixture
def bundle(store: al.AuditStore, key: SigningKey, tmp_path: Path) -> Path:
    store.append(
        [
            make_entry(
                organization_id=ORG,
                result="failure" if i % 3 == 0 else "success",
                details={"i": i, "note": "ünïcode ✓"},
            )
            for i in range(30)
        ]
    )
    store.append([make_entry(organization_id=ORG2, result="failure") for _ in range(5)])
    store.checkpoint(ORG, key)
    store.checkpoint(ORG2, key)
    out = tmp_path / "bundle.zip"
    res = export_bundle(store, "result:failure", out)
    assert res.entries == 15 and res.organizations == {ORG: 10, ORG2: 5}
    return out


def rewrite(path: Path, name: str, change, *, fix_manifest: bool) -> None:
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    files[name] = change(files[name])
    if fix_manifest:
        manifest = json.loads(files["manifest.json"])
        manifest["files"][name] = hashlib.sha256(files[name]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)


def stdlib_tool(path: Path, vkey: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), str(path), "--key", vkey],
        capture_output=True,
        text=True,
        check=False,
    )


def test_bundle_verifies_offline_with_both_verifiers(bundle: Path, key: SigningKey) -> None:
    report = verify_bundle(bundle, keys=[key.verifier])
    assert report.ok, report.problems
    assert report.entries == 15 and report.signed_by[ORG] == ["audit.test/log"]
    res = stdlib_tool(bundle, key.verifier.vkey)
    assert res.returncode == 0 and "OK" in res.stdout


def test_tampered_entry_is_reported_with_its_id(bundle: Path, key: SigningKey) -> None:
    with zipfile.ZipFile(bundle) as zf:
        first = json.loads(zf.read("entries.jsonl").splitlines()[0])

    def flip(data: bytes) -> bytes:
        lines = data.splitlines()
        e = json.loads(lines[0])
        e["actor"]["email"] = "someone.else@company.com"
        lines[0] = json.dumps(e).encode()
        return b"\n".join(lines) + b"\n"

    rewrite(bundle, "entries.jsonl", flip, fix_manifest=True)
    report = verify_bundle(bundle, keys=[key.verifier])
    assert [(p.kind, p.audit_id) for p in report.problems] == [
        ("entry_modified", first["audit_id"])
    ]
    res = stdlib_tool(bundle, key.verifier.vkey)
    assert res.returncode == 1 and first["audit_id"] in res.stdout


@pytest.mark.parametrize("offset", [10, 200, 411])
def test_any_changed_byte_of_the_entries_is_caught(
    bundle: Path, key: SigningKey, offset: int
) -> None:
    def poke(data: bytes) -> bytes:
        b = bytearray(data)
        b[offset] = ord("X") if b[offset] != ord("X") else ord("Y")
        return bytes(b)

    rewrite(bundle, "entries.jsonl", poke, fix_manifest=True)
    assert not verify_bundle(bundle, keys=[key.verifier]).ok


def test_changed_details_text_and_manifest_mismatch(bundle: Path, key: SigningKey) -> None:
    rewrite(bundle, "entries.jsonl", lambda d: d.replace(b'"i":0', b'"i":9', 1), fix_manifest=False)
    kinds = {p.kind for p in verify_bundle(bundle, keys=[key.verifier]).problems}
    assert "manifest" in kinds and kinds & {"details_mismatch", "entry_modified"}


def test_forged_proof_and_wrong_key(bundle: Path, key: SigningKey) -> None:
    def bad_proof(data: bytes) -> bytes:
        lines = data.splitlines()
        p = json.loads(lines[3])
        p["proof"][0] = "00" * 32
        lines[3] = json.dumps(p).encode()
        return b"\n".join(lines) + b"\n"

    rewrite(bundle, "proofs.jsonl", bad_proof, fix_manifest=True)
    assert [p.kind for p in verify_bundle(bundle, keys=[key.verifier]).problems] == ["proof"]
    other = SigningKey.generate("audit.test/log")
    kinds = [p.kind for p in verify_bundle(bundle, keys=[other.verifier]).problems]
    assert kinds.count("bad_signature") == 2
    assert stdlib_tool(bundle, other.verifier.vkey).returncode == 1


def test_entries_newer_than_the_checkpoint_need_a_new_one(
    store: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    store.append(make_entry())
    store.checkpoint(ORG, key)
    store.append(make_entry())
    with pytest.raises(al.StoreError, match="run `auditlens checkpoint` first"):
        export_bundle(store, None, tmp_path / "x.zip")


def test_keys_files(tmp_path: Path) -> None:
    private, public, vkey = generate_keys(tmp_path / "k", "audit.example/log")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_signing_key(private)
    assert key.name == "audit.example/log" and "PRIVATE" not in repr(key)
    assert load_verifier(public) == load_verifier(vkey) == key.verifier
    with pytest.raises(al.ConfigError, match="refusing to overwrite"):
        generate_keys(tmp_path / "k", "audit.example/log")


def test_cli_end_to_end(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        r = runner.invoke(app, list(args))
        return r.exit_code, r.stdout + r.stderr

    code, out = run("keys", "generate", "--out", str(tmp_path / "keys"), "--name", "audit.test/log")
    assert code == 0
    with al.open_store(store_url) as s:
        s.append([make_entry(result="failure") for _ in range(4)])
    monkeypatch.setenv("AUDITLENS_SIGNING_KEY", str(tmp_path / "keys" / "signing.key"))
    vkey = str(tmp_path / "keys" / "signing.vkey")
    assert run("checkpoint", "--db", store_url)[0] == 0
    code, out = run("verify", "--db", store_url, "--key", vkey)
    assert code == 0 and "valid" in out and "4 entries valid" in out
    code, out = run("verify", "--db", store_url, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    zip_path = tmp_path / "b.zip"
    assert run("export-bundle", "failed", "--out", str(zip_path), "--db", store_url)[0] == 0
    code, out = run("verify-bundle", str(zip_path), "--key", vkey)
    assert code == 0 and "bundle verifies" in out
    # witness flow through the CLI
    run("keys", "generate", "--out", str(tmp_path / "w"), "--name", "witness.test/w")
    note = tmp_path / "cp.txt"
    with al.open_store(store_url) as s:
        from auditlens.chain.checkpoints import latest_checkpoint

        note.write_text(latest_checkpoint(s, ORG).note)  # type: ignore[union-attr]
    code, out = run(
        "checkpoint",
        "cosign",
        str(note),
        "--key",
        str(tmp_path / "w" / "signing.key"),
        "--log-key",
        vkey,
        "--state",
        str(tmp_path / "state"),
        "--db",
        store_url,
    )
    assert code == 0, out
    code, out = run(
        "verify", "--db", store_url, "--key", vkey, "--key", str(tmp_path / "w" / "signing.vkey")
    )
    assert code == 0 and "witnessed by witness.test/w" in out
    # tampering makes verify fail with exit 1 and name the seq
    from sqlalchemy import text

    with al.open_store(store_url) as s, s.engine.begin() as conn:
        if s.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            conn.execute(text("UPDATE audit_entries SET result = 'success' WHERE seq = 3"))
            conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
            conn.execute(text("UPDATE audit_entries SET result = 'success' WHERE seq = 3"))
    code, out = run("verify", "--db", store_url, "--key", vkey)
    assert code == 1 and "seq 3" in out and "modified" in out


def test_imported_actors_without_email_verify_with_both_verifiers(
    store: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    from auditlens.importers import import_files
    from auditlens.resources import samples_dir

    report = import_files(store, "cloudtrail", [samples_dir() / "cloudtrail"])
    [org] = report.organizations
    store.checkpoint(org, key)
    out = tmp_path / "imported.zip"
    assert export_bundle(store, "actor_type:role", out).entries == 3
    assert verify_bundle(out, keys=[key.verifier]).ok
    res = stdlib_tool(out, key.verifier.vkey)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
