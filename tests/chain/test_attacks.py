"""A hostile second read of the integrity fixes, on SQLite and PostgreSQL.

The attacker can write the database — as the application's user (INSERT into any table,
no trigger dropped) or as its owner (triggers off) — and the archive folder. Each test
is one attack; ``verify`` (or retention) must notice, naming the organization.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

import auditlens as al
from auditlens.chain.canonical import GENESIS_HASH
from auditlens.chain.checkpoint_tables import checkpoints, signing_keys
from auditlens.chain.checkpoints import list_checkpoints
from auditlens.chain.notes import SigningKey
from auditlens.cli.app import app
from auditlens.errors import StoreError
from auditlens.merkle import MerkleTree, leaf_hash
from auditlens.retention import apply_retention, set_plan
from auditlens.retention_tables import org_plans
from auditlens.store.backend import entries, retention_authorizations, retention_log
from tests.chain.test_verify import tamper
from tests.helpers import NOW, ORG, ORG2, append_aged, make_entry, plan_set_at


def kinds(report: al.VerificationReport, org: str = ORG) -> list[str]:
    return sorted(p.kind for p in report.problems if p.organization_id == org)


def live(store: al.AuditStore, org: str = ORG) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(entries).where(entries.c.organization_id == org).order_by(entries.c.seq)
            ).mappings()
        ]


def delete_as_app_user(store: al.AuditStore, org: str, through: int) -> None:
    """Delete ``org``'s entries up to ``through`` through the retention exception — INSERT
    and DELETE on retention_authorizations only, no trigger dropped."""
    with store.engine.begin() as conn:
        conn.execute(
            insert(retention_authorizations).values(
                organization_id=org, through_seq=through, reason="not retention"
            )
        )
        conn.execute(
            entries.delete().where(entries.c.organization_id == org, entries.c.seq <= through)
        )
        conn.execute(
            retention_authorizations.delete().where(
                retention_authorizations.c.organization_id == org
            )
        )
    store.invalidate()


def fake_manifest(
    folder: Path, org: str, first: int, through: int, first_prev: str, last_hash: str
) -> tuple[str, str]:
    """A manifest that agrees with everything retention_log and the live chain say, with
    no archive behind it. Returns its path and SHA-256."""
    import hashlib

    meta = {
        "format": "auditlens.archive.v1",
        "organization_id": org,
        "first_seq": first,
        "through_seq": through,
        "rows": through - first + 1,
        "first_prev_hash": first_prev,
        "last_entry_hash": last_hash,
        "merkle_root": MerkleTree([leaf_hash(bytes.fromhex(last_hash))]).root().hex(),
        "files": [],
        "created_at_ms": int(time.time() * 1000),
    }
    path = folder / f"organization_id={org}" / f"manifest-{first:012d}-{through:012d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2))
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def insert_row(store: al.AuditStore, org: str, **values: Any) -> None:
    """INSERT a retention_log row (no trigger refuses INSERT)."""
    with store.engine.begin() as conn:
        conn.execute(
            insert(retention_log).values(
                organization_id=org, applied_ms=int(time.time() * 1000), **values
            )
        )


# -- a deletion "explained" by a manifest with nothing behind it ---------------------------


@pytest.mark.parametrize("after_retention", [False, True])
def test_deleted_entries_explained_by_a_fabricated_manifest(
    aged: al.AuditStore, tmp_path: Path, after_retention: bool
) -> None:
    """Before the fix: plain ``verify`` accepted it (only the manifest was compared with a
    row the same attacker wrote). An archived range no signed checkpoint covers is now
    re-read, file by file and link by link."""
    first = 1
    prev = GENESIS_HASH
    if after_retention:
        [res] = apply_retention(aged, tmp_path / "real", organization_id=ORG, now=NOW)
        assert res.through_seq is not None
        first, prev = res.through_seq + 1, live(aged)[0]["prev_hash"]
    rows = live(aged)
    through = first + 4
    last_hash = next(r["entry_hash"] for r in rows if r["seq"] == through)
    delete_as_app_user(aged, ORG, through)
    manifest, sha = fake_manifest(tmp_path / "fake", ORG, first, through, prev, last_hash)
    insert_row(
        aged,
        ORG,
        first_seq=first,
        through_seq=through,
        last_entry_hash=last_hash,
        rows=5,
        manifest=manifest,
        manifest_sha256=sha,
    )
    for include in (False, True):
        report = al.verify(aged, include_archive=include)
        assert "archive" in kinds(report), report.problems
        assert not [p for p in report.problems if p.organization_id == ORG2]
        org = next(o for o in report.organizations if o.organization_id == ORG)
        assert org.archive_check == "files" and org.archive_checkpoint is None


def test_a_range_a_checkpoint_covers_is_not_reread_without_include_archive(
    aged: al.AuditStore, tmp_path: Path, key: SigningKey
) -> None:
    apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)
    aged.checkpoint(ORG, key)
    report = al.verify(aged, ORG, keys=[key.verifier])
    assert report.ok, report.problems
    [org] = report.organizations
    assert org.archive_checkpoint is not None and org.archive_check == "manifest"


def test_oldest_entry_deleted_with_a_row_whose_manifest_is_missing(
    aged: al.AuditStore, store_url: str, tmp_path: Path, key: SigningKey
) -> None:
    first = live(aged)[0]
    delete_as_app_user(aged, ORG, 1)
    insert_row(
        aged,
        ORG,
        first_seq=1,
        through_seq=1,
        last_entry_hash=first["entry_hash"],
        rows=1,
        manifest=str(tmp_path / "nowhere" / "manifest.json"),
        manifest_sha256="00" * 32,
    )
    for include in (False, True):
        for keys in (None, [key.verifier]):
            report = al.verify(aged, include_archive=include, keys=keys)
            assert "archive" in kinds(report)
            assert any("unreadable manifest" in p.detail for p in report.problems)
    result = CliRunner().invoke(app, ["verify", "--db", store_url])
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "INVALID" in out and "unreadable manifest" in out


# -- forged retention_log rows (INSERT is not refused) -------------------------------------


@pytest.mark.parametrize("variant", ["second", "never", "below", "other_range"])
@pytest.mark.parametrize("include_archive", [False, True])
def test_forged_retention_log_rows(
    aged: al.AuditStore, tmp_path: Path, key: SigningKey, variant: str, include_archive: bool
) -> None:
    if variant != "never":
        [res] = apply_retention(aged, tmp_path / "a", organization_id=ORG, now=NOW)
        assert res.through_seq is not None
    with aged.engine.connect() as conn:
        real = [dict(r) for r in conn.execute(select(retention_log)).mappings()]
    if variant == "second":  # a second boundary row with a crafted manifest
        nxt = real[0]["through_seq"] + 1
        rows = live(aged)
        manifest, sha = fake_manifest(
            tmp_path / "b", ORG, nxt, nxt + 2, real[0]["last_entry_hash"], rows[2]["entry_hash"]
        )
        values = {"first_seq": nxt, "through_seq": nxt + 2, "manifest": manifest}
        values |= {"manifest_sha256": sha, "last_entry_hash": rows[2]["entry_hash"], "rows": 3}
    elif variant == "never":  # an organization retention never touched
        rows = live(aged)
        manifest, sha = fake_manifest(
            tmp_path / "b", ORG, 1, 3, GENESIS_HASH, rows[2]["entry_hash"]
        )
        values = {"first_seq": 1, "through_seq": 3, "manifest": manifest, "rows": 3}
        values |= {"manifest_sha256": sha, "last_entry_hash": rows[2]["entry_hash"]}
    elif variant == "below":  # through_seq below the current boundary
        values = {k: real[0][k] for k in ("first_seq", "last_entry_hash", "manifest")}
        values |= {"through_seq": 5, "rows": 5, "manifest_sha256": real[0]["manifest_sha256"]}
    else:  # the real manifest of the same organization, for a different range
        values = {k: real[0][k] for k in ("manifest", "manifest_sha256", "last_entry_hash")}
        values |= {"first_seq": real[0]["through_seq"] + 1, "rows": 2}
        values |= {"through_seq": real[0]["through_seq"] + 2}
    insert_row(aged, ORG, **values)
    aged.checkpoint(ORG2, key)
    for keys in (None, [key.verifier]):
        report = al.verify(aged, include_archive=include_archive, keys=keys)
        assert {"boundary", "archive"} & set(kinds(report)), (variant, report.problems)
        assert all(p.organization_id == ORG for p in report.problems), report.problems


# -- checkpoints and keys ------------------------------------------------------------------


def _forge_checkpoint(store: al.AuditStore, attacker: SigningKey, org: str) -> None:
    """Sign the current tree with the attacker's key and record key and checkpoint (INSERT)."""
    before = {r.note for r in list_checkpoints(store, org)}
    store.checkpoint(org, attacker)  # what the attacker's own `auditlens checkpoint` does
    assert len({r.note for r in list_checkpoints(store, org)} - before) == 1


