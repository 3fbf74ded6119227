"""Lake benchmarks: ``sync_lake`` rate, and a full read of the lake with polars against
``pandas.read_sql`` from the store (the baseline, measured in the same run).

Run with ``python benchmarks/bench_lake.py`` (1,000,000 entries; ``--entries 200000`` for a
quick look). The demo store is the one ``bench_store.py`` builds (cached under
``benchmarks/.data``; ~66 organizations over 300 days: ~50 entries per organization-day);
``--db PATH`` runs on another store, ``--orgs 6`` on a denser one (the demo's entries
folded into 6 organizations: ~550 entries per organization-day, where ``auto`` picks day
partitions). Each measurement runs in a fresh child process (its own peak memory).
``uptime`` is printed before and after, and each measurement's CPU seconds (this process
and its SQLite reader helpers) beside its wall time: on a shared machine the wall time
follows the load, the CPU time much less. Lakes measured: ``--partition auto date`` by
default (what a new lake gets, and day partitions forced).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from _children import answer_child, helper_cpu, rss_mb, run_child
from bench_store import DATA, _jsonl, child_ingest


def _cpu() -> float:
    return time.process_time() + helper_cpu()


def child_baseline_read_sql(db: str) -> dict[str, float]:
    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(db if "://" in db else f"sqlite:///{db}")
    t, cpu = time.perf_counter(), _cpu()
    df = pd.read_sql("SELECT * FROM audit_entries", engine)
    return {
        "seconds": time.perf_counter() - t,
        "cpu": _cpu() - cpu,
        "rows": len(df),
        "rss_mb": rss_mb(),
    }


def child_sync(db: str, lake: str, partition: str) -> dict[str, Any]:
    import auditlens as al

    shutil.rmtree(lake, ignore_errors=True)
    store = al.open_store(db)
    sync_lake = al.sync_lake
    t, cpu = time.perf_counter(), _cpu()
    result = sync_lake(store, lake, partition=partition)
    dt, cpu = time.perf_counter() - t, _cpu() - cpu
    chosen = result.partition
    files = len(list(Path(lake).glob("organization_id=*/*/*.parquet")))
    return {
        "seconds": dt,
        "cpu": cpu,
        "rows": result.rows,
        "files": files,
        "orgs": len(result.organizations),
        "mb": result.bytes_written / 1e6,
        "rss_mb": rss_mb(),
        "chosen": chosen,
    }


def child_resync(db: str, lake: str) -> dict[str, float]:
    """A sync with nothing new (what a cron job costs between appends)."""
    import auditlens as al

    store = al.open_store(db)
    sync_lake = al.sync_lake
    t = time.perf_counter()
    result = sync_lake(store, lake)
    return {"seconds": time.perf_counter() - t, "rows": result.rows}


def child_read_lake(lake: str) -> dict[str, float]:
    """Every row as polars: the plain scan (what ``SELECT *`` is) and ``query()`` (sorted
    newest first, as ``store.query``)."""
    import auditlens as al

    open_lake = al.open_lake  # imports are not the read (the baseline's aren't)
    t, cpu = time.perf_counter(), _cpu()
    rows = open_lake(lake).scan().collect().height
    scan, cpu = time.perf_counter() - t, _cpu() - cpu
    t = time.perf_counter()
    df = open_lake(lake).query()
    query = time.perf_counter() - t
    assert df.height == rows
    return {"seconds": scan, "cpu": cpu, "query_seconds": query, "rows": rows, "rss_mb": rss_mb()}


def child_read_lake_filtered(lake: str) -> dict[str, float]:
    import auditlens as al

    lk = al.open_lake(lake)
    lk.query(limit=1)  # polars' first-use costs are not the filter
    org = lk.scan().select("organization_id").head(1).collect().item()
    t = time.perf_counter()
    df = lk.query(organization_id=org, actions="auth.*", result="failure")
    return {"seconds": time.perf_counter() - t, "rows": df.height}


def child_verify(lake: str) -> dict[str, float]:
    import auditlens as al

    verify_lake = al.verify_lake
    t = time.perf_counter()
    report = verify_lake(lake)
    return {"seconds": time.perf_counter() - t, "rows": report.checked, "ok": report.ok}


def _folded(src: Path, orgs: int) -> Path:
    """The demo's entries with their organizations folded into ``orgs`` (the i-th distinct
    organization becomes the (i mod orgs)-th): the same million entries, denser per
    organization-day (~550 each for 6). Seq and hashes are the store's, at ingest."""
    import orjson

    out = src.with_name(f"{src.stem}-dense{orgs}.jsonl")
    if out.exists():
        return out
    ids: dict[str, str] = {}
    tmp = out.with_suffix(".tmp")
    with src.open("rb") as fh, tmp.open("wb") as dst:
        for line in fh:
            entry = orjson.loads(line)
            org = entry["organization_id"]
            if org not in ids:
                ids[org] = list(ids.values())[len(ids) % orgs] if len(ids) >= orgs else org
            entry["organization_id"] = ids[org]
            dst.write(orjson.dumps(entry) + b"\n")
    tmp.rename(out)
    return out


