"""Checkpoints that cannot be removed silently: trusted keys and a monitor state.

An attacker with write access to the database (here: triggers switched off first, as
the database owner could) deletes checkpoints to hide a truncation or a rewrite. With
keys the verifier holds, and with the state of an earlier run, ``verify`` notices.
Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

import auditlens as al
from auditlens.chain.checkpoints import cosign, latest_checkpoint, load_monitor_state
from auditlens.chain.notes import SigningKey, generate_keys
from auditlens.cli.app import app
from tests.chain.test_verify import rewrite_history
from tests.helpers import ORG, ORG2, make_entry
from tests.store.test_side_tables import without_triggers

N = 12


@pytest.fixture
def signed(store: al.AuditStore, key: SigningKey) -> al.AuditStore:
    """Two organizations of N entries, both checkpointed."""
    for org in (ORG, ORG2):
        store.append([make_entry(organization_id=org, details={"i": i}) for i in range(N)])
        store.checkpoint(org, key)
    return store


def delete(store: al.AuditStore, *statements: str) -> None:
    """Run DELETEs on entries and checkpoints as the database owner (triggers off)."""
    with without_triggers(store, "audit_entries", "checkpoints") as conn:
        for stmt in statements:
            conn.execute(text(stmt), {"o": ORG})
    store.invalidate()


def kinds(report: al.VerificationReport, org: str = ORG) -> list[str]:
    return sorted(p.kind for p in report.problems if p.organization_id == org)


def test_deleting_every_checkpoint_is_a_problem_with_a_trusted_key(
    signed: al.AuditStore, key: SigningKey
) -> None:
    assert al.verify(signed, keys=[key.verifier]).ok
    # truncate the newest entries, then remove the checkpoints that would reveal it
    delete(
        signed,
        f"DELETE FROM audit_entries WHERE organization_id = :o AND seq > {N - 4}",
        "DELETE FROM checkpoints WHERE organization_id = :o",
    )
    report = al.verify(signed, keys=[key.verifier])
    assert not report.ok
    assert kinds(report) == ["no_checkpoint"]
    assert kinds(report, ORG2) == []  # the other organization still verifies
    [problem] = report.problems
    assert problem.organization_id == ORG and "no checkpoint signed by a trusted key" in str(
        problem
    )
    # the same through one organization (the seq-order path, not the fast pass)
    assert kinds(al.verify(signed, ORG, keys=[key.verifier])) == ["no_checkpoint"]


def test_entries_never_checkpointed_fail_with_a_trusted_key(
    store: al.AuditStore, key: SigningKey
) -> None:
    store.append([make_entry(organization_id=ORG) for _ in range(3)])
    assert kinds(al.verify(store, keys=[key.verifier])) == ["no_checkpoint"]
    store.checkpoint(ORG, key)
    assert al.verify(store, keys=[key.verifier]).ok
    # entries after the latest checkpoint are fine: the next cron run signs them
    store.append([make_entry(organization_id=ORG)])
    assert al.verify(store, keys=[key.verifier]).ok


def test_a_checkpoint_signed_only_by_an_untrusted_key_is_not_enough(
    store: al.AuditStore, key: SigningKey
) -> None:
    store.append([make_entry(organization_id=ORG) for _ in range(3)])
    store.checkpoint(ORG, SigningKey.generate("mallory.example/log"))
    report = al.verify(store, keys=[key.verifier])
    assert kinds(report) == ["bad_signature"]


def test_a_deleted_newest_checkpoint_is_found_with_the_state_of_an_earlier_run(
    signed: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    state = tmp_path / "monitor.json"
    signed.append([make_entry(organization_id=ORG) for _ in range(5)])
    newest = signed.checkpoint(ORG, key)
    first = al.verify(signed, keys=[key.verifier], state=state)
    assert first.ok and first.state_written == str(state)
    seen = load_monitor_state(state)
    assert (seen[ORG].size, seen[ORG].root) == (N + 5, newest.root_hash)
    assert seen[ORG2].size == N
    # remove the newest checkpoint and the entries only it covered
    delete(
        signed,
        f"DELETE FROM audit_entries WHERE organization_id = :o AND seq > {N}",
        f"DELETE FROM checkpoints WHERE id = {newest.id}",
    )
    assert al.verify(signed, keys=[key.verifier]).ok  # without the state: undetectable
    before = state.read_text()
    report = al.verify(signed, keys=[key.verifier], state=state)
    assert kinds(report) == ["checkpoint_missing", "truncated"]
    missing = next(p for p in report.problems if p.kind == "checkpoint_missing")
    assert missing.organization_id == ORG and f"size {N + 5}" in missing.detail
    assert f"now covers {N} entries" in missing.detail
    # a run with problems does not overwrite what was seen
    assert report.state_written is None and state.read_text() == before
    assert kinds(al.verify(signed, ORG, keys=[key.verifier], state=state)) == [
        "checkpoint_missing",
        "truncated",
    ]


def test_a_deleted_newest_checkpoint_alone_is_found(
    signed: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    state = tmp_path / "monitor.json"
    signed.append([make_entry(organization_id=ORG) for _ in range(2)])
    newest = signed.checkpoint(ORG, key)
    assert al.verify(signed, keys=[key.verifier], state=state).ok
    delete(signed, f"DELETE FROM checkpoints WHERE id = {newest.id}")
    assert kinds(al.verify(signed, keys=[key.verifier], state=state)) == ["checkpoint_missing"]


def test_a_removed_organization_is_found_with_the_state(
    signed: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    state = tmp_path / "monitor.json"
    assert al.verify(signed, keys=[key.verifier], state=state).ok
    delete(
        signed,
        "DELETE FROM audit_entries WHERE organization_id = :o",
        "DELETE FROM checkpoints WHERE organization_id = :o",
    )
    report = al.verify(signed, keys=[key.verifier], state=state)
    assert kinds(report) == ["checkpoint_missing", "truncated"]
    assert kinds(report, ORG2) == []


def test_a_checkpoint_a_witness_cosigned_that_is_gone_is_found(
    signed: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    witness = SigningKey.generate("witness.example/w1")
    latest = latest_checkpoint(signed, ORG)
    assert latest is not None
    cosigned = cosign(signed, latest.note, witness, [key.verifier], tmp_path / "w")
    state = tmp_path / "monitor.json"
    trusted = [key.verifier, witness.verifier]
    assert al.verify(signed, keys=trusted, state=state).ok
    assert load_monitor_state(state)[ORG].witnesses == ("witness.example/w1",)
    # the log-signed row of the same size stays; only the witnessed one is removed
    delete(signed, f"DELETE FROM checkpoints WHERE id = {cosigned.id}")
    report = al.verify(signed, keys=trusted, state=state)
    assert kinds(report) == ["checkpoint_missing"]
    assert "cosigned by witness.example/w1" in report.problems[0].detail


def test_a_rewrite_resigned_with_the_log_key_is_found_with_the_state(
    signed: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    state = tmp_path / "monitor.json"
    assert al.verify(signed, keys=[key.verifier], state=state).ok
    # the operator holds the log key: rewrites seq 3 onwards, drops the old checkpoints,
    # and signs the rewritten tree
    rewrite_history(signed, 3)
    delete(signed, "DELETE FROM checkpoints WHERE organization_id = :o")
    signed.checkpoint(ORG, key)
    assert al.verify(signed, keys=[key.verifier]).ok  # without the state: undetectable
    report = al.verify(signed, keys=[key.verifier], state=state)
    assert kinds(report) == ["checkpoint_mismatch", "checkpoint_missing"]
    mismatch = next(p for p in report.problems if p.kind == "checkpoint_mismatch")
    assert "not consistent" in mismatch.detail and f"seq {N}" in mismatch.detail


def test_the_state_advances_only_after_clean_runs(
    signed: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    state = tmp_path / "sub" / "monitor.json"
    assert al.verify(signed, keys=[key.verifier], state=state).ok
    signed.append([make_entry(organization_id=ORG) for _ in range(3)])
    signed.checkpoint(ORG, key)
    assert al.verify(signed, ORG, keys=[key.verifier], state=state).ok
    seen = load_monitor_state(state)
    assert (seen[ORG].size, seen[ORG2].size) == (N + 3, N)  # ORG2 kept from the first run
    assert json.loads(state.read_text())["format"] == "auditlens.monitor.v1"


def test_a_malformed_state_or_state_with_an_explicit_checkpoint_is_refused(
    signed: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"size": 3}')
    with pytest.raises(al.ConfigError, match="not an auditlens monitor state"):
        al.verify(signed, keys=[key.verifier], state=bad)
    note = latest_checkpoint(signed, ORG).note  # type: ignore[union-attr]
    with pytest.raises(al.ConfigError, match="monitor state"):
        al.verify(signed, ORG, checkpoint=note, state=tmp_path / "s.json")


def test_cli_verify_with_key_and_state(store_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    private, _, vkey = generate_keys(tmp_path / "keys", "audit.test/log")
    key = al.load_signing_key(private)
    with al.open_store(store_url) as s:
        s.append([make_entry(organization_id=ORG) for _ in range(4)])
        s.checkpoint(ORG, key)
        s.append([make_entry(organization_id=ORG) for _ in range(2)])
        newest = s.checkpoint(ORG, key)
    state = tmp_path / "monitor.json"
    args = ["verify", "--db", store_url, "--key", str(vkey), "--state", str(state)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "state written to" in r.output and state.exists()
    with al.open_store(store_url) as s:
        delete(s, f"DELETE FROM checkpoints WHERE id = {newest.id}")
    r = runner.invoke(app, args)
    out = " ".join(r.output.split())  # the console may wrap long lines
    assert r.exit_code == 1
    assert f"{ORG} checkpoint: checkpoint_missing" in out and "not updated" in out
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["state_written"] is None
    assert [p["kind"] for p in report["organizations"][0]["problems"]] == ["checkpoint_missing"]
