"""Write-side benchmarks: ingest rate (SQLite and PostgreSQL) and common-term text search.

Prints one table; every ratio is against a baseline measured in the same run:

* SQLite ingest of the demo JSONL (1,000,000 entries by default) with the text-search
  index left to the first search, against the previous way (the index filled inside
  each batch's transaction, emulated by catching up after every batch), then what the
  first search pays to catch the index up, then common-term searches p50/p95.
* PostgreSQL: 1 writer against 4 writer processes on 4 organizations (per-organization
  append locks), and the same 4 writers with the store-wide lock of before (emulated).

``python benchmarks/bench_ingest.py --entries 200000 --pg-entries 50000`` for a quick look;
``--pg-url`` names the server (a database ``auditlens_bench_ingest`` is created there).
The machine is shared: the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path
from typing import Any

from _children import answer_child, rss_mb, run_child

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_DB = "auditlens_bench_ingest"
COMMON_TERMS = ["rate_limit", "Production Webhook", "webhook", "invalid_password", "partner3"]


def _jsonl(entries: int) -> Path:
    from bench_store import _jsonl as make

    return make(entries)


def _fresh_sqlite(db: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(db + suffix).unlink(missing_ok=True)


# -- children ----------------------------------------------------------------------------
def child_sqlite_ingest(db: str, src: str, mode: str) -> dict[str, Any]:
    """``mode`` "deferred": as shipped; "in_batch": the search index filled per batch."""
    import auditlens as al
    from auditlens.ingest import ingest
    from auditlens.store.store import AuditStore

    _fresh_sqlite(db)
    store = al.open_store(db)
    if mode == "in_batch":
        plain = AuditStore.append_rows

        def append_and_index(self: AuditStore, rows: list[dict[str, Any]]) -> Any:
            out = plain(self, rows)
            self._search_catch_up()
            return out

        AuditStore.append_rows = append_and_index  # type: ignore[method-assign]
    t = time.perf_counter()
    report = ingest(store, src, batch_size=20_000)
    dt = time.perf_counter() - t
    t = time.perf_counter()
    store._search_catch_up()
    catch_up = time.perf_counter() - t
    store.close()
    return {"seconds": dt, "rows": report.appended, "catch_up": catch_up, "rss_mb": rss_mb()}


def child_search(db: str) -> dict[str, Any]:
    """Newest 100 matches of common terms: as shipped (the newest-entries window first)
    and, as the baseline, the plain query of before (window off), same store, same run."""
    import auditlens as al
    from auditlens.store import store as store_module

    store = al.open_store(db)
    store.count(text="warm-up")
    out: dict[str, Any] = {}
    runs: dict[str, list[float]] = {"window": [], "plain": []}
    shipped = store_module._WINDOW_LIMIT
    for term in COMMON_TERMS:
        for mode, repeat in (("window", 7), ("plain", 3)):
            store_module._WINDOW_LIMIT = shipped if mode == "window" else 0
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                store.query(text=term, limit=100, backend="polars")
                times.append(time.perf_counter() - t)
            out[f"{mode}:{term}"] = statistics.median(times) * 1000
            runs[mode] += times
        store_module._WINDOW_LIMIT = shipped
        out[f"matches:{term}"] = store.count(text=term)
    for mode, times in runs.items():
        times.sort()
        out[f"{mode}_p50"] = statistics.median(times) * 1000
        out[f"{mode}_p95"] = times[int(0.95 * (len(times) - 1))] * 1000
    return out


def _pg_writer(
    url: str, src: str, org: str, lines: tuple[int, int], store_wide: bool, ready: Any
) -> None:
    import orjson

    import auditlens as al
    from auditlens.schema import normalize_entry

    if store_wide:  # the lock of before: every append waits for every other one
        from sqlalchemy import text

        from auditlens.store.engine import APPEND_LOCK_KEY
        from auditlens.store.store import AuditStore

        def one_lock(conn: Any, orgs: Any) -> None:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK_KEY})

        AuditStore._append_locks = staticmethod(one_lock)  # type: ignore[method-assign]
    store = al.open_store(url)
    lo, hi = lines
    with open(src, "rb") as fh:
        raw = [line for i, line in enumerate(fh) if lo <= i < hi]
    rows = []
    for line in raw:
        entry = orjson.loads(line)
        entry["organization_id"] = org
        rows.append(normalize_entry(entry))
    ready.wait()  # every writer has parsed its share: the clock starts
    for start in range(0, len(rows), 5_000):
        store.append_rows(rows[start : start + 5_000])
    store.close()


def child_pg(url: str, src: str, per_writer: str, writers: str, store_wide: str) -> dict[str, Any]:
    """``writers`` processes, each appending ``per_writer`` entries to its own organization
    (parsed and validated before the clock starts: the database side is measured)."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    import auditlens as al

    admin_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DB}")
        admin.execute(f"CREATE DATABASE {PG_DB}")
    db_url = make_url(url).set(database=PG_DB).render_as_string(hide_password=False)
    al.open_store(db_url).close()
    n, w = int(per_writer), int(writers)
    ctx = mp.get_context("fork")
    ready = ctx.Barrier(w + 1)
    procs = [
        ctx.Process(
            target=_pg_writer,
            args=(db_url, src, str(uuid.uuid4()), (i * n, (i + 1) * n), store_wide == "1", ready),
        )
        for i in range(w)
    ]
    for p in procs:
        p.start()
    ready.wait()  # the clock runs from the first append to the last commit
    t = time.perf_counter()
    for p in procs:
        p.join()
    dt = time.perf_counter() - t
    store = al.open_store(db_url)
    rows = store.count()
    store.close()
    return {"seconds": dt, "rows": rows}


