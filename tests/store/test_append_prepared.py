"""``Store.append_prepared``: rows as tuples with their content tails (a bulk import's
reader processes build them) append exactly as ``append_rows`` appends the same rows."""

from __future__ import annotations

from typing import Any

import pytest

import auditlens as al
from auditlens.chain.canonical import content_tail
from auditlens.errors import DuplicateEntryError, StoreError
from auditlens.schema import ROW_FIELDS, normalize_entry
from tests.helpers import ORG, ORG2, make_entry


def _rows(n: int, **overrides: Any) -> list[dict[str, Any]]:
    return [
        normalize_entry(
            make_entry(
                organization_id=ORG2 if i % 3 == 0 else ORG,
                details={"n": i, "note": "Ünïcode ✓"},
                **overrides,
            )
        )
        for i in range(n)
    ]


def _prepared(rows: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], list[bytes]]:
    return [tuple(r[f] for f in ROW_FIELDS) for r in rows], [content_tail(r) for r in rows]


def _chain(store: al.AuditStore) -> list[tuple[Any, ...]]:
    return [
        (e["audit_id"], e["organization_id"], e["seq"], e["prev_hash"], e["entry_hash"])
        for e in store.entries(limit=None, order="asc")
    ]


def test_prepared_rows_append_as_append_rows_does(store: al.AuditStore) -> None:
    earlier, rows = _rows(4), _rows(30)
    reference = al.open_store("sqlite://")
    for s in (store, reference):
        s.append_rows([dict(r) for r in earlier])  # chains to continue
    reference.append_rows([dict(r) for r in rows])
    assert store.append_prepared(*_prepared(rows)) == (30, 0)
    assert _chain(store) == _chain(reference)
    assert al.verify(store).ok
    # a replay, alone or mixed with new rows, is a no-op for the rows already stored
    assert store.append_prepared(*_prepared(rows)) == (0, 30)
    more = _rows(5)
    assert store.append_prepared(*_prepared(rows[:3] + more + more[:1])) == (5, 4)
    reference.append_rows([dict(r) for r in rows[:3] + more + more[:1]])
    assert _chain(store) == _chain(reference)


def test_a_changed_resend_is_a_conflict_by_index_and_nothing_is_appended(
    store: al.AuditStore,
) -> None:
    stored = _rows(3)
    store.append_prepared(*_prepared(stored))
    changed = {**stored[1], "result": "failure"}
    batch = [*_rows(2), changed]
    with pytest.raises(DuplicateEntryError) as err:
        store.append_prepared(*_prepared(batch))
    assert [(c.index, c.audit_id) for c in err.value.conflicts] == [(2, changed["audit_id"])]
    assert store.count() == 3


def test_a_refused_batch_appends_nothing(store: al.AuditStore) -> None:
    store.append_prepared(*_prepared(_rows(2)))
    before = _chain(store)
    rows = _rows(4)
    rows[2]["action"] = None  # NOT NULL: the database refuses the batch
    with pytest.raises(StoreError, match="refused the batch"):
        store.append_prepared(*_prepared(rows))
    assert _chain(store) == before
    assert al.verify(store).ok
