"""Export benchmarks (default 1,000,000 entries): CSV and Parquet exports, rows/s and peak
memory, against `pandas.read_sql(...).to_csv(...)` in the same run. Each measurement runs in
its own child process (its own ru_maxrss); the load average is printed with the numbers.

    python benchmarks/bench_export.py                                   # 1 M, with baseline
    python benchmarks/bench_export.py --entries 10000000 --no-baseline  # read_sql: out of memory

The store is built once by `_fixture.py` (copies of a demo store, valid chains) and cached
under benchmarks/.data.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _children import answer_child, helper_cpu, rss_mb, run_child

HERE = Path(__file__).resolve().parent


def child_export(db: str, fmt: str) -> dict[str, float]:
    import auditlens as al
    from auditlens.export import export

    store = al.open_store(db)
    with tempfile.TemporaryDirectory(dir=HERE / ".data") as tmp:
        t, cpu = time.perf_counter(), time.process_time() + helper_cpu()
        res = export(store, Path(tmp) / f"x.{fmt}", format=fmt, record=False)
        dt, cpu = time.perf_counter() - t, time.process_time() + helper_cpu() - cpu
    return {"seconds": dt, "cpu": cpu, "rows": res.rows, "bytes": res.bytes, "rss_mb": rss_mb()}


def child_baseline(db: str) -> dict[str, float]:
    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{db}")
    with tempfile.TemporaryDirectory(dir=HERE / ".data") as tmp:
        t, cpu = time.perf_counter(), time.process_time()
        df = pd.read_sql("SELECT * FROM audit_entries", engine)
        df.to_csv(Path(tmp) / "x.csv", index=False)
        dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"seconds": dt, "cpu": cpu, "rows": len(df), "rss_mb": rss_mb()}


def child_build(db_path: str, count: str) -> dict[str, float]:
    from _fixture import build

    build(Path(db_path), int(count))
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--child", nargs="+")
    ap.add_argument("--no-baseline", action="store_true", help="skip pandas.read_sql")
    args = ap.parse_args()
    if args.child:
        answer_child(
            {"export": child_export, "baseline": child_baseline, "build": child_build}, args.child
        )
        return
    from rich.console import Console
    from rich.table import Table

    db = HERE / ".data" / f"demo-{args.entries}.db"
    if not db.exists():  # in a child: a large parent inflates children's ru_maxrss
        run_child(__file__, "build", str(db), str(args.entries))
    csv_r = run_child(__file__, "export", str(db), "csv")
    pq_r = run_child(__file__, "export", str(db), "parquet")
    base = None if args.no_baseline else run_child(__file__, "baseline", str(db))
    load = "load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    cores = os.cpu_count()
    t = Table(title=f"auditlens exports ({args.entries:,} entries, SQLite, {cores} cores, {load})")
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        t.add_column(col)
    base_txt = (
        f"read_sql+to_csv {base['rows'] / base['seconds']:,.0f} rows/s, {base['rss_mb']:,.0f} MB"
        if base
        else "read_sql+to_csv not run (or out of memory)"
    )
    for label, r, target in (("CSV", csv_r, 500_000), ("Parquet", pq_r, 2_000_000)):
        if r is None:
            t.add_row(f"export {label}", "failed", "", "", "NO")
            continue
        rate = r["rows"] / r["seconds"]
        ratio = (
            f" → {rate / (base['rows'] / base['seconds']):.1f}× (CPU {base['cpu']:.1f} s → "
            f"{base['cpu'] / r['cpu']:.1f}× less)"
            if base
            else ""
        )
        t.add_row(
            f"export {label} (all columns)",
            f"{rate:,.0f} rows/s ({r['seconds']:.1f} s, CPU {r['cpu']:.1f} s with readers), "
            f"peak {r['rss_mb']:,.0f} MB",
            base_txt + ratio,
            f"≥ {target:,} rows/s, < 1 GB",
            "yes" if rate >= target and r["rss_mb"] < 1024 else "NO",
        )
    Console().print(t)


if __name__ == "__main__":
    main()
