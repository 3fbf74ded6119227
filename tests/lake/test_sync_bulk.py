"""``sync_lake`` reading the whole table in row-id order (a first sync, or mostly new
entries): the same files and manifest as the sync organization by organization, on SQLite
and PostgreSQL; a store whose seqs are not in row-id order still syncs (by organization)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import insert, select

import auditlens as al
from auditlens.errors import ArchiveError
from auditlens.lake import sync as lake_sync
from auditlens.lake import sync_lake, verify_lake
from auditlens.store.backend import entries
from tests.helpers import ORG, ORG2, days_ago, make_entry

ORG3 = "7c0d5a8e-1f4b-4c6a-9e2d-3b5f6a7c8d90"


def _interleaved(store: al.AuditStore, days: int = 30, first_day: int = 40) -> None:
    """Three organizations appending in turn, day after day (their rows interleave in the
    table; ORG logs twice a day, the others once)."""
    for i in range(days):
        day = first_day - i
        store.append(
            [
                make_entry(organization_id=ORG, timestamp=days_ago(day)),
                make_entry(organization_id=ORG2, timestamp=days_ago(day - 0.2)),
                make_entry(organization_id=ORG, timestamp=days_ago(day - 0.4)),
            ]
        )
        if i % 3 == 0:
            store.append([make_entry(organization_id=ORG3, timestamp=days_ago(day - 0.6))])


def _manifest(lake: Path, number: int = 1) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((lake / "manifests" / f"sync-{number:06d}.json").read_text())
    del meta["created_at_ms"], meta["previous_sha256"]  # differ between any two lakes
    return meta


def _files(lake: Path) -> dict[str, bytes]:
    return {
        p.relative_to(lake).as_posix(): p.read_bytes()
        for p in lake.glob("organization_id=*/*/*.parquet")
    }


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 rows: partitions and organizations span chunks."""
    monkeypatch.setattr(lake_sync, "BULK_CHUNK_ROWS", 7)


def _by_organization(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lake_sync, "_mostly_new", lambda heads, state: False)


def _no_per_organization_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the per-organization read was used")

    monkeypatch.setattr(lake_sync._Run, "per_organization", refuse)


@pytest.mark.parametrize("partition", ["date", "month"])
def test_first_sync_of_interleaved_organizations_equals_the_per_organization_sync(
    store: al.AuditStore,
    tmp_path: Path,
    small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
    partition: str,
) -> None:
    _interleaved(store)
    with monkeypatch.context() as m:
        _no_per_organization_read(m)
        bulk = sync_lake(store, tmp_path / "bulk", partition=partition)
    with monkeypatch.context() as m:
        _by_organization(m)
        per_org = sync_lake(store, tmp_path / "per-org", partition=partition)
    assert bulk.rows == per_org.rows == 100
    assert (
        bulk.organizations
        == per_org.organizations
        == {
            ORG: (1, 60),
            ORG2: (1, 30),
            ORG3: (1, 10),
        }
    )
    assert bulk.files_written == per_org.files_written
    assert _manifest(tmp_path / "bulk") == _manifest(tmp_path / "per-org")
    assert _files(tmp_path / "bulk") == _files(tmp_path / "per-org")
    assert verify_lake(tmp_path / "bulk").ok
    assert al.open_lake(tmp_path / "bulk").query().height == 100


