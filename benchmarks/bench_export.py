"""Export benchmarks on the demo store made by bench_store.py (default 1,000,000 entries):
CSV and Parquet exports, rows/s and peak memory, against `pandas.read_sql(...).to_csv(...)`
in the same run. Each measurement runs in its own child process (its own ru_maxrss).

    python benchmarks/bench_store.py            # once, builds benchmarks/.data/demo-1000000.db
    python benchmarks/bench_export.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _children import answer_child, rss_mb, run_child

HERE = Path(__file__).resolve().parent


def child_export(db: str, fmt: str) -> dict[str, float]:
    import auditlens as al
    from auditlens.export import export

    store = al.open_store(db)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = export(store, Path(tmp) / f"x.{fmt}", format=fmt, record=False)
        dt = time.perf_counter() - t
    return {"seconds": dt, "rows": res.rows, "bytes": res.bytes, "rss_mb": rss_mb()}


def child_baseline(db: str) -> dict[str, float]:
    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{db}")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        df = pd.read_sql("SELECT * FROM audit_entries", engine)
        df.to_csv(Path(tmp) / "x.csv", index=False)
        dt = time.perf_counter() - t
    return {"seconds": dt, "rows": len(df), "rss_mb": rss_mb()}


def child_build(db_path: str, count: str) -> dict[str, float]:
    build_large(Path(db_path), int(count))
    return {}


def build_large(db: Path, entries: int) -> None:
    """A store of many demo tenants, generated and ingested a million entries at a time
    (the generator holds its entries in memory)."""
    from datetime import date

    import orjson

    import auditlens as al
    from auditlens.demo import generate
    from auditlens.ingest import ingest

    tmp = db.with_suffix(".tmp")
    done, seed = 0, 100
    with al.open_store(f"sqlite:///{tmp}") as store:
        while done < entries:
            data = generate(orgs=50, days=300, seed=seed, end=date(2025, 12, 31))
            chunk = data.entries[: entries - done]
            src = db.with_suffix(f".{seed}.jsonl")
            with src.open("wb") as fh:
                for e in chunk:
                    fh.write(orjson.dumps(e) + b"\n")
            del data
            ingest(store, src, batch_size=50_000)
            src.unlink()
            done += len(chunk)
            seed += 1
            print(f"built {done:,} / {entries:,}", file=sys.stderr, flush=True)
    tmp.rename(db)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        answer_child(
            {"export": child_export, "baseline": child_baseline, "build": child_build}, args.child
        )
        return
    from rich.console import Console
    from rich.table import Table

    db = HERE / ".data" / f"demo-{args.entries}.db"
    if not db.exists() and args.entries > 1_000_000:
        # in a child: the generator is large, and a large parent inflates children's ru_maxrss
        run_child(__file__, "build", str(db), str(args.entries))
    if not db.exists():
        raise SystemExit(f"{db} is missing: run `python benchmarks/bench_store.py` first")
    csv_r = run_child(__file__, "export", str(db), "csv")
    pq_r = run_child(__file__, "export", str(db), "parquet")
    base = run_child(__file__, "baseline", str(db))
    t = Table(title=f"auditlens exports ({args.entries:,} entries, SQLite, {os.cpu_count()} cores)")
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        t.add_column(col)
    base_txt = (
        f"read_sql+to_csv {base['rows'] / base['seconds']:,.0f} rows/s, {base['rss_mb']:,.0f} MB"
        if base
        else "read_sql+to_csv ran out of memory"
    )
    for label, r, target in (("CSV", csv_r, 500_000), ("Parquet", pq_r, 2_000_000)):
        if r is None:
            t.add_row(f"export {label}", "failed", "", "", "NO")
            continue
        rate = r["rows"] / r["seconds"]
        ratio = f" → {rate / (base['rows'] / base['seconds']):.1f}×" if base else ""
        t.add_row(
            f"export {label} (all columns)",
            f"{rate:,.0f} rows/s, peak {r['rss_mb']:,.0f} MB",
            base_txt + ratio,
            f"≥ {target:,} rows/s, < 1 GB",
            "yes" if rate >= target and r["rss_mb"] < 1024 else "NO",
        )
    Console().print(t)


if __name__ == "__main__":
    main()
