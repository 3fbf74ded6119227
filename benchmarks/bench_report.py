"""Compliance report benchmark: a SOC 2 PDF for one organization over a quarter of
1,000,000 entries, end to end through `auditlens report` (papermill, kernel start,
evidence, detectors, chain verification, charts through kaleido, weasyprint).

Baselines in the same run: reading the quarter with ``pandas.read_sql`` (what any
report must at least do), and the in-process steps, to show where the time goes.

    python benchmarks/bench_report.py              # builds benchmarks/.data/report-1000000.db once
    python benchmarks/bench_report.py --entries 200000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _children import answer_child, rss_mb, run_child

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
ORG = "9a1c7e52-3f0b-4d5e-8a6b-2c4d6e8f0a1b"
START, END = "2025-01-01", "2025-03-31"
TARGET_S = 60.0


def build(entries: int) -> str:
    """One organization's quarter: the demo's tenants folded into one organization."""
    db = DATA / f"report-{entries}.db"
    if db.exists():
        return str(db)
    import auditlens as al
    from auditlens.demo import generate
    from auditlens.ingest import ingest

    DATA.mkdir(exist_ok=True)
    orgs = max(1, entries // 5_000)
    data = generate(orgs=orgs, days=90, seed=2, end=date(2025, 3, 31))
    while len(data.entries) < entries:
        orgs = int(orgs * entries / len(data.entries)) + 1
        data = generate(orgs=orgs, days=90, seed=2, end=date(2025, 3, 31))
    import orjson

    src = DATA / f"report-{entries}.jsonl"
    with src.open("wb") as fh:
        for e in sorted(data.entries[:entries], key=lambda e: e["timestamp"]):
            e["organization_id"] = ORG
            if (e.get("resource") or {}).get("type") == "organization":
                e["resource"] = {**e["resource"], "id": ORG, "name": "Benchmark Corp"}
            fh.write(orjson.dumps(e) + b"\n")
    tmp = db.with_suffix(".tmp")
    with al.open_store(f"sqlite:///{tmp}") as store:
        ingest(store, src, batch_size=50_000)
    tmp.rename(db)
    src.unlink()
    return str(db)


def child_read_sql(db: str) -> dict[str, float]:
    import pandas as pd
    from sqlalchemy import create_engine

    from auditlens.query.filters import parse_when

    engine = create_engine(f"sqlite:///{db}")
    t = time.perf_counter()
    df = pd.read_sql(
        "SELECT * FROM audit_entries WHERE organization_id = ? AND ts BETWEEN ? AND ?",
        engine,
        params=(ORG, parse_when(START), parse_when(END, end_of_day=True)),
    )
    return {"seconds": time.perf_counter() - t, "rows": len(df), "rss_mb": rss_mb()}


def child_steps(db: str) -> dict[str, float]:
    import auditlens as al
    from auditlens.reports.render import chart_svgs

    store = al.open_store(db)
    out: dict[str, float] = {}
    t = time.perf_counter()
    report = al.build_report(store, "soc2", ORG, START, END, record=False)
    out["build"] = time.perf_counter() - t
    out["rows"] = report.provenance["rows"]
    t = time.perf_counter()
    chart_svgs(report.figures())
    out["charts"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        report.to_pdf(Path(tmp) / "r.pdf")
        out["pdf"] = time.perf_counter() - t
    out["rss_mb"] = rss_mb()
    return out


def end_to_end(db: str) -> tuple[float, int]:
    cli = Path(sys.executable).with_name("auditlens")
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "soc2.pdf"
        t = time.perf_counter()
        subprocess.run(
            [
                str(cli),
                "report",
                "soc2",
                "--org",
                ORG,
                "--start",
                START,
                "--end",
                END,
                "--out",
                str(pdf),
                "--db",
                f"sqlite:///{db}",
            ],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - t
        return seconds, pdf.stat().st_size


CHILDREN = {"read_sql": child_read_sql, "steps": child_steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        answer_child(CHILDREN, args.child)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = time.perf_counter()
    db = build(args.entries)
    console.print(f"store: {db} (ready in {time.perf_counter() - t:.0f} s)")
    total, size = end_to_end(db)
    steps = run_child(__file__, "steps", db)
    base = run_child(__file__, "read_sql", db)
    t = Table(
        title=f"SOC 2 report, one organization, a quarter ({args.entries:,} entries, "
        f"SQLite, {os.cpu_count()} cores)"
    )
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        t.add_column(col)
    ratio = (
        f"read_sql alone {base['seconds']:.1f} s → {total / base['seconds']:.1f}×"
        if base
        else ("read_sql failed")
    )
    t.add_row(
        "auditlens report soc2 (papermill, end to end)",
        f"{total:.1f} s, PDF {size:,} bytes",
        ratio,
        f"≤ {TARGET_S:.0f} s",
        "yes" if total <= TARGET_S else "NO",
    )
    if steps:
        t.add_row(
            "  build_report (load, evidence, detectors, verify)",
            f"{steps['build']:.1f} s",
            f"{steps['rows']:,.0f} rows",
            "",
            "",
        )
        t.add_row("  charts (one kaleido session)", f"{steps['charts']:.1f} s", "", "", "")
        t.add_row("  PDF (charts + weasyprint)", f"{steps['pdf']:.1f} s", "", "", "")
        t.add_row(
            "  peak memory (in-process steps)",
            f"{steps['rss_mb']:,.0f} MB",
            f"read_sql {base['rss_mb']:,.0f} MB" if base else "",
            "",
            "",
        )
    console.print(t)


if __name__ == "__main__":
    main()