def test_a_checkpoint_signed_by_a_key_the_attacker_recorded(
    store: al.AuditStore, store_url: str, key: SigningKey
) -> None:
    store.append([make_entry(details={"i": i}) for i in range(6)])
    attacker = SigningKey.generate("audit.test/log")  # same name as the real log key
    _forge_checkpoint(store, attacker, ORG)
    with store.engine.connect() as conn:
        names = conn.execute(select(signing_keys.c.name)).scalars().all()
    assert names == ["audit.test/log"]
    # with the auditor's key it does not count: it is a bad signature, and no checkpoint
    report = al.verify(store, keys=[key.verifier])
    assert kinds(report) == ["bad_signature"]
    assert report.keys_source == "given"
    # without it, the store's keys vouch for it — and the report says where keys came from
    report = al.verify(store)
    assert report.ok and report.keys_source == "store"
    result = CliRunner().invoke(app, ["verify", "--db", store_url])
    assert result.exit_code == 0
    assert "keys recorded in the store" in " ".join(result.output.split())


def test_a_second_key_with_the_log_keys_name_does_not_make_a_rewrite_pass(
    store: al.AuditStore, key: SigningKey
) -> None:
    store.append([make_entry(details={"i": i}) for i in range(6)])
    store.checkpoint(ORG, key)
    tamper(
        store,
        "UPDATE audit_entries SET result = 'failure' WHERE organization_id = :o AND seq = 2",
        params={"o": ORG},
    )
    attacker = SigningKey.generate(key.name)
    store.invalidate()
    with store.engine.begin() as conn:  # a new signing_keys row with the same name: INSERT
        conn.execute(
            insert(signing_keys).values(
                vkey=attacker.verifier.vkey, name=key.name, role="log", first_seen_ms=0
            )
        )
    assert "modified" in kinds(al.verify(store, keys=[key.verifier]))


