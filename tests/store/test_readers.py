"""Columnar reads: many reads with bound parameters in a row, and SQLite's helper process
(``_adbc_worker``) dying — killed, crashing before it answers, or in the middle of a result."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import auditlens as al
from auditlens.store.readers import _SqliteWorker
from tests.helpers import ORG, ORG2, make_entry


def _worker_pid() -> int | None:
    proc = _SqliteWorker._proc
    return None if proc is None or proc.poll() is not None else proc.pid


def test_many_reads_with_bound_parameters_in_a_row(store: al.AuditStore) -> None:
    """Subject-access exports read by long ``audit_id`` lists, one after the other; a
    result stream released after its statement crashed the SQLite helper."""
    appended = store.append(
        [
            make_entry(organization_id=ORG if i % 3 else ORG2, details={"i": i, "pad": "x" * 200})
            for i in range(600)
        ]
    )
    ids = [a.audit_id for a in appended]
    rnd = random.Random(7)
    store.to_arrow(limit=1)  # the helper (SQLite) is up before the reads under test
    before = _worker_pid() if store.dialect == "sqlite" else None
    for size in [130, 150, 1, 50, 140, 150, 5, 120, 150, 100] * 4:
        chosen = rnd.sample(ids, size)
        table = store.to_arrow(audit_id=chosen, order="asc")
        assert sorted(table["audit_id"].to_pylist()) == sorted(chosen)
    if store.dialect == "sqlite":
        assert _worker_pid() == before  # one helper served every read: it never crashed


def _sqlite_store(tmp_path: Path, n: int, pad: int) -> al.AuditStore:
    store = al.open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store.append([make_entry(details={"i": i, "pad": "y" * pad}) for i in range(n)])
    return store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[al.AuditStore]:
    """A small SQLite file store (the helper process is SQLite's only)."""
    s = _sqlite_store(tmp_path, 40, 10)
    yield s
    s.close()


def test_a_killed_helper_is_replaced_and_the_next_read_works(
    sqlite_store: al.AuditStore,
) -> None:
    assert sqlite_store.to_arrow(limit=1).num_rows == 1  # the helper is up
    proc = _SqliteWorker._proc
    assert proc is not None
    proc.kill()
    proc.wait()
    assert len(sqlite_store.to_arrow(limit=10)) == 10
    assert _worker_pid() not in (None, proc.pid)


def test_a_helper_dying_before_it_answers_is_retried_once(sqlite_store: al.AuditStore) -> None:
    sqlite_store.to_arrow(limit=1)  # the helper is up
    old = _SqliteWorker._proc
    assert old is not None
    # a helper that takes the request and dies without an answer (as a crash would)
    _SqliteWorker._proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    old.kill()
    old.wait()
    for pipe in (old.stdin, old.stdout):
        assert pipe is not None
        pipe.close()
    table = sqlite_store.to_arrow(where="action:webhook.created", limit=5)
    assert table.num_rows == 5
    assert sqlite_store.query(backend="arrow").num_rows == 40


def test_a_helper_dying_mid_result_raises_and_the_next_read_works(tmp_path: Path) -> None:
    sqlite_store = _sqlite_store(tmp_path, 1200, 3000)
    batches = sqlite_store.batches(batch_size=100)
    first = next(batches)
    assert 0 < first.num_rows <= 100
    proc = _SqliteWorker._proc
    assert proc is not None
    proc.kill()  # ~4 MB of answer: most of it was still in the helper
    proc.wait()
    with pytest.raises(al.StoreError, match="broke off the result"):
        for _ in batches:
            pass
    assert sqlite_store.query(backend="arrow").num_rows == 1200
    assert sum(b.num_rows for b in sqlite_store.batches(batch_size=500)) == 1200
    sqlite_store.close()


def test_ranged_reads_give_the_ranges_in_order_read_two_at_once(store: al.AuditStore) -> None:
    """Disjoint ranges of one result come back in order, whole, from two readers."""
    from sqlalchemy import select

    from auditlens.store.readers import ArrowReader
    from auditlens.store.tables import entries

    store.append([make_entry(details={"i": i}) for i in range(50)])
    reader = ArrowReader(store.engine, store.to_arrow(limit=0).select(["seq"]).schema)
    stmt = select(entries.c.seq).order_by(entries.c.seq)
    ranges = [stmt.where(entries.c.seq >= a, entries.c.seq < a + 7) for a in range(1, 51, 7)]
    try:
        seqs = [s for b in reader.ranged_batches(ranges, 3) for s in b.column(0).to_pylist()]
        assert seqs == list(range(1, 51))
        if store.dialect == "sqlite":  # a second helper process read every other range
            assert _SqliteWorker.of_slot(1)._proc is not None
            assert _SqliteWorker.of_slot(1)._proc is not _SqliteWorker._proc
    finally:
        reader.close()


def test_the_sqlite_helper_binds_parameters_without_importing_pandas() -> None:
    """The helper builds its bound parameters from their bytes: ``pa.array`` would import
    pandas (about a CPU-second in every helper process) for nothing."""
    code = (
        "import sys, pyarrow as pa\n"
        "from auditlens.store._adbc_worker import _param\n"
        "got = [_param(pa, v).to_pylist() for v in ('é', 7, -(2**63), 1.5, None)]\n"
        "assert got == [['é'], [7], [-(2**63)], [1.5], [None]], got\n"
        "assert _param(pa, 'x').type == pa.string() and _param(pa, 7).type == pa.int64()\n"
        "assert 'pandas' not in sys.modules\n"
        "assert _param(pa, True).to_pylist() == [True]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
