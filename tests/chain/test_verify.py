"""Verification against tampering done behind auditlens' back, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import auditlens as al
from auditlens.chain import entry_hash
from auditlens.chain.checkpoints import WitnessError, cosign
from auditlens.chain.notes import (
    SigningKey,
    checkpoint_body,
    parse_checkpoint,
    parse_note,
    sign_note,
)
from auditlens.merkle import MerkleTree, leaf_hash
from auditlens.store.tables import sqlite_ddl
from tests.helpers import ORG, ORG2, make_entry

N = 20


@pytest.fixture
def signed(store: al.AuditStore, key: SigningKey) -> al.AuditStore:
    """Two organizations of N entries each, both checkpointed."""
    store.append(
        [
            make_entry(
                organization_id=ORG, details={"i": i}, timestamp=f"2025-01-01T00:00:{i:02d}Z"
            )
            for i in range(N)
        ]
    )
    store.append([make_entry(organization_id=ORG2, details={"i": i}) for i in range(N)])
    store.checkpoint(ORG, key)
    store.checkpoint(ORG2, key)
    return store


def tamper(store: al.AuditStore, *statements: str, params: dict[str, Any] | None = None) -> None:
    """Run SQL with the immutability triggers switched off, then switch them back on."""
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE checkpoints DISABLE TRIGGER USER"))
        else:
            for name in (
                "audit_entries_no_update",
                "audit_entries_no_delete",
                "checkpoints_no_update",
                "checkpoints_no_delete",
            ):
                conn.execute(text(f"DROP TRIGGER {name}"))
        for stmt in statements:
            conn.execute(text(stmt), params or {})
        if store.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE checkpoints ENABLE TRIGGER USER"))
        else:
            for ddl in sqlite_ddl:
                conn.execute(text(ddl))


def org_rows(store: al.AuditStore, org: str) -> list[dict[str, Any]]:
    """Every stored row of ``org`` (all columns), in seq order."""
    with store.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text("SELECT * FROM audit_entries WHERE organization_id = :o ORDER BY seq"),
                {"o": org},
            ).mappings()
        ]


def rewrite_history(store: al.AuditStore, seq: int) -> list[dict[str, Any]]:
    """Change entry ``seq`` of ORG and recompute every later hash, as an insider would."""
    rows = org_rows(store, ORG)
    rows[seq - 1]["result"] = "failure"
    prev = rows[seq - 2]["entry_hash"] if seq > 1 else "0" * 64
    stmts = []
    for r in rows[seq - 1 :]:
        r["prev_hash"] = prev
        r["entry_hash"] = prev = entry_hash(r)
        stmts.append(
            f"UPDATE audit_entries SET result = '{r['result']}', prev_hash = '{r['prev_hash']}', "
            f"entry_hash = '{r['entry_hash']}' WHERE id = {r['id']}"
        )
    tamper(store, *stmts)
    store.invalidate()
    return rows


def first(report: al.VerificationReport, org: str = ORG) -> tuple[str, int | None]:
    p = report.first_problem(org)
    assert p is not None, "tampering went undetected"
    return p.kind, p.seq


def test_an_untouched_store_verifies(signed: al.AuditStore, key: SigningKey) -> None:
    report = al.verify(signed, keys=[key.verifier])
    assert report.ok and report.checked == 2 * N
    org = next(o for o in report.organizations if o.organization_id == ORG)
    assert (org.first_seq, org.last_seq, org.latest_checkpoint_size) == (1, N, N)
    assert org.signed_by == ["audit.test/log"]
    assert al.verify(signed, ORG, since_seq=7, keys=[key.verifier]).checked == N - 6


def test_many_small_ranges_read_two_at_once_verify_the_same(
    signed: al.AuditStore, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-read pass splits the table into id ranges read by two readers: ranges that
    cut organizations anywhere check each link across the cut, and checkpoints still hold."""
    import auditlens.chain.verify as verify_module

    monkeypatch.setattr(verify_module, "_RANGE_ROWS", 3)
    report = al.verify(signed, keys=[key.verifier], chunk_size=2)
    assert report.ok and report.checked == 2 * N
    org = next(o for o in report.organizations if o.organization_id == ORG)
    assert (org.first_seq, org.last_seq, org.latest_checkpoint_size) == (1, N, N)
    tamper(
        signed,
        "UPDATE audit_entries SET result = 'failure' WHERE organization_id = :o AND seq = 7",
        params={"o": ORG},
    )
    report = al.verify(signed, keys=[key.verifier], chunk_size=2)
    assert first(report) == ("modified", 7)
    assert report.first_problem(ORG2) is None


