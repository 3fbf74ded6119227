"""Store benchmarks on a 1,000,000-entry demo store (SQLite), baselines measured in the same run.

Run with ``make bench`` (or ``python benchmarks/bench_store.py --entries 200000`` for a quick look).
Each measurement runs in a fresh child process so that its peak memory (ru_maxrss) is its own.
Prints a table of figures and ratios against the baselines; the targets are in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

from _children import answer_child, rss_mb, run_child

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"


def _jsonl(entries: int) -> Path:
    path = DATA / f"demo-{entries}.jsonl"
    if path.exists():
        return path
    import orjson

    from auditlens.demo import generate

    DATA.mkdir(exist_ok=True)
    orgs = max(3, entries // 15_000)
    days = 300
    data = generate(orgs=orgs, days=days, seed=1, end=date(2025, 12, 31))
    while len(data.entries) < entries:
        orgs = int(orgs * entries / len(data.entries)) + 1
        data = generate(orgs=orgs, days=days, seed=1, end=date(2025, 12, 31))
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for e in data.entries[:entries]:
            fh.write(orjson.dumps(e) + b"\n")
    tmp.rename(path)
    return path


# -- child measurements ---------------------------------------------------------------
def child_ingest(db: str, src: str) -> dict[str, float]:
    import auditlens as al
    from auditlens.ingest import ingest

    for suffix in ("", "-wal", "-shm"):
        Path(db + suffix).unlink(missing_ok=True)
    store = al.open_store(db)
    t = time.perf_counter()
    report = ingest(store, src, batch_size=20_000)
    dt = time.perf_counter() - t
    return {"seconds": dt, "rows": report.appended, "rss_mb": rss_mb()}


def child_polars(db: str) -> dict[str, float]:
    import adbc_driver_sqlite.dbapi  # noqa: F401 - imports are not the query (the baseline's aren't)
    import polars  # noqa: F401

    import auditlens as al

    store = al.open_store(db)
    t = time.perf_counter()
    df = store.query(backend="polars")
    return {"seconds": time.perf_counter() - t, "rows": df.height, "rss_mb": rss_mb()}


def child_pandas(db: str) -> dict[str, float]:
    import adbc_driver_sqlite.dbapi  # noqa: F401 - imports are not the query (the baseline's aren't)
    import pandas  # noqa: F401

    import auditlens as al

    store = al.open_store(db)
    t = time.perf_counter()
    df = store.query(backend="pandas")
    return {"seconds": time.perf_counter() - t, "rows": len(df), "rss_mb": rss_mb()}


def child_baseline_read_sql(db: str) -> dict[str, float]:
    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(db if "://" in db else f"sqlite:///{db}")
    t = time.perf_counter()
    df = pd.read_sql("SELECT * FROM audit_entries", engine)
    return {"seconds": time.perf_counter() - t, "rows": len(df), "rss_mb": rss_mb()}


TEXT_TERMS = ["exfil", "invalid_password", "partner3", "rate_limit", "Production Webhook"]


def child_latency(db: str) -> dict[str, float]:
    import auditlens as al

    store = al.open_store(db)
    sample = store.query(backend="polars", limit=2000, order="desc")
    actors = [a for a in sample["actor_email"].unique().to_list() if a][:40]
    end = sample["timestamp"].max()
    store.query(actor=actors[0], backend="polars")  # warm the cache and the ADBC connection
    filtered = []
    for actor in actors:
        t = time.perf_counter()
        store.query(
            actor=actor,
            actions="webhook.updated",
            start=end - timedelta(days=30),
            end=end,
            backend="polars",
        )
        filtered.append(time.perf_counter() - t)
    out: dict[str, float] = {"filtered_p50_ms": statistics.median(filtered) * 1000}
    every = []
    for term in TEXT_TERMS:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            store.query(text=term, limit=100, backend="polars")
            times.append(time.perf_counter() - t)
        out[f"text:{term}"] = statistics.median(times) * 1000
        out[f"matches:{term}"] = store.count(text=term)
        every += times
    out["text_p50_ms"] = statistics.median(every) * 1000
    return out


def child_resend_changed(db: str) -> dict[str, float]:
    """Re-sending 1,000 stored audit_ids with changed content: every line is rejected."""
    import io
    import uuid

    import orjson

    import auditlens as al
    from auditlens.ingest import ingest

    path = db + ".resend.db"
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    store = al.open_store(path)
    org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    sent = [
        {
            "audit_id": str(uuid.uuid4()),
            "actor": {"type": "system"},
            "action": "auth.login",
            "organization_id": org,
            "result": "success",
        }
        for _ in range(1000)
    ]
    store.append(sent)
    changed = b"".join(orjson.dumps({**e, "result": "failure"}) + b"\n" for e in sent)
    t = time.perf_counter()
    report = ingest(store, io.BytesIO(changed))
    dt = time.perf_counter() - t
    store.close()
    return {"seconds": dt, "rejected": len(report.rejected)}


CHILDREN = {
    "ingest": child_ingest,
    "resend_changed": child_resend_changed,
    "polars": child_polars,
    "pandas": child_pandas,
    "baseline_read_sql": child_baseline_read_sql,
    "latency": child_latency,
}


def load_only(entries: int, pg: str | None) -> None:
    """Full loads against `pandas.read_sql` in the same run, on SQLite or PostgreSQL."""
    from _fixture import build, pg_build
    from rich.console import Console
    from rich.table import Table

    if pg:
        pg_build(pg, entries)
        db = pg
    else:
        db = str(build(DATA / f"demo-{entries}.db", entries))
    pol = run_child(__file__, "polars", db)
    pan = run_child(__file__, "pandas", db)
    base = run_child(__file__, "baseline_read_sql", db)
    assert pol and pan and base
    load = "load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    backend = "PostgreSQL" if pg else "SQLite"
    t = Table(title=f"auditlens full loads ({entries:,} entries, {backend}, {load})")
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        t.add_column(col)
    sp_pl = base["seconds"] / pol["seconds"]
    mem_pl = pol["rss_mb"] / base["rss_mb"]
    t.add_row(
        "query() all rows → polars",
        f"{pol['seconds']:.2f} s, peak {pol['rss_mb']:,.0f} MB",
        f"read_sql {base['seconds']:.2f} s, {base['rss_mb']:,.0f} MB → {sp_pl:.1f}× faster, "
        f"{mem_pl:.2f}× memory",
        "≥ 4× faster, ≤ 0.5× memory",
        "yes" if sp_pl >= 4 and mem_pl <= 0.5 else "NO",
    )
    sp_pd = base["seconds"] / pan["seconds"]
    t.add_row(
        "query() all rows → pandas",
        f"{pan['seconds']:.2f} s, peak {pan['rss_mb']:,.0f} MB",
        f"{sp_pd:.1f}× faster than read_sql",
        "≥ 2× faster",
        "yes" if sp_pd >= 2 else "NO",
    )
    Console().print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--child", nargs="+")
    ap.add_argument(
        "--reuse", action="store_true", help="keep an existing store (skips the ingest run)"
    )
    ap.add_argument(
        "--load-only",
        action="store_true",
        help="only the full loads (polars, pandas, read_sql) on a store built by _fixture.py",
    )
    ap.add_argument("--pg", help="with --load-only: a PostgreSQL store URL (filled if empty)")
    args = ap.parse_args()
    if args.child:
        answer_child(CHILDREN, args.child)
        return
    if args.load_only:
        load_only(args.entries, args.pg)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    src = _jsonl(args.entries)
    db = str(DATA / f"demo-{args.entries}.db")
    console.print(f"data: {src.name} ({args.entries:,} entries), store: {db}")
    if args.reuse and Path(db).exists():
        ing = {"seconds": float("nan"), "rows": 0, "rss_mb": 0.0}
    else:
        ing = run_child(__file__, "ingest", db, str(src))
    pol = run_child(__file__, "polars", db)
    pan = run_child(__file__, "pandas", db)
    base = run_child(__file__, "baseline_read_sql", db)
    lat = run_child(__file__, "latency", db)
    resend = run_child(__file__, "resend_changed", db)

    title = f"auditlens store benchmarks ({args.entries:,} entries, SQLite, {os.cpu_count()} cores)"
    t = Table(title=title)
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        t.add_column(col)
    rate = ing["rows"] / ing["seconds"]
    t.add_row(
        "ingest with chaining (JSONL → store)",
        f"{rate:,.0f} entries/s ({ing['seconds']:.1f} s)",
        "",
        "≥ 50,000/s",
        "yes" if rate >= 50_000 else "NO",
    )
    sp_pl = base["seconds"] / pol["seconds"]
    mem_pl = pol["rss_mb"] / base["rss_mb"]
    t.add_row(
        "query() all rows → polars",
        f"{pol['seconds']:.2f} s, peak {pol['rss_mb']:,.0f} MB",
        f"read_sql {base['seconds']:.2f} s, {base['rss_mb']:,.0f} MB → {sp_pl:.1f}× faster, "
        f"{mem_pl:.2f}× memory",
        "≥ 4× faster, ≤ 0.5× memory",
        "yes" if sp_pl >= 4 and mem_pl <= 0.5 else "NO",
    )
    sp_pd = base["seconds"] / pan["seconds"]
    t.add_row(
        "query() all rows → pandas",
        f"{pan['seconds']:.2f} s, peak {pan['rss_mb']:,.0f} MB",
        f"{sp_pd:.1f}× faster than read_sql",
        "≥ 2× faster",
        "yes" if sp_pd >= 2 else "NO",
    )
    t.add_row(
        "filtered query (actor + action + 30 d), p50",
        f"{lat['filtered_p50_ms']:.1f} ms",
        "",
        "≤ 20 ms",
        "yes" if lat["filtered_p50_ms"] <= 20 else "NO",
    )
    t.add_row(
        "text search, first 100 matches, p50",
        f"{lat['text_p50_ms']:.1f} ms",
        "",
        "≤ 100 ms",
        "yes" if lat["text_p50_ms"] <= 100 else "NO",
    )
    t.add_row(
        "ingest 1,000 re-sent audit_ids with changed content (all rejected)",
        f"{resend['seconds'] * 1000:.0f} ms ({int(resend['rejected']):,} rejected)",
        "was ~80 ms per entry",
        "< 1 s",
        "yes" if resend["seconds"] < 1 and resend["rejected"] == 1000 else "NO",
    )
    for term in TEXT_TERMS:
        t.add_row(
            f"  text {term!r} ({int(lat['matches:' + term]):,} matches)",
            f"{lat['text:' + term]:.1f} ms",
            "",
            "",
            "",
        )
    console.print(t)


if __name__ == "__main__":
    main()