def test_a_checkpoint_row_filed_under_another_organization(
    store: al.AuditStore, key: SigningKey
) -> None:
    """A genuine checkpoint of ORG2 copied into a row for ORG (INSERT): the note's origin
    names ORG2, so it is not ORG's checkpoint."""
    for org in (ORG, ORG2):
        store.append([make_entry(organization_id=org, details={"i": i}) for i in range(4)])
    store.checkpoint(ORG2, key)
    [cp2] = list_checkpoints(store, ORG2)
    with store.engine.begin() as conn:
        conn.execute(
            insert(checkpoints).values(
                organization_id=ORG,
                tree_size=cp2.tree_size,
                root_hash=cp2.root_hash,
                created_ms=cp2.created_ms,
                note=cp2.note,
            )
        )
    report = al.verify(store, keys=[key.verifier])
    assert "bad_signature" in kinds(report)
    assert any("origin" in p.detail for p in report.problems if p.organization_id == ORG)
    assert kinds(report, ORG2) == []


# -- entries that hold organization context ------------------------------------------------


def test_a_changed_profile_entry_is_modified(store: al.AuditStore) -> None:
    from auditlens.context import org_profile, set_org_profile

    store.append([make_entry() for _ in range(3)])
    set_org_profile(store, ORG, name="Acme", timezone="Europe/Berlin", hours="09:00-18:00")
    store.append([make_entry() for _ in range(2)])
    [entry] = store.entries(organization_id=ORG, actions=["organization.profile_changed"])
    tamper(
        store,
        "UPDATE audit_entries SET details = replace(details, 'Europe/Berlin', 'Pacific/Kiritimati')"
        " WHERE organization_id = :o AND seq = :s",
        params={"o": ORG, "s": entry["seq"]},
    )
    assert org_profile(store, ORG).timezone == "Pacific/Kiritimati"
    report = al.verify(store)
    assert [(p.kind, p.seq) for p in report.problems] == [("modified", entry["seq"])]