FIELDS = {
    "actor_email": "'mallory@evil.example'",
    "actor_user_id": "NULL",
    "actor_type": "'system'",
    "action": "'auth.login'",
    "resource_type": "'app'",
    "resource_id": "'wh-999'",
    "resource_name": "'Nothing to see'",
    "application_id": "NULL",
    "ip_address": "'10.9.9.9'",
    "user_agent": "'curl/8'",
    "details": "'{}'",
    "result": "'failure'",
    "ts": "ts + 1",
    "audit_id": "'00000000-0000-4000-8000-00000000dead'",
}


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_one_changed_field_is_found_at_its_seq(
    signed: al.AuditStore, key: SigningKey, field: str
) -> None:
    tamper(
        signed,
        f"UPDATE audit_entries SET {field} = {FIELDS[field]} "
        "WHERE organization_id = :o AND seq = 7",
        params={"o": ORG},
    )
    report = al.verify(signed, keys=[key.verifier])
    assert first(report) == ("modified", 7)
    assert report.first_problem(ORG2) is None


def test_a_rewritten_entry_with_recomputed_hash_is_found(
    signed: al.AuditStore, key: SigningKey
) -> None:
    row = signed.entries(organization_id=ORG, order="asc")[8]
    with signed.engine.connect() as conn:
        raw = dict(
            conn.execute(
                text("SELECT * FROM audit_entries WHERE audit_id = :a"), {"a": row["audit_id"]}
            )
            .mappings()
            .one()
        )
    raw["result"] = "failure"
    tamper(
        signed,
        "UPDATE audit_entries SET result = 'failure', entry_hash = :h WHERE audit_id = :a",
        params={"h": entry_hash(raw), "a": row["audit_id"]},
    )
    assert first(al.verify(signed, keys=[key.verifier])) == ("modified", 9)


def test_a_deleted_entry_is_missing(signed: al.AuditStore, key: SigningKey) -> None:
    tamper(
        signed,
        "DELETE FROM audit_entries WHERE organization_id = :o AND seq = 5",
        params={"o": ORG},
    )
    assert first(al.verify(signed, keys=[key.verifier])) == ("missing", 5)


def test_a_deleted_entry_with_renumbering_is_missing(
    signed: al.AuditStore, key: SigningKey
) -> None:
    tamper(
        signed,
        "DELETE FROM audit_entries WHERE organization_id = :o AND seq = 5",
        "UPDATE audit_entries SET seq = seq - 1 WHERE organization_id = :o AND seq > 5",
        params={"o": ORG},
    )
    assert first(al.verify(signed, keys=[key.verifier])) == ("missing", 5)


def test_a_forged_entry_inserted_is_found(signed: al.AuditStore, key: SigningKey) -> None:
    rows = signed.entries(organization_id=ORG, order="asc")
    forged = {**rows[9], "audit_id": "00000000-0000-4000-8000-00000000f00d", "result": "success"}
    from auditlens.schema import normalize_entry

    raw = normalize_entry({k: forged[k] for k in al.schema.ENTRY_FIELDS})
    raw.update(seq=11, prev_hash=rows[9]["entry_hash"])
    raw["entry_hash"] = entry_hash(raw)
    cols = ", ".join(raw)
    tamper(
        signed,
        "UPDATE audit_entries SET seq = seq + 1000 WHERE organization_id = :o AND seq > 10",
        "UPDATE audit_entries SET seq = seq - 999 WHERE organization_id = :o AND seq > 1000",
        f"INSERT INTO audit_entries ({cols}) VALUES ({', '.join(':' + k for k in raw)})",
        params={"o": ORG, **raw},
    )
    assert first(al.verify(signed, keys=[key.verifier])) == ("inserted", 11)


def test_two_swapped_entries_are_reordered(signed: al.AuditStore, key: SigningKey) -> None:
    tamper(
        signed,
        "UPDATE audit_entries SET seq = -1 WHERE organization_id = :o AND seq = 12",
        "UPDATE audit_entries SET seq = 12 WHERE organization_id = :o AND seq = 13",
        "UPDATE audit_entries SET seq = 13 WHERE organization_id = :o AND seq = -1",
        params={"o": ORG},
    )
    assert first(al.verify(signed, keys=[key.verifier])) == ("reordered", 12)


def test_an_entry_moved_to_another_organization(signed: al.AuditStore, key: SigningKey) -> None:
    tamper(
        signed,
        "UPDATE audit_entries SET organization_id = :o2, seq = 100 "
        "WHERE organization_id = :o AND seq = 3",
        params={"o": ORG, "o2": ORG2},
    )
    report = al.verify(signed, keys=[key.verifier])
    assert first(report, ORG) == ("missing", 3)
    assert report.first_problem(ORG2) is not None


