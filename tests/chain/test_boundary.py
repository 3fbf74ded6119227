"""The retention boundary and the archive under attack, on SQLite and PostgreSQL.

Someone with write access to the database (and to the archive folder) forges
``retention_log`` rows, rewrites the archive, or edits entries appended after a
retention that removed everything: ``verify`` must say so, naming the organization
and the seq, and ``restore_archive`` must refuse what it cannot vouch for.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import insert, select, text

import auditlens as al
from auditlens.chain import entry_hash
from auditlens.chain.notes import SigningKey
from auditlens.chain.verify import OrganizationResult
from auditlens.merkle import MerkleTree, leaf_hash
from auditlens.retention import (
    ArchiveError,
    RetentionResult,
    apply_retention,
    archive_boundary,
    restore_archive,
    set_plan,
)
from auditlens.store.tables import retention_log, sqlite_ddl
from tests.chain.test_verify import org_rows, tamper
from tests.helpers import NOW, ORG, ORG2, archive_previous_layout, days_ago, make_entry, plan_set_at


def org_result(report: al.VerificationReport, org: str = ORG) -> OrganizationResult:
    return next(o for o in report.organizations if o.organization_id == org)


def kinds(report: al.VerificationReport, org: str = ORG) -> list[tuple[str, int | None]]:
    return [(p.kind, p.seq) for p in org_result(report, org).problems]


def forge_row(store: al.AuditStore, org: str, **values: object) -> None:
    """INSERT a retention_log row, as anyone with write access can (no UPDATE needed)."""
    row = {
        "organization_id": org,
        "first_seq": 1,
        "through_seq": 10**9,
        "last_entry_hash": "ab" * 32,
        "rows": 10**9,
        "manifest": "/nowhere/manifest.json",
        "manifest_sha256": "cd" * 32,
        "applied_ms": int(time.time() * 1000),
        **values,
    }
    with store.engine.begin() as conn:
        conn.execute(insert(retention_log).values(**row))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite_archive(manifest: Path, seq: int, email: str) -> tuple[str, str]:
    """Change ``actor_email`` of one archived entry and re-chain the archive and its manifest,
    as an insider with write access to the archive folder would (in a lake: every manifest
    that lists a rewritten file, and the manifests' own chain, too).

    Returns the new manifest's SHA-256 and the new last entry hash.
    """
    meta = json.loads(manifest.read_text())
    root = manifest.parent.parent
    new: dict[int, tuple[str, str, str]] = {}  # seq → actor_email, prev_hash, entry_hash
    prev = meta["first_prev_hash"]
    whole = pl.concat([pl.read_parquet(root / f["path"]) for f in meta["files"]]).sort("seq")
    for row in whole.iter_rows(named=True):
        changed = email if row["seq"] == seq else row["actor_email"]
        # lake files leave organization_id to their folder name; the hash includes it
        link = {"organization_id": meta["organization_id"], **row}
        link |= {"actor_email": changed, "prev_hash": prev}
        link["ts"] = int(row["timestamp"].timestamp() * 1000)
        new[row["seq"]] = (changed, prev, entry_hash(link))
        prev = new[row["seq"]][2]
    for f in meta["files"]:
        path = root / f["path"]
        pl.read_parquet(path).with_columns(
            pl.col("seq").replace_strict({s: v[i] for s, v in new.items()}).alias(name)
            for i, name in enumerate(("actor_email", "prev_hash", "entry_hash"))
        ).write_parquet(path, compression="zstd")
        f["sha256"], f["bytes"] = sha256(path), path.stat().st_size
    hashes = [new[s][2] for s in sorted(new)]
    meta["last_entry_hash"] = hashes[-1]
    meta["merkle_root"] = MerkleTree([leaf_hash(bytes.fromhex(h)) for h in hashes]).root().hex()
    if manifest.parent.name != "manifests":  # the previous layout: one manifest per range
        manifest.write_text(json.dumps(meta, indent=2))
        return sha256(manifest), hashes[-1]
    # a lake: every manifest that lists a rewritten file or range, and the manifests' chain
    files = {f["path"]: f for f in meta["files"]}
    previous = None
    for listed in sorted(manifest.parent.glob("sync-*.json")):
        data = meta if listed == manifest else json.loads(listed.read_text())
        for f in data["files"]:
            f |= {k: files[f["path"]][k] for k in ("sha256", "bytes")} if f["path"] in files else {}
        seg = data["organizations"].get(meta["organization_id"])
        if seg is not None and seg["last_seq"] in new:
            seg["last_entry_hash"] = new[seg["last_seq"]][2]
        if seg is not None and seg["first_seq"] in new:
            seg["prev_hash"] = new[seg["first_seq"]][1]
        data["previous_sha256"] = previous
        listed.write_text(json.dumps(data, indent=1))
        previous = sha256(listed)
    return sha256(manifest), hashes[-1]


def rechain_live(store: al.AuditStore, org: str, prev: str) -> None:
    """Recompute every live link of ``org`` from ``prev`` (triggers off), as the database
    owner would to make a rewritten archive fit."""
    rows = org_rows(store, org)
    stmts = []
    for r in rows:
        r["prev_hash"] = prev
        r["entry_hash"] = prev = entry_hash(r)
        stmts.append(
            f"UPDATE audit_entries SET prev_hash = '{r['prev_hash']}', "
            f"entry_hash = '{r['entry_hash']}' WHERE id = {r['id']}"
        )
    tamper(store, *stmts)


def tamper_retention_log(store: al.AuditStore, statement: str, params: dict) -> None:
    """UPDATE retention_log with its append-only triggers (if any) switched off."""
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("ALTER TABLE retention_log DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS retention_log_no_update"))
        conn.execute(text(statement), params)
        if store.dialect == "postgresql":
            conn.execute(text("ALTER TABLE retention_log ENABLE TRIGGER USER"))
        else:
            for ddl in sqlite_ddl:
                conn.execute(text(ddl))


# -- item 4: retention that removes every live entry ------------------------------------


def test_the_chain_continues_after_retention_removed_every_live_entry(
    store: al.AuditStore, tmp_path: Path
) -> None:
    store.append([make_entry(timestamp=days_ago(60 - i), details={"i": i}) for i in range(12)])
    # the plan was set long ago (its own entry too), so today retention removes them all; a
    # `now` ahead of the clock would remove entries early, and verify would say so
    plan_set_at(store, ORG, "starter", datetime.now(UTC) - timedelta(days=45))
    head = store.count(organization_id=ORG)  # the plan change is an entry too
    [res] = apply_retention(store, tmp_path)
    assert (res.first_seq, res.through_seq) == (1, head)
    assert archive_boundary(store, ORG) is not None
    through, last_hash = archive_boundary(store, ORG)  # type: ignore[misc]
    # retention's own entry is the first live one: it continues the archived chain
    [applied] = store.entries(organization_id=ORG)
    assert applied["action"] == "audit_log.retention_applied"
    assert (applied["seq"], applied["prev_hash"]) == (through + 1, last_hash)
    appended = store.append([make_entry(details={"n": n}) for n in range(3)])
    assert [a.seq for a in appended] == [head + 2, head + 3, head + 4]
    report = al.verify(store)
    assert report.ok, report.problems
    assert report.checked == 4 and org_result(report).archived_entries == head
    # an edit of a new entry behind auditlens' back is found
    tamper(
        store,
        "UPDATE audit_entries SET actor_email = 'mallory@evil.example' "
        "WHERE organization_id = :o AND seq = :s",
        params={"o": ORG, "s": head + 3},
    )
    for include in (False, True):
        report = al.verify(store, include_archive=include)
        assert kinds(report) == [("modified", head + 3)]
        assert report.checked == 4


# -- item 5: a forged retention_log row --------------------------------------------------


@pytest.mark.parametrize("include_archive", [False, True])
def test_a_forged_boundary_row_does_not_hide_the_live_chain(
    aged: al.AuditStore, include_archive: bool
) -> None:
    total = aged.count()
    forge_row(aged, ORG)  # "seq 1..10^9 were archived", manifest nowhere
    tamper(
        aged,
        "UPDATE audit_entries SET result = 'failure' WHERE organization_id = :o AND seq = 7",
        params={"o": ORG},
    )
    report = al.verify(aged, include_archive=include_archive)
    assert not report.ok
    assert report.checked == total  # every live entry of both organizations, none dropped
    org = org_result(report)
    assert org.entries == aged.count(organization_id=ORG) and org.first_seq == 1
    found = kinds(report)
    assert ("modified", 7) in found  # the live chain is still checked
    assert ("boundary", 1) in found  # live entries at or below the claimed boundary
    details = " ".join(str(p) for p in org.problems)
    assert ORG in details and "1000000000" in details
    assert org_result(report, ORG2).ok


def test_a_forged_row_naming_another_organizations_manifest(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    [res2] = apply_retention(aged, tmp_path, organization_id=ORG2, now=NOW)
    [row2] = _rows(aged, ORG2)
    forge_row(
        aged,
        ORG,
        first_seq=1,
        through_seq=30,
        rows=30,
        last_entry_hash=row2["last_entry_hash"],
        manifest=row2["manifest"],
        manifest_sha256=row2["manifest_sha256"],
    )
    for include in (False, True):
        report = al.verify(aged, include_archive=include)
        assert not report.ok
        assert report.checked == aged.count()  # ORG's all, ORG2's live ones
        details = [str(p) for p in org_result(report).problems if p.kind == "boundary"]
        assert any(ORG2 in d and "organization" in d for d in details), details
        assert ("boundary", 1) in kinds(report)
        assert org_result(report, ORG2).ok, org_result(report, ORG2).problems
    assert str(res2.manifest) == row2["manifest"]


def test_a_second_row_for_an_archived_range_is_reported(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)
    [row] = _rows(aged, ORG)
    forge_row(aged, ORG, **{k: row[k] for k in row if k not in ("id", "organization_id")})
    report = al.verify(aged)
    assert ("boundary", 1) in kinds(report)
    assert report.checked == aged.count()


def test_a_changed_manifest_is_reported_against_the_recorded_sha256(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    [res] = apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)
    manifest = Path(res.manifest)  # type: ignore[arg-type]
    meta = json.loads(manifest.read_text())
    meta["created_at_ms"] += 1  # any byte
    manifest.write_text(json.dumps(meta, indent=2))
    report = al.verify(aged)
    assert [p.kind for p in org_result(report).problems] == ["boundary"]
    assert "SHA-256" in org_result(report).problems[0].detail


# -- item 6: a rewritten, re-chained archive --------------------------------------------


def test_a_rewritten_archive_is_found_without_a_checkpoint(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    [res] = apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)
    rewrite_archive(Path(res.manifest), 5, "mallory@evil.example")  # type: ignore[arg-type]
    for include in (False, True):
        report = al.verify(aged, include_archive=include)
        assert not report.ok
        org = org_result(report)
        # and the chained retention entry's Merkle root no longer matches the range
        assert {p.kind for p in org.problems} == {"boundary", "retention"}
        assert all(p.seq is not None for p in org.problems)
        assert "SHA-256" in " ".join(p.detail for p in org.problems)
    set_plan(aged, ORG, "enterprise")
    with pytest.raises(ArchiveError, match=r"SHA-256 .* recorded"):
        restore_archive(aged, ORG, allow_unanchored=True)


def test_a_rewritten_archive_is_found_by_the_checkpoint_too(
    aged: al.AuditStore, tmp_path: Path, key: SigningKey
) -> None:
    aged.checkpoint(ORG, key)
    [res] = apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)
    manifest = Path(res.manifest)  # type: ignore[arg-type]
    rewrite_archive(manifest, 5, "mallory@evil.example")
    report = al.verify(aged, keys=[key.verifier], include_archive=True)
    assert {p.kind for p in org_result(report).problems} == {
        "boundary",
        "checkpoint_mismatch",
        "retention",  # the chained retention entry's Merkle root no longer matches
    }
    assert org_result(report).archive_checkpoint is None


def test_an_archive_rewritten_with_its_record_row_and_live_chain_is_found_by_the_checkpoint(
    aged: al.AuditStore, tmp_path: Path, key: SigningKey
) -> None:
    """The insider with the database and the lake: the archived entry, its files, the lake's
    retention record (the newest manifest: no link after it), the ``retention_log`` row and
    every live link, all made consistent. Only the signed checkpoint still tells."""
    aged.checkpoint(ORG, key)
    [res] = apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)
    sha, last = rewrite_archive(Path(res.manifest), 5, "mallory@evil.example")  # type: ignore[arg-type]
    tamper_retention_log(
        aged,
        "UPDATE retention_log SET manifest_sha256 = :sha, last_entry_hash = :last "
        "WHERE organization_id = :org",
        {"sha": sha, "last": last, "org": ORG},
    )
    rechain_live(aged, ORG, last)
    for report in (al.verify(aged), al.verify(aged, keys=[key.verifier], include_archive=True)):
        # the boundary, the record and every link hold; the checkpoint tells, and so does
        # the retention entry in the chain (the SHA-256 and Merkle root it recorded)
        assert sorted(p.kind for p in org_result(report).problems) == [
            "checkpoint_mismatch",
            "retention",
        ]
    set_plan(aged, ORG, "enterprise")
    with pytest.raises(ArchiveError):
        restore_archive(aged, ORG, keys=[key.verifier])


def test_restore_names_the_covering_checkpoint_or_refuses(
    aged: al.AuditStore, tmp_path: Path, key: SigningKey
) -> None:
    apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)
    set_plan(aged, ORG, "enterprise")
    with pytest.raises(ArchiveError, match=r"no signed checkpoint covers seq 1\.\.30"):
        restore_archive(aged, ORG)
    unanchored = restore_archive(aged, ORG, allow_unanchored=True)
    assert unanchored.checkpoint_size is None and unanchored.entries.height == 30
    assert not unanchored.anchored
    # a checkpoint signed after retention covers the archive too: its tree starts with
    # the archived leaves
    cp = aged.checkpoint(ORG, key)
    assert cp.tree_size == 30 + aged.count(organization_id=ORG)
    restored = restore_archive(aged, ORG, keys=[key.verifier])
    assert restored.anchored and restored.checkpoint_size == cp.tree_size
    assert restored.signed_by == ["audit.test/log"] and restored.keys_source == "given"
    assert (restored.first_seq, restored.last_seq) == (1, 30)
    report = al.verify(aged, keys=[key.verifier], include_archive=True)
    org = org_result(report)
    assert org.ok, org.problems
    assert (org.archived_entries, org.archive_check, org.archive_checkpoint) == (
        30,
        "files",
        cp.tree_size,
    )
    # a checkpoint signed by a key the caller does not trust covers nothing
    with pytest.raises(ArchiveError, match="no signed checkpoint covers"):
        restore_archive(aged, ORG, keys=[SigningKey.generate("other/log").verifier])


def test_restore_refuses_an_archive_the_checkpoint_does_not_match(
    aged: al.AuditStore, tmp_path: Path, key: SigningKey
) -> None:
    cp = aged.checkpoint(ORG, key)
    [res] = apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)
    set_plan(aged, ORG, "enterprise")
    # the database owner rewrites the archive, fixes what retention_log recorded and
    # re-chains the live entries: everything agrees again, except the signed root
    sha, last = rewrite_archive(Path(res.manifest), 5, "mallory@evil.example")  # type: ignore[arg-type]
    tamper_retention_log(
        aged,
        "UPDATE retention_log SET manifest_sha256 = :s, last_entry_hash = :h "
        "WHERE organization_id = :o",
        {"s": sha, "h": last, "o": ORG},
    )
    rechain_live(aged, ORG, last)
    report = al.verify(aged, keys=[key.verifier], include_archive=True)
    assert sorted(p.kind for p in org_result(report).problems) == [
        "checkpoint_mismatch",
        "retention",  # the chained retention entry recorded the original SHA-256 and root
    ]
    assert org_result(report).archive_checkpoint is None
    with pytest.raises(
        ArchiveError, match=f"the first {cp.tree_size} entries does not match the signed checkpoint"
    ):
        restore_archive(aged, ORG, keys=[key.verifier], allow_unanchored=True)


# -- item 14: a killed run, a relative archive path --------------------------------------


def _killed_then_rerun(
    aged: al.AuditStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> RetentionResult:
    """A retention run killed after it wrote the archive (before it read it back), then the
    rerun a week later, which archives a longer range; the rerun's result."""
    import auditlens.retention as ret  # lazy: patched per test, as the tests below do

    real = ret.read_archive

    def killed(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt("killed after the archive was written")

    monkeypatch.setattr(ret, "read_archive", killed)
    with pytest.raises(KeyboardInterrupt):
        apply_retention(aged, root, organization_id=ORG, now=NOW)
    monkeypatch.setattr(ret, "read_archive", real)
    [res] = apply_retention(aged, root, organization_id=ORG, now=NOW + timedelta(days=8))
    return res


def test_a_killed_run_leaves_no_overlapping_files(
    aged: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lake layout: the rerun reuses what the killed run wrote; the killed run's
    retention record stays in the manifests' chain, unused (no retention_log row names it)."""
    from auditlens.lake import open_lake, verify_lake

    res = _killed_then_rerun(aged, tmp_path, monkeypatch)
    assert (res.first_seq, res.through_seq) == (1, 38)
    seqs = open_lake(tmp_path).query(organization_id=ORG)["seq"]
    assert seqs.sort().to_list() == list(range(1, 39))  # a lake read sees each entry once
    folder = tmp_path / f"organization_id={ORG}"
    assert pl.read_parquet(folder / "**" / "*.parquet")["seq"].n_unique() == 38
    assert [r["manifest"] for r in _rows(aged, ORG)] == [str(res.manifest)]
    assert not list(tmp_path.rglob("*.tmp")) and verify_lake(tmp_path).ok
    report = al.verify(aged, include_archive=True)
    assert report.ok and report.archived == 38, report.problems


def test_a_killed_run_leaves_no_overlapping_files_previous_layout(
    aged: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archives of the previous layout (one manifest per range beside its files, as earlier
    versions wrote): a killed run's files are set aside."""
    archive_previous_layout(monkeypatch, tmp_path / "staging")
    res = _killed_then_rerun(aged, tmp_path, monkeypatch)
    assert (res.first_seq, res.through_seq) == (1, 38)
    folder = tmp_path / f"organization_id={ORG}"
    seqs = pl.read_parquet(folder / "**" / "*.parquet")["seq"]
    assert seqs.sort().to_list() == list(range(1, 39))  # a folder read sees each entry once
    assert sorted(p.name for p in folder.glob("manifest-*")) == [Path(res.manifest).name]  # type: ignore[arg-type]
    assert not list(tmp_path.rglob("*.tmp"))
    # the killed run's files are set aside, not deleted: the folder may be shared
    assert sorted(p.name for p in (folder / "_orphaned").iterdir()) == [
        "manifest-000000000001-000000000030.json.orphaned",
        "seq-000000000001-000000000001.parquet.orphaned",  # rewritten by the rerun
        "seq-000000000002-000000000030.parquet.orphaned",
    ]
    report = al.verify(aged, include_archive=True)
    assert report.ok and report.archived == 38, report.problems


def test_a_relative_archive_path_is_recorded_absolute(
    aged: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    [res] = apply_retention(aged, "archive", organization_id=ORG, now=NOW)
    [row] = _rows(aged, ORG)
    assert Path(row["manifest"]).is_absolute() and Path(row["manifest"]) == Path(res.manifest)  # type: ignore[arg-type]
    assert Path(row["manifest"]).is_relative_to(tmp_path / "work" / "archive")
    monkeypatch.chdir(tmp_path / "elsewhere")
    report = al.verify(aged, include_archive=True)
    assert report.ok, report.problems


def _rows(store: al.AuditStore, org: str) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(retention_log)
                .where(retention_log.c.organization_id == org)
                .order_by(retention_log.c.id)
            ).mappings()
        ]
