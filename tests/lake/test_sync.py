"""``sync_lake``: incremental, compacted, atomic, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import auditlens as al
from auditlens.errors import ArchiveError, ConfigError
from auditlens.lake import sync_lake, verify_lake
from auditlens.lake.layout import LakeStorage, read_state
from auditlens.lake.sync import choose_partition
from tests.helpers import ORG, ORG2, append_aged, make_entry


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"  # beside the SQLite store's files, not around them


def _parquet(root: Path) -> list[Path]:
    return sorted(root.glob("organization_id=*/*/*.parquet"))


def test_first_sync_writes_hive_partitions_and_a_manifest(store: al.AuditStore, lake: Path) -> None:
    append_aged(store)  # 50 entries per organization over 60 days
    result = sync_lake(store, lake, partition="date")
    assert result.sync == 1 and result.rows == 100
    assert result.organizations == {ORG: (1, 50), ORG2: (1, 50)}
    files = _parquet(lake)
    assert {p.parent.parent.name for p in files} == {
        f"organization_id={ORG}",
        f"organization_id={ORG2}",
    }
    assert all(p.parent.name.startswith("date=20") for p in files)
    manifest = json.loads((lake / "manifests" / "sync-000001.json").read_text())
    assert manifest["organizations"][ORG]["first_seq"] == 1
    assert manifest["organizations"][ORG]["last_seq"] == 50
    assert manifest["organizations"][ORG]["prev_hash"] == "0" * 64
    assert sum(f["rows"] for f in manifest["files"]) == 100
    assert {f["path"] for f in manifest["files"]} == {p.relative_to(lake).as_posix() for p in files}
    # the partition columns live in the folder names, not in the files
    assert "organization_id" not in pl.read_parquet(files[0]).columns
    last = store.entries(organization_id=ORG, order="desc", limit=1)[0]
    assert manifest["organizations"][ORG]["last_entry_hash"] == last["entry_hash"]


def test_second_sync_adds_only_new_entries_and_is_idempotent(
    store: al.AuditStore, lake: Path
) -> None:
    store.append([make_entry() for _ in range(5)])
    assert sync_lake(store, lake).rows == 5
    store.append([make_entry() for _ in range(3)])
    store.append([make_entry(organization_id=ORG2)])
    second = sync_lake(store, lake)
    assert second.sync == 2
    assert second.organizations == {ORG: (6, 8), ORG2: (1, 1)}
    nothing = sync_lake(store, lake)
    assert (nothing.sync, nothing.rows) == (None, 0)
    assert not (lake / "manifests" / "sync-000003.json").exists()
    assert al.open_lake(lake).query().height == 9
    assert verify_lake(lake).ok


def test_one_organization_only(store: al.AuditStore, lake: Path) -> None:
    store.append([make_entry(), make_entry(organization_id=ORG2)])
    assert sync_lake(store, lake, organization_id=ORG2).organizations == {ORG2: (1, 1)}
    assert sync_lake(store, lake).organizations == {ORG: (1, 1)}


def test_many_small_syncs_do_not_leave_many_small_files(store: al.AuditStore, lake: Path) -> None:
    for _ in range(12):
        store.append([make_entry() for _ in range(10)])  # all on one day
        sync_lake(store, lake, target_file_bytes=1 << 20)
    assert len(_parquet(lake)) == 1  # each sync compacted the day's file
    assert len(read_state(lake).files) == 1
    assert al.open_lake(lake).query().height == 120
    assert verify_lake(lake).ok


def test_files_stop_growing_at_the_target_size(store: al.AuditStore, lake: Path) -> None:
    store.append([make_entry(details={"pad": "x" * 2000, "i": i}) for i in range(600)])
    sync_lake(store, lake, target_file_bytes=20_000, row_group_rows=50)
    files = _parquet(lake)
    assert len(files) > 1
    assert sum(pl.read_parquet(p).height for p in files) == 600
    assert verify_lake(lake).ok


def test_a_failed_sync_leaves_the_lake_as_before(
    store: al.AuditStore, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append([make_entry() for _ in range(4)])
    sync_lake(store, lake)
    before = {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()}
    store.append([make_entry() for _ in range(4)])

    create = LakeStorage.create

    def broken(self: LakeStorage, rel: str, data: bytes) -> None:
        if rel.startswith("manifests/"):  # the data files are written, the commit fails
            raise OSError("disk full")
        create(self, rel, data)

    monkeypatch.setattr(LakeStorage, "create", broken)
    with pytest.raises(OSError, match="disk full"):
        sync_lake(store, lake)
    after = {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()}
    assert after == before
    monkeypatch.undo()
    assert sync_lake(store, lake).organizations == {ORG: (5, 8)}
    assert verify_lake(lake).ok


def test_leftovers_of_a_killed_sync_are_removed(store: al.AuditStore, lake: Path) -> None:
    store.append([make_entry()])
    sync_lake(store, lake)
    folder = _parquet(lake)[0].parent
    (folder / "part-s000002-000000000002-000000000009.parquet").write_bytes(b"half")
    (folder / "part-s000002-000000000002-000000000009.parquet.tmp").write_bytes(b"half")
    foreign = folder / "seq-000000000001-000000000030.parquet"  # e.g. a retention archive's
    foreign.write_bytes(b"not ours")
    store.append([make_entry()])
    sync_lake(store, lake)
    assert _parquet(lake) == sorted([foreign, *(lake / f for f in read_state(lake).files)])
    assert not list(folder.glob("*.tmp"))
    assert foreign.read_bytes() == b"not ours"
    assert verify_lake(lake).ok


def test_a_lake_of_another_store_is_refused(store: al.AuditStore, lake: Path) -> None:
    store.append([make_entry()])
    sync_lake(store, lake)
    other = al.open_store(f"sqlite:///{lake.parent / 'other.db'}")
    other.append([make_entry(), make_entry()])
    with pytest.raises(ArchiveError, match="does not continue the lake's seq 1"):
        sync_lake(other, lake)
    assert read_state(lake).last_sync == 1


def test_the_manifest_carries_the_covering_checkpoint(store: al.AuditStore, lake: Path) -> None:
    key = al.SigningKey.generate("t/log")
    store.append([make_entry() for _ in range(3)])
    cp = store.checkpoint(ORG, key)
    store.append([make_entry()])  # after the checkpoint: still covered by it (size 3 ≤ 4)
    sync_lake(store, lake)
    manifest = json.loads((lake / "manifests" / "sync-000001.json").read_text())
    assert manifest["organizations"][ORG]["checkpoint"] == cp.note


def test_a_new_lake_is_partitioned_by_the_trails_density(
    store: al.AuditStore, tmp_path: Path
) -> None:
    # a busy organization: 600 entries within one day → one day file of 600 rows
    store.append([make_entry(organization_id=ORG2) for _ in range(600)])
    assert choose_partition(store) == "date"
    sync_lake(store, tmp_path / "busy")  # partition="auto", the default
    assert read_state(tmp_path / "busy").partition == "date"
    assert {p.parent.name for p in _parquet(tmp_path / "busy")} == {"date=2025-01-20"}
    # ~1 entry per organization-day: day files would be tiny, a month holds them
    append_aged(store)  # 50 entries per organization over 60 days
    assert choose_partition(store, ORG) == "month"
    assert choose_partition(store) == "month"  # 700 entries over 2 × ~60 days
    sync_lake(store, tmp_path / "sparse", partition="auto")
    assert read_state(tmp_path / "sparse").partition == "month"
    assert {p.parent.name[:6] for p in _parquet(tmp_path / "sparse")} == {"month="}
    # an existing lake keeps its partition whatever the density says now
    assert sync_lake(store, tmp_path / "busy", partition="auto").rows == 100
    assert read_state(tmp_path / "busy").partition == "date"
    with pytest.raises(ConfigError, match="date, month or auto, got 'week'"):
        sync_lake(store, tmp_path / "other", partition="week")
    assert choose_partition(al.open_store("sqlite://")) == "month"  # nothing to judge by


def test_a_lake_partitioned_by_month(store: al.AuditStore, lake: Path) -> None:
    append_aged(store)  # 60 days: three months
    sync_lake(store, lake, partition="month")
    folders = {p.parent.name for p in lake.glob("organization_id=*/*/*.parquet")}
    assert folders and all(
        f.startswith("month=20") and len(f) == len("month=2025-01") for f in folders
    )
    store.append([make_entry()])
    assert sync_lake(store, lake).organizations == {ORG: (51, 51)}  # keeps its partition
    with pytest.raises(ConfigError, match="partitioned by month, not date"):
        sync_lake(store, lake, partition="date")
    assert al.open_lake(lake).query().height == 101
    assert verify_lake(lake).ok


@pytest.mark.parametrize("partition", ["date", "month"])
def test_entries_logged_out_of_time_order_land_in_their_partitions(
    store: al.AuditStore, lake: Path, partition: str
) -> None:
    days = ["2025-03-02", "2025-01-31", "2025-03-02", "2025-02-01", "2025-01-31", "2025-03-01"]
    store.append([make_entry(timestamp=f"{d}T23:59:59.999Z") for d in days])
    sync_lake(store, lake, partition=partition)
    seqs: dict[str, list[int]] = {}
    for p in lake.glob("organization_id=*/*/*.parquet"):
        seqs[p.parent.name] = pl.read_parquet(p)["seq"].to_list()
    if partition == "date":
        assert seqs == {
            "date=2025-01-31": [2, 5],
            "date=2025-02-01": [4],
            "date=2025-03-01": [6],
            "date=2025-03-02": [1, 3],
        }
    else:
        assert seqs == {"month=2025-01": [2, 5], "month=2025-02": [4], "month=2025-03": [1, 3, 6]}
    assert verify_lake(lake).ok
    assert sorted(al.open_lake(lake).query()["seq"].to_list()) == [1, 2, 3, 4, 5, 6]