def test_a_truncated_tail_is_found_against_the_checkpoint(
    signed: al.AuditStore, key: SigningKey
) -> None:
    tamper(
        signed,
        f"DELETE FROM audit_entries WHERE organization_id = :o AND seq > {N - 3}",
        params={"o": ORG},
    )
    report = al.verify(signed, keys=[key.verifier])
    assert first(report) == ("truncated", N - 2)


def test_a_chain_recomputed_without_the_key_is_caught(
    signed: al.AuditStore, key: SigningKey
) -> None:
    # the attacker edits seq 4 and recomputes every later hash: the chain itself is consistent again
    rows = rewrite_history(signed, 4)
    report = al.verify(signed, keys=[key.verifier])
    assert [p.kind for p in report.problems] == ["checkpoint_mismatch"]
    # … and re-signing the checkpoint needs the key: a forged one fails the signature check
    mallory = SigningKey.generate("audit.test/log")
    tree = MerkleTree([leaf_hash(bytes.fromhex(r["entry_hash"])) for r in rows])
    body = checkpoint_body(f"audit.test/log/{ORG}", N, tree.root(), 1)
    forged = sign_note(body, mallory)
    tamper(
        signed,
        "UPDATE checkpoints SET note = :n, root_hash = :r WHERE organization_id = :o",
        params={"n": forged, "r": tree.root().hex(), "o": ORG},
    )
    report = al.verify(signed, keys=[key.verifier])
    assert "bad_signature" in [p.kind for p in report.problems]


def test_checkpoint_given_explicitly(signed: al.AuditStore, key: SigningKey) -> None:
    note = signed.checkpoint(ORG, key).note
    assert al.verify(signed, ORG, checkpoint=note, keys=[key.verifier]).ok
    other = SigningKey.generate("someone.else/log")
    report = al.verify(
        signed, ORG, checkpoint=sign_note(parse_note(note).body, other), keys=[key.verifier]
    )
    assert [p.kind for p in report.problems] == ["bad_signature"]
    rewrite_history(signed, 2)
    report = al.verify(signed, ORG, checkpoint=note, keys=[key.verifier])
    assert [p.kind for p in report.problems] == ["checkpoint_mismatch"]


def test_proofs_from_the_store(signed: al.AuditStore, key: SigningKey) -> None:
    old = signed.checkpoint(ORG, key)
    entries = signed.entries(organization_id=ORG, order="asc")
    proof = signed.inclusion_proof(entries[4]["audit_id"])
    assert proof.verify() and proof.seq == 5 and proof.tree_size == N
    signed.append([make_entry(organization_id=ORG) for _ in range(7)])
    new = signed.checkpoint(ORG, key)
    cons = signed.consistency_proof(old, new)
    assert cons.verify() and (cons.old_size, cons.new_size) == (N, N + 7)
    assert signed.inclusion_proof(entries[4]["audit_id"], new).verify()
    with pytest.raises(al.StoreError, match="newer than the checkpoint"):
        signed.inclusion_proof(signed.entries(organization_id=ORG, limit=1)[0]["audit_id"], old)


def test_witness_cosigns_and_refuses_a_rewrite(
    signed: al.AuditStore, key: SigningKey, tmp_path: Path
) -> None:
    witness = SigningKey.generate("witness.example/w1")
    cp = signed.checkpoint(ORG, key)
    rec = cosign(signed, cp.note, witness, [key.verifier], tmp_path)
    assert parse_note(rec.note).verified_by([key.verifier, witness.verifier]) == [
        "audit.test/log",
        "witness.example/w1",
    ]
    signed.append([make_entry(organization_id=ORG)])
    cosign(signed, signed.checkpoint(ORG, key).note, witness, [key.verifier], tmp_path)
    report = al.verify(signed, keys=[key.verifier, witness.verifier])
    org = next(o for o in report.organizations if o.organization_id == ORG)
    assert report.ok and org.witnesses == ["witness.example/w1"]
    # the operator (who has the log key) rewrites history and re-signs: the witness notices
    rewrite_history(signed, 2)
    rewritten = signed.checkpoint(ORG, key)
    with pytest.raises(WitnessError, match="not consistent"):
        cosign(signed, rewritten.note, witness, [key.verifier], tmp_path)
    with pytest.raises(WitnessError, match="not signed by a trusted log key"):
        cosign(signed, rewritten.note, witness, [witness.verifier], tmp_path)
    assert parse_checkpoint(parse_note(rewritten.note).body).size == N + 1


def test_checkpoints_are_append_only(signed: al.AuditStore) -> None:
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="append-only"), signed.engine.begin() as conn:
        conn.execute(text("DELETE FROM checkpoints"))
