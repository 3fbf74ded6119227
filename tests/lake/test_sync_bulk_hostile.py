"""The one-read (bulk) lake sync against hostile stores and racing appends, the Spark
reader's partition for remote lakes, and the lake writer's new names (each test failed
before its fix)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

import auditlens as al
from auditlens.chain.canonical import chain_rows, content_tail
from auditlens.errors import ConfigError
from auditlens.ingest import Validated, validate
from auditlens.lake import sync as lake_sync
from auditlens.lake import sync_lake, verify_lake
from auditlens.lake.layout import LakeStorage
from auditlens.schema import ROW_FIELDS
from auditlens.store.backend import entries
from auditlens.store.inserts import insert_chained_values
from tests.helpers import ORG, ORG2, days_ago, make_entry

ORG3 = "7c0d5a8e-1f4b-4c6a-9e2d-3b5f6a7c8d90"


def test_bulk_read_statements_follow_the_rows_not_the_id_span(
    store: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One correctly chained row stored at id 10**9 (an INSERT with an explicit id, or a
    PostgreSQL sequence jump): the bulk sync builds and runs one SELECT per 100,000 ids
    (10,000 here, ~10 CPU-s; at id 2**62 it never ends and exhausts memory)."""
    source = al.open_store(f"sqlite:///{tmp_path / 'source.db'}")
    source.append(
        [make_entry(organization_id=ORG, timestamp=days_ago(5 - i / 10)) for i in range(20)]
    )
    cols = [c for c in entries.c if c.name != "id"]
    with source.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(*cols).order_by(entries.c.id))]
    with store.engine.begin() as conn:
        for i, row in enumerate(rows):
            conn.execute(insert(entries).values(**row, **({"id": 10**9} if i == 19 else {})))
    assert al.verify(store).ok  # the chain itself is intact
    seen: list[int] = []
    original = store.read_batches_of

    def count(stmts: Sequence[Any]) -> Iterator[Any]:
        seen.append(len(stmts))
        return original(stmts)

    monkeypatch.setattr(store, "read_batches_of", count)
    result = sync_lake(store, tmp_path / "lake")
    assert result.rows == 20
    assert sum(seen) <= 2, f"{sum(seen)} range statements for 20 rows"
    source.close()


def test_bulk_sync_never_starts_an_organization_inside_an_in_flight_append(
    store: al.AuditStore, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a new organization's append commits while the bulk sync reads its id
    ranges. Its first rows fall in a range read before the commit, the rest in one read
    after: the lake starts it at seq 4, verify --lake accepts that ("after retention"), and
    no later sync brings seq 1-3 (retention of that organization is refused from then on)."""
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite ids grow in commit order")
    store.append(
        [make_entry(organization_id=ORG, timestamp=days_ago(9 - i / 10)) for i in range(10)]
    )
    inserted, release = threading.Event(), threading.Event()

    def in_flight() -> None:  # Store.append_prepared's transaction, paused before its commit
        prepared = []
        for i in range(10):
            value = validate(make_entry(organization_id=ORG3, timestamp=days_ago(8 - i / 10)))
            assert isinstance(value, Validated)
            prepared.append((tuple(value.row[f] for f in ROW_FIELDS), content_tail(value.row)))
        rows, tails = zip(*prepared, strict=True)
        with store.transaction(orgs={ORG3}) as conn:
            heads = store._heads(conn, {ORG3})
            org_index = ROW_FIELDS.index("organization_id")
            insert_chained_values(conn, chain_rows(rows, tails, org_index, heads))
            inserted.set()
            release.wait(60)

    thread = threading.Thread(target=in_flight)
    thread.start()
    assert inserted.wait(60)
    store.append(
        [make_entry(organization_id=ORG2, timestamp=days_ago(7 - i / 10)) for i in range(5)]
    )
    monkeypatch.setattr(lake_sync, "BULK_CHUNK_ROWS", 7)
    original = store.read_batches_of

    def ranges_one_by_one(stmts: Sequence[Any]) -> Iterator[Any]:
        for i, stmt in enumerate(stmts):  # the store's reader, a range at a time
            if i == 2:  # the append commits after the second range was read
                release.set()
                thread.join()
            yield from original([stmt])

    monkeypatch.setattr(store, "read_batches_of", ranges_one_by_one)
    try:
        result = sync_lake(store, tmp_path / "lake")
    finally:
        release.set()
        thread.join()
    assert verify_lake(tmp_path / "lake").ok
    assert result.organizations.get(ORG3, (1, 10))[0] == 1, result.organizations


@pytest.mark.parametrize(
    "url", ["gs://bucket/lake", "abfss://c@a.dfs.core.windows.net/l", "dbfs:/l"]
)
def test_a_remote_lake_whose_manifests_we_cannot_read_needs_its_partition(url: str) -> None:
    """Before: ``date`` was assumed, and a month lake (what ``auto`` gives small tenants)
    matched no file."""
    from auditlens.engines.spark import read_lake

    with pytest.raises(ConfigError, match="pass partition='date' or partition='month'"):
        read_lake(None, url)


def test_the_lake_writer_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    """Before: a data file's name was opened with O_TRUNC, through a symlink planted there."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    where = LakeStorage.at(tmp_path / "lake")
    folder = tmp_path / "lake" / "organization_id=x" / "month=2025-01"
    folder.mkdir(parents=True)
    (folder / "part-s000001-1-2.parquet").symlink_to(victim)
    with pytest.raises(FileExistsError):
        where.write_new("organization_id=x/month=2025-01/part-s000001-1-2.parquet", b"PAR1")
    assert victim.read_text() == "precious"