CHILDREN = {
    "sqlite_ingest": child_sqlite_ingest,
    "search": child_search,
    "pg": child_pg,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--pg-entries", type=int, default=50_000, help="entries per PG writer")
    ap.add_argument("--pg-url", default=os.environ.get("AUDITLENS_BENCH_PG_URL", PG_URL))
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument(
        "--search-only", action="store_true", help="SQLite: reuse the store, time searches"
    )
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        answer_child(CHILDREN, args.child)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    rows: list[tuple[str, str, str, str, str]] = []

    def load() -> str:
        return "load " + " / ".join(f"{x:.1f}" for x in os.getloadavg())

    if not args.skip_sqlite:
        src = _jsonl(args.entries)
        db = str(DATA / f"ingest-{args.entries}.db")
        if args.search_only and Path(db).exists():
            new = old = None
        else:
            new = run_child(__file__, "sqlite_ingest", db, str(src), "deferred")
            l_new = load()
            old = run_child(__file__, "sqlite_ingest", db + ".old", str(src), "in_batch")
            l_old = load()
            _fresh_sqlite(db + ".old")
    if not args.skip_sqlite and new is not None and old is not None:
        rate_new = new["rows"] / new["seconds"]
        rate_old = old["rows"] / old["seconds"]
        rows.append(
            (
                f"SQLite ingest {args.entries:,} (JSONL → store, chained; search index deferred)",
                f"{rate_new:,.0f}/s ({new['seconds']:.1f} s; {l_new})",
                f"index in each batch: {rate_old:,.0f}/s ({old['seconds']:.1f} s; {l_old})"
                f" → {rate_new / rate_old:.2f}×",
                "≥ 50,000/s",
                "yes" if rate_new >= 50_000 else "NO",
            )
        )
        rows.append(
            (
                "— first text search after it: index catch-up",
                f"{new['catch_up']:.1f} s",
                f"ingest + catch-up: {new['rows'] / (new['seconds'] + new['catch_up']):,.0f}/s",
                "",
                "",
            )
        )
    if not args.skip_sqlite:
        lat = run_child(__file__, "search", db)
        assert lat is not None
        rows.append(
            (
                f"common-term text search, newest 100, {len(COMMON_TERMS)} terms",
                f"p50 {lat['window_p50']:.0f} ms, p95 {lat['window_p95']:.0f} ms ({load()})",
                f"plain query of before: p50 {lat['plain_p50']:.0f} ms, p95 "
                f"{lat['plain_p95']:.0f} ms → {lat['plain_p50'] / lat['window_p50']:.1f}×",
                "p50 ≤ 100 ms",
                "yes" if lat["window_p50"] <= 100 else "NO",
            )
        )
        for term in COMMON_TERMS:
            rows.append(
                (
                    f"  {term!r} ({int(lat['matches:' + term]):,} matches)",
                    f"{lat['window:' + term]:.0f} ms",
                    f"{lat['plain:' + term]:.0f} ms",
                    "",
                    "",
                )
            )

    if not args.skip_pg:
        src = _jsonl(max(200_000, 4 * args.pg_entries))
        n = str(args.pg_entries)
        one = run_child(__file__, "pg", args.pg_url, str(src), n, "1", "0")
        four = run_child(__file__, "pg", args.pg_url, str(src), n, "4", "0")
        l_four = load()
        four_wide = run_child(__file__, "pg", args.pg_url, str(src), n, "4", "1")
        assert one is not None and four is not None and four_wide is not None
        r1 = one["rows"] / one["seconds"]
        r4 = four["rows"] / four["seconds"]
        r4w = four_wide["rows"] / four_wide["seconds"]
        rows.append(
            (
                f"PostgreSQL: 1 writer, {args.pg_entries:,} entries (batches of 5,000)",
                f"{r1:,.0f}/s ({one['seconds']:.1f} s)",
                "",
                "",
                "",
            )
        )
        rows.append(
            (
                f"PostgreSQL: 4 writers on 4 organizations, {4 * args.pg_entries:,} entries",
                f"{r4:,.0f}/s ({four['seconds']:.1f} s; {l_four})",
                f"1 writer → {r4 / r1:.2f}×; store-wide lock: {r4w:,.0f}/s → {r4 / r4w:.2f}×",
                "≥ 50,000/s",
                "yes" if r4 >= 50_000 else "NO",
            )
        )

    title = f"auditlens write-side benchmarks ({os.cpu_count()} cores, {load()})"
    table = Table(title=title)
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