def test_mostly_new_entries_compact_into_the_lakes_open_files_as_per_organization(
    store: al.AuditStore, tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second sync with mostly new entries reads the table in bulk, skips the entries
    the lake holds, and rewrites each partition's open file once (with its new rows)."""
    _interleaved(store, days=4, first_day=40)
    with monkeypatch.context() as m:
        _by_organization(m)
        for lake in ("bulk", "per-org"):
            assert sync_lake(store, tmp_path / lake).rows == 14
    store.append([make_entry(organization_id=ORG, timestamp=days_ago(36.9))])  # an open file
    _interleaved(store, days=20, first_day=37)
    with monkeypatch.context() as m:
        _no_per_organization_read(m)
        bulk = sync_lake(store, tmp_path / "bulk")
    with monkeypatch.context() as m:
        _by_organization(m)
        per_org = sync_lake(store, tmp_path / "per-org")
    assert (
        bulk.organizations
        == per_org.organizations
        == {
            ORG: (9, 49),
            ORG2: (5, 24),
            ORG3: (3, 9),
        }
    )
    assert bulk.files_replaced == per_org.files_replaced > 0
    assert _manifest(tmp_path / "bulk", 2) == _manifest(tmp_path / "per-org", 2)
    assert _files(tmp_path / "bulk") == _files(tmp_path / "per-org")
    assert verify_lake(tmp_path / "bulk").ok


def test_entries_out_of_time_order_spanning_chunks_land_in_their_partitions(
    store: al.AuditStore, tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An organization whose entries go back and forth between days across chunks: every
    entry lands in its day's folder (a day may get a file per chunk), none twice."""
    days = ["2025-03-02", "2025-01-31", "2025-03-02", "2025-02-01", "2025-01-31", "2025-03-02"]
    for _ in range(4):
        store.append([make_entry(timestamp=f"{d}T12:00:00.000Z") for d in days])
        store.append(
            [make_entry(organization_id=ORG2, timestamp="2025-02-01T12:00:00.000Z") for _ in "ab"]
        )
    with monkeypatch.context() as m:
        _no_per_organization_read(m)
        result = sync_lake(store, tmp_path / "bulk")
    assert result.organizations == {ORG: (1, 24), ORG2: (1, 8)}
    lake = al.open_lake(tmp_path / "bulk").query()
    assert sorted(lake.filter(organization_id=ORG)["seq"].to_list()) == list(range(1, 25))
    for path in (tmp_path / "bulk").glob("organization_id=*/date=*/*.parquet"):
        days_in = pl.read_parquet(path)["timestamp"].dt.convert_time_zone("UTC").dt.date()
        assert {str(d) for d in days_in} == {path.parent.name.removeprefix("date=")}
    assert verify_lake(tmp_path / "bulk").ok


def _copy_swapping(
    source: al.AuditStore, target: al.AuditStore, org: str, seqs: tuple[int, int]
) -> None:
    """``source``'s entries into ``target``, the rows of two of ``org``'s seqs in each
    other's place (seq order is not row-id order there)."""
    cols = [c for c in entries.c if c.name != "id"]
    with source.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(*cols).order_by(entries.c.id))]
    first, second = (
        next(i for i, r in enumerate(rows) if r["organization_id"] == org and r["seq"] == seq)
        for seq in seqs
    )
    rows[first], rows[second] = rows[second], rows[first]
    with target.engine.begin() as conn:
        for row in rows:
            conn.execute(insert(entries).values(**row))


@pytest.mark.parametrize(
    ("swapped", "reads"),
    [((1, 2), []), ((5, 10), ["per-organization"])],
    ids=["same-chunk", "other-chunk"],
)
def test_seqs_out_of_row_id_order_sync_all_the_same(
    store: al.AuditStore,
    tmp_path: Path,
    small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
    swapped: tuple[int, int],
    reads: list[str],
) -> None:
    """Seqs out of table order in one chunk are sorted there; across chunks the bulk read
    finds a gap (after writing earlier chunks), removes what it wrote and syncs organization
    by organization. Either way: the same lake as the per-organization sync, no stray
    files, each entry reported to ``progress`` once."""
    source = al.open_store(f"sqlite:///{tmp_path / 'source.db'}")
    _interleaved(source, days=10)
    _copy_swapping(source, store, ORG2, swapped)
    used: list[str] = []
    original = lake_sync._Run.per_organization

    def spy(self: Any, *args: Any) -> None:
        used.append("per-organization")
        original(self, *args)

    with monkeypatch.context() as m:
        m.setattr(lake_sync._Run, "per_organization", spy)
        told: list[int] = []
        result = sync_lake(store, tmp_path / "lake", progress=told.append)
    assert used == reads
    assert sum(told) == result.rows == 34  # the abandoned attempt's entries counted once
    with monkeypatch.context() as m:
        _by_organization(m)
        sync_lake(source, tmp_path / "reference")
    assert result.organizations == {ORG: (1, 20), ORG2: (1, 10), ORG3: (1, 4)}
    assert _manifest(tmp_path / "lake") == _manifest(tmp_path / "reference")
    assert _files(tmp_path / "lake") == _files(tmp_path / "reference")
    assert verify_lake(tmp_path / "lake").ok
    source.close()


def test_a_lake_missing_entries_is_refused_after_the_bulk_read(
    store: al.AuditStore, tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mostly new entries that do not continue the lake (the lake lost its manifest's
    successor, or another store): refused as by the per-organization sync, nothing left."""
    _interleaved(store, days=2)
    lake = tmp_path / "lake"
    sync_lake(store, lake)
    other = al.open_store(f"sqlite:///{tmp_path / 'other.db'}")
    _interleaved(other, days=20)
    with pytest.raises(ArchiveError, match="does not continue the lake"):
        sync_lake(other, lake)
    listed = {
        f["path"] for f in json.loads((lake / "manifests/sync-000001.json").read_text())["files"]
    }
    assert set(_files(lake)) == listed
    other.close()
