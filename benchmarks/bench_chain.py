"""Tamper-evidence benchmarks on a 1,000,000-entry store (built once by `_fixture.py`).

Prints a table with ratios against a straightforward baseline measured in the same run
(`json.dumps(sort_keys=True)` + `hashlib.sha256` per row over `sqlite3` rows), and the load
average beside the numbers (the machine may be shared).

    python benchmarks/bench_chain.py
    python benchmarks/bench_chain.py --entries 200000 --pg postgresql+psycopg://u@host/db
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def baseline(db: str) -> tuple[float, int]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    t = time.perf_counter()
    n = 0
    prev = "0" * 64
    for row in conn.execute("SELECT * FROM audit_entries ORDER BY organization_id, seq"):
        d = dict(row)
        d["prev_hash"] = prev
        hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()
        n += 1
    return time.perf_counter() - t, n


def baseline_pg(url: str) -> tuple[float, int]:
    """The same loop over psycopg rows."""
    import psycopg
    from psycopg.rows import dict_row
    from sqlalchemy.engine import make_url

    from auditlens.store.engine import libpq_uri

    with psycopg.connect(libpq_uri(make_url(url)), row_factory=dict_row) as conn:
        t = time.perf_counter()
        n = 0
        prev = "0" * 64
        cur = conn.cursor(name="baseline")  # server-side: rows stream
        cur.execute("SELECT * FROM audit_entries ORDER BY organization_id, seq")
        for d in cur:
            d["prev_hash"] = prev
            hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()
            n += 1
        return time.perf_counter() - t, n


def _warm_imports() -> None:
    """Import what verify imports on first use (the baseline's imports are not timed either)."""
    import adbc_driver_postgresql.dbapi  # noqa: F401
    import polars  # noqa: F401
    import polars_hash  # noqa: F401

    import auditlens.retention  # noqa: F401


def main_pg(url: str, entries: int) -> None:
    """Full verify on PostgreSQL against the same loop over psycopg rows."""
    from _fixture import pg_build
    from rich.console import Console
    from rich.table import Table

    import auditlens as al

    pg_build(url, entries)
    _warm_imports()
    store = al.open_store(url)
    t = time.perf_counter()
    report = al.verify(store)
    verify_s = time.perf_counter() - t
    base_s, base_n = baseline_pg(url)
    rate = report.checked / verify_s
    load = "load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    table = Table(title=f"auditlens verify on PostgreSQL ({report.checked:,} entries, {load})")
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        table.add_column(col)
    table.add_row(
        "full verify (read, content hashes, links)",
        f"{rate:,.0f} entries/s ({verify_s:.1f} s), ok={report.ok}",
        f"json.dumps+sha256 loop {base_n / base_s:,.0f}/s ({base_s:.1f} s) → "
        f"{base_s / verify_s:.1f}×",
        "≥ 500,000/s and ≥ 10×",
        "yes" if rate >= 500_000 and base_s / verify_s >= 10 else "NO",
    )
    Console().print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--pg", help="a PostgreSQL store URL: measure verify there instead")
    args = ap.parse_args()
    if args.pg:
        main_pg(args.pg, args.entries)
        return
    from _fixture import build

    db = build(HERE / ".data" / f"demo-{args.entries}.db", args.entries)

    from rich.console import Console
    from rich.table import Table

    import auditlens as al
    from auditlens.chain.notes import SigningKey, checkpoint_body, sign_note
    from auditlens.merkle import MerkleTree, leaf_hash

    store = al.open_store(str(db))
    _warm_imports()
    store.count()
    from _children import helper_cpu

    t, cpu = time.perf_counter(), time.process_time() + helper_cpu()
    report = al.verify(store)
    verify_s, verify_cpu = time.perf_counter() - t, time.process_time() + helper_cpu() - cpu
    cpu = time.process_time()
    base_s, base_n = baseline(str(db))
    base_cpu = time.process_time() - cpu

    with store.engine.connect() as conn:
        from sqlalchemy import text

        hashes = [
            h for (h,) in conn.execute(text("SELECT entry_hash FROM audit_entries ORDER BY id"))
        ]
    key = SigningKey.generate("bench.local/log")
    t = time.perf_counter()
    tree = MerkleTree([leaf_hash(bytes.fromhex(h)) for h in hashes])
    note = sign_note(checkpoint_body("bench.local/log/all", len(tree), tree.root(), 0), key)
    root_s = time.perf_counter() - t
    proof_times = []
    for _ in range(200):
        i = random.randrange(len(tree))
        t = time.perf_counter()
        tree.inclusion_proof(i)
        proof_times.append(time.perf_counter() - t)
    proof_ms = statistics.median(proof_times) * 1000
    assert note

    rate = report.checked / verify_s
    load = "load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    table = Table(
        title=f"auditlens tamper evidence ({report.checked:,} entries, "
        f"{os.cpu_count()} cores, {load})"
    )
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        table.add_column(col)
    table.add_row(
        "full verify (read, content hashes, links)",
        f"{rate:,.0f} entries/s ({verify_s:.1f} s)",
        f"json.dumps+sha256 loop {base_n / base_s:,.0f}/s ({base_s:.1f} s) → "
        f"{base_s / verify_s:.1f}×",
        "≥ 500,000/s and ≥ 10×",
        "yes" if rate >= 500_000 and base_s / verify_s >= 10 else "NO",
    )
    table.add_row(
        "  CPU time (all processes: verify and its reader helpers; the loop)",
        f"{verify_cpu:.1f} s = {verify_cpu / report.checked * 1e6:.2f} µs/entry",
        f"{base_cpu:.1f} s = {base_cpu / base_n * 1e6:.2f} µs/entry → "
        f"{base_cpu / verify_cpu:.1f}× less CPU",
        "",
        "",
    )
    table.add_row(
        "Merkle root + signed checkpoint, 1M leaves",
        f"{root_s:.2f} s",
        "",
        "≤ 3 s",
        "yes" if root_s <= 3 else "NO",
    )
    table.add_row(
        "one inclusion proof at 1M leaves (p50)",
        f"{proof_ms:.3f} ms",
        "",
        "≤ 50 ms",
        "yes" if proof_ms <= 50 else "NO",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