CHILDREN = {
    "ingest": child_ingest,
    "sync": child_sync,
    "resync": child_resync,
    "read_lake": child_read_lake,
    "read_lake_filtered": child_read_lake_filtered,
    "verify": child_verify,
    "baseline_read_sql": child_baseline_read_sql,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--child", nargs="+")
    ap.add_argument(
        "--partition",
        nargs="+",
        default=["auto", "date"],
        choices=["auto", "date", "month"],
        help="lakes to measure: auto (the default a new lake gets), date, month",
    )
    ap.add_argument("--db", help="another SQLite store file (default: the demo store)")
    ap.add_argument(
        "--orgs",
        type=int,
        default=0,
        help="a denser store: the demo's entries folded into this many organizations",
    )
    args = ap.parse_args()
    if args.child:
        answer_child(CHILDREN, args.child)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    console.print(f"before: {uptime.strip()}")
    dense = f"-dense{args.orgs}" if args.orgs else ""
    db = args.db or str(DATA / f"demo{dense}-{args.entries}.db")
    tag = Path(db).stem
    if not Path(db).exists():
        src = _jsonl(args.entries)
        if args.orgs:
            src = _folded(src, args.orgs)
        ing = run_child(__file__, "ingest", db, str(src))
        assert ing is not None, "building the store failed"
    base = run_child(__file__, "baseline_read_sql", db)
    assert base is not None
    runs = {}
    for partition in args.partition:
        lake = str(DATA / f"lake-{tag}-{partition}")
        runs[partition] = (
            run_child(__file__, "sync", db, lake, partition),
            run_child(__file__, "resync", db, lake),
            run_child(__file__, "read_lake", lake),
            run_child(__file__, "read_lake_filtered", lake),
            run_child(__file__, "verify", lake),
        )
    load = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    console.print(f"after: {uptime.strip()}")

    t = Table(
        title=f"auditlens lake ({tag}, SQLite store, {os.cpu_count()} cores, "
        f"load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f})"
    )
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        t.add_column(col)
    t.add_row(
        "baseline: pandas.read_sql('SELECT * FROM audit_entries')",
        f"{base['seconds']:.2f} s (CPU {base['cpu']:.1f} s), peak {base['rss_mb']:,.0f} MB",
        "",
        "",
        "",
    )
    for asked, (sync, resync, read, filtered, verify) in runs.items():
        assert sync and resync and read and filtered and verify
        partition = asked if asked != "auto" else f"auto → {sync['chosen']}"
        rate = sync["rows"] / sync["seconds"]
        t.add_row(
            f"({partition}) lake sync (first, full)",
            f"{rate:,.0f} entries/s ({sync['seconds']:.1f} s; {int(sync['files']):,} files in "
            f"{int(sync['orgs'])} orgs, {sync['mb']:.0f} MB, peak {sync['rss_mb']:,.0f} MB)",
            f"CPU {sync['cpu']:.1f} s: {sync['rows'] / sync['cpu']:,.0f} entries per CPU-second",
            "≥ 200,000/s",
            "yes" if rate >= 200_000 else "NO",
        )
        t.add_row(f"({partition}) lake sync, nothing new", f"{resync['seconds']:.2f} s", "", "", "")
        ratio = base["seconds"] / read["seconds"]
        t.add_row(
            f"({partition}) full read: open_lake().scan() → polars",
            f"{read['seconds']:.2f} s (CPU {read['cpu']:.1f} s; {int(read['rows']):,} rows, "
            f"peak {read['rss_mb']:,.0f} MB)",
            f"{ratio:.1f}× faster than read_sql (CPU: {base['cpu'] / read['cpu']:.1f}×)",
            "≥ 10× faster",
            "yes" if ratio >= 10 else "NO",
        )
        t.add_row(
            f"({partition}) full read sorted: open_lake().query()",
            f"{read['query_seconds']:.2f} s",
            f"{base['seconds'] / read['query_seconds']:.1f}× faster than read_sql",
            "",
            "",
        )
        t.add_row(
            f"({partition}) filtered read (one org, auth.*, failures)",
            f"{filtered['seconds'] * 1000:.0f} ms ({int(filtered['rows']):,} rows)",
            "",
            "",
            "",
        )
        t.add_row(
            f"({partition}) verify --lake (files, links, hashes)",
            f"{verify['seconds']:.1f} s ({verify['rows'] / verify['seconds']:,.0f} entries/s)",
            "",
            "",
            "yes" if verify["ok"] else "NOT OK",
        )
    console.print(t)


if __name__ == "__main__":
    main()
