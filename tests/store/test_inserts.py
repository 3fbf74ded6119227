"""The one chained insert (``auditlens.store.inserts``): appends and restores both use it."""

from __future__ import annotations

import pytest

import auditlens as al
from auditlens.chain.canonical import GENESIS_HASH, content_hash, link_hash
from auditlens.errors import StoreError
from auditlens.schema import normalize_entry
from auditlens.store.backend import insert_chained
from tests.helpers import ORG, make_entry


def _chained(n: int) -> list[dict[str, object]]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        row = normalize_entry(make_entry(details={"note": f"Ünïcode {seq}"}))
        row["seq"], row["prev_hash"] = seq, prev
        row["entry_hash"] = prev = link_hash(prev, content_hash(row))
        rows.append(row)
    return rows


def test_inserted_rows_are_stored_searchable_and_verify(store: al.AuditStore) -> None:
    rows = _chained(3)
    with store.transaction() as conn:
        assert insert_chained(conn, rows) == 3
    assert store.count(organization_id=ORG) == 3
    assert store.search('"ünïcode 2"', backend="polars")["seq"].to_list() == [2]
    assert al.verify(store).ok
    appended = store.append(make_entry())  # and an append continues the same chain
    assert appended[0].seq == 4 and al.verify(store).ok


def test_outside_a_write_transaction_it_refuses(store: al.AuditStore) -> None:
    with store.connect() as conn, pytest.raises(StoreError, match=r"store\.transaction"):
        insert_chained(conn, _chained(1))
    assert store.count() == 0


def test_nothing_to_insert_is_nothing_done(store: al.AuditStore) -> None:
    with store.connect() as conn:
        assert insert_chained(conn, []) == 0
