"""``verify_lake``: the lake checked from its files and manifests alone."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import auditlens as al
from auditlens.chain.canonical import entry_hash
from auditlens.errors import ArchiveError
from auditlens.lake import sync_lake, verify_lake
from auditlens.lake.layout import file_sha256, read_state
from tests.helpers import ORG, ORG2, make_entry


@pytest.fixture
def lake(store: al.AuditStore, tmp_path: Path) -> Path:
    """ORG: 30 entries in two syncs; ORG2: 5."""
    root = tmp_path / "lake"
    store.append([make_entry(details={"i": i}) for i in range(20)])
    store.append([make_entry(organization_id=ORG2) for _ in range(5)])
    sync_lake(store, root)
    store.append(
        [make_entry(details={"i": i}, timestamp="2025-01-21T08:00:00Z") for i in range(10)]
    )
    sync_lake(store, root)
    return root


def _file_with(root: Path, org: str, seq: int) -> Path:
    for f in read_state(root).files_of(org):
        if f.first_seq <= seq <= f.last_seq:
            return root / f.path
    raise AssertionError(seq)


def _rewrite(path: Path, frame: pl.DataFrame) -> None:
    frame.write_parquet(path, compression="zstd")


def test_an_untouched_lake_verifies(lake: Path) -> None:
    report = verify_lake(lake)
    assert report.ok, report.problems
    assert report.checked == 35
    assert {o.organization_id: (o.first_seq, o.last_seq) for o in report.organizations} == {
        ORG: (1, 30),
        ORG2: (1, 5),
    }


def test_a_changed_value_is_found_with_its_organization_and_seq(lake: Path) -> None:
    path = _file_with(lake, ORG, 7)
    frame = pl.read_parquet(path)
    frame = frame.with_columns(
        pl.when(pl.col("seq") == 7)
        .then(pl.lit("mallory@evil.test"))
        .otherwise(pl.col("actor_email"))
        .alias("actor_email")
    )
    _rewrite(path, frame)
    report = verify_lake(lake)
    assert not report.ok
    modified = [p for p in report.problems if p.kind == "modified"]
    assert [(p.organization_id, p.seq) for p in modified] == [(ORG, 7)]
    changed = [p for p in report.problems if p.kind == "file_changed"]
    assert len(changed) == 1 and changed[0].organization_id == ORG
    assert path.relative_to(lake).as_posix() in changed[0].detail
    assert report.first_problem(ORG2) is None


def test_a_deleted_file_is_a_gap(lake: Path) -> None:
    path = _file_with(lake, ORG, 25)
    lo, hi = (int(x) for x in path.stem.split("-")[-2:])
    path.unlink()
    report = verify_lake(lake)
    kinds = {p.kind for p in report.problems}
    assert kinds >= {"file_missing", "missing"}
    missing = sorted(p.seq for p in report.problems if p.kind == "missing" and p.seq is not None)
    assert missing[0] == lo and missing[-1] <= hi


def test_a_removed_row_is_a_gap(lake: Path) -> None:
    path = _file_with(lake, ORG, 3)
    _rewrite(path, pl.read_parquet(path).filter(pl.col("seq") != 3))
    report = verify_lake(lake)
    assert (ORG, 3, "missing") in {(p.organization_id, p.seq, p.kind) for p in report.problems}
    # seq 4 no longer links to the entry before it
    assert (ORG, 4, "modified") in {(p.organization_id, p.seq, p.kind) for p in report.problems}


def test_an_edited_manifest_is_found(lake: Path) -> None:
    first = lake / "manifests" / "sync-000001.json"
    meta = json.loads(first.read_text())
    meta["organizations"][ORG]["last_entry_hash"] = "f" * 64
    first.write_text(json.dumps(meta))
    report = verify_lake(lake)
    details = [p.detail for p in report.problems if p.kind == "manifest"]
    assert any("sync-000002.json: the previous manifest's SHA-256" in d for d in details)
    assert any("does not continue" in d for d in details)


def test_a_deleted_manifest_is_found(lake: Path) -> None:
    (lake / "manifests" / "sync-000001.json").unlink()
    report = verify_lake(lake)
    assert any("sync-000001.json is missing" in p.detail for p in report.problems)


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(
    store: al.AuditStore, tmp_path: Path
) -> None:
    key = al.SigningKey.generate("t/log")
    store.append([make_entry(details={"i": i}) for i in range(8)])
    store.checkpoint(ORG, key)
    root = tmp_path / "lake"
    sync_lake(store, root)
    assert verify_lake(root, keys=[key.verifier]).ok
    # an attacker rewrites seq 2 and re-chains everything after it, manifest included
    state = read_state(root)
    (f,) = state.files_of(ORG)
    path = root / f.path
    frame = pl.read_parquet(path).sort("seq")
    rows = frame.with_columns(
        pl.lit(ORG).alias("organization_id"), pl.col("timestamp").dt.epoch("ms").alias("ts")
    ).to_dicts()
    prev = "0" * 64
    hashes, prevs = [], []
    for row in rows:
        if row["seq"] == 2:
            row["action"] = "webhook.deleted"
        row["prev_hash"] = prev
        prev = entry_hash(row)
        prevs.append(row["prev_hash"])
        hashes.append(prev)
    forged = frame.with_columns(
        pl.when(pl.col("seq") == 2)
        .then(pl.lit("webhook.deleted"))
        .otherwise(pl.col("action"))
        .alias("action"),
        pl.Series("prev_hash", prevs),
        pl.Series("entry_hash", hashes),
    )
    _rewrite(path, forged)
    mpath = root / "manifests" / "sync-000001.json"
    meta = json.loads(mpath.read_text())
    meta["files"][0]["sha256"] = file_sha256(path)
    meta["files"][0]["bytes"] = path.stat().st_size
    meta["organizations"][ORG]["last_entry_hash"] = hashes[-1]
    mpath.write_text(json.dumps(meta))
    report = verify_lake(root, keys=[key.verifier])
    assert [p.kind for p in report.problems] == ["checkpoint_mismatch"]


def test_checkpoint_signatures_are_checked_with_the_given_keys(
    store: al.AuditStore, tmp_path: Path
) -> None:
    key, other = al.SigningKey.generate("t/log"), al.SigningKey.generate("t/other")
    store.append([make_entry() for _ in range(3)])
    store.checkpoint(ORG, key)
    root = tmp_path / "lake"
    sync_lake(store, root)
    good = verify_lake(root, keys=[key.verifier])
    assert good.ok and good.organizations[0].signed_by == ["t/log"]
    assert good.organizations[0].latest_checkpoint_size == 3
    bad = verify_lake(root, keys=[other.verifier])
    assert [p.kind for p in bad.problems] == ["bad_signature"]
    unchecked = verify_lake(root)
    assert unchecked.ok and unchecked.keys_source == "none"


def test_with_keys_an_organization_without_checkpoint_is_a_problem(
    store: al.AuditStore, tmp_path: Path
) -> None:
    key = al.SigningKey.generate("t/log")
    store.append([make_entry()])
    root = tmp_path / "lake"
    sync_lake(store, root)
    report = verify_lake(root, keys=[key.verifier])
    assert [(p.organization_id, p.kind) for p in report.problems] == [(ORG, "no_checkpoint")]


def test_a_file_that_is_no_longer_parquet_is_reported_not_raised(lake: Path) -> None:
    path = _file_with(lake, ORG2, 1)
    path.write_bytes(b"PAR1 garbage")
    report = verify_lake(lake)
    kinds = {(p.organization_id, p.kind) for p in report.problems}
    assert {(ORG2, "file_changed"), (ORG2, "file_unreadable"), (ORG2, "missing")} <= kinds
    assert report.first_problem(ORG) is None


def test_a_folder_without_manifests_is_not_a_verified_lake(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no lake manifest"):
        verify_lake(tmp_path)