# -- the retention exception ---------------------------------------------------------------


def test_deleting_through_a_forged_authorization_is_found(store: al.AuditStore) -> None:
    store.append([make_entry(details={"i": i}) for i in range(8)])
    with store.engine.begin() as conn:  # INSERT only: the trigger then lets DELETE through
        conn.execute(
            insert(retention_authorizations).values(
                organization_id=ORG, through_seq=10**9, reason="x"
            )
        )
        conn.execute(entries.delete().where(entries.c.organization_id == ORG, entries.c.seq == 5))
    report = al.verify(store)
    assert [(p.kind, p.seq) for p in report.problems if p.kind == "missing"] == [("missing", 5)]
    # the standing authorization lets anyone delete any entry of ORG: it is a problem itself
    assert "authorization" in kinds(report)
    assert any("retention_authorizations" in p.detail for p in report.problems)


# -- plans ---------------------------------------------------------------------------------


def test_a_plan_row_inserted_behind_auditlens_is_found_and_not_applied(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    assert al.verify(aged).ok
    with aged.engine.begin() as conn:  # "free": 7 days, retention would remove more
        conn.execute(
            insert(org_plans).values(
                organization_id=ORG, plan="free", retention_days=None, changed_ms=0
            )
        )
    report = al.verify(aged)
    assert kinds(report) == ["plan"]
    [problem] = report.problems
    assert "free" in problem.detail and "organization.plan_changed" in problem.detail
    with pytest.raises(StoreError, match=r"organization\.plan_changed"):
        apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)
    assert aged.count(organization_id=ORG) == 51  # nothing removed
    # recorded through the API, the same plan is an audit entry and verifies
    set_plan(aged, ORG, "starter")
    set_plan(aged, ORG, "free")
    assert al.verify(aged).ok
    apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)


def test_the_plan_stays_vouched_for_after_retention_archived_its_entry(
    store: al.AuditStore, tmp_path: Path
) -> None:
    """The plan_changed entry ages out with the rest; retention's own entry (with the plan
    it applied) is live and vouches for the plan."""
    append_aged(store)
    # set long ago, so today its own entry is past the plan too (verify judges by the clock)
    plan_set_at(store, ORG, "starter", datetime.now(UTC) - timedelta(days=45))
    [res] = apply_retention(store, tmp_path, organization_id=ORG)
    assert res.through_seq == 51  # every entry, the plan's own too
    assert not store.entries(organization_id=ORG, actions=["organization.plan_changed"])
    report = al.verify(store)
    assert report.ok, report.problems
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    store.append([make_entry(timestamp=old, details={"n": n}) for n in range(3)])
    apply_retention(store, tmp_path, organization_id=ORG)  # retention's entry is recent
    assert al.verify(store).ok


def test_an_organization_with_only_a_forged_plan_row_is_listed(store: al.AuditStore) -> None:
    store.append([make_entry(organization_id=ORG2)])
    with store.engine.begin() as conn:
        conn.execute(insert(org_plans).values(organization_id=ORG, plan="free", changed_ms=0))
    report = al.verify(store)
    assert kinds(report) == ["plan"] and kinds(report, ORG2) == []
