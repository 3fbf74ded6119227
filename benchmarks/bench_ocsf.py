"""OCSF export and Sigma rules: rows/s against baselines measured in the same run.

- OCSF JSON Lines and the OCSF Parquet folder against the plain JSON Lines export
  (the same rows, the interchange shape) — what building the OCSF events costs;
- OCSF JSON Lines against the same events built per row in Python (orjson per dict), the
  way a naive mapper would;
- the Sigma rule pack against the built-in detectors on the same store.

    python benchmarks/bench_ocsf.py --orgs 20 --days 120      # ~ 300,000 entries
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _build(db: Path, orgs: int, days: int) -> None:
    import auditlens as al
    from auditlens.demo import generate

    data = generate(orgs=orgs, days=days, seed=11, end=date(2025, 12, 31))
    with al.open_store(f"sqlite:///{db}") as store:
        for i in range(0, len(data.entries), 50_000):
            store.append(data.entries[i : i + 50_000])


def _timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _per_row(store: Any, sink: Path) -> int:
    """The baseline mapper: the same Arrow batches, one dict per entry, orjson per line."""
    import orjson
    import polars as pl

    n = 0
    with sink.open("wb") as fh:
        for rb in store.batches(order="asc"):
            for e in pl.from_arrow(rb).iter_rows(named=True):  # type: ignore[union-attr]
                event = {
                    "class_uid": 6003,
                    "activity_id": 99,
                    "type_uid": 600399,
                    "time": int(e["timestamp"].timestamp() * 1000),
                    "metadata": {
                        "version": "1.5.0",
                        "product": {"name": "auditlens", "vendor_name": "auditlens"},
                        "uid": e["audit_id"],
                        "tenant_uid": e["organization_id"],
                    },
                    "actor": {"user": {"uid": e["actor_user_id"], "email_addr": e["actor_email"]}},
                    "src_endpoint": {"ip": e["ip_address"]},
                    "http_request": {"user_agent": e["user_agent"]},
                    "unmapped": {"details": orjson.loads(e["details"]) if e["details"] else None},
                }
                fh.write(orjson.dumps(event) + b"\n")
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orgs", type=int, default=20)
    ap.add_argument("--days", type=int, default=120)
    args = ap.parse_args()
    from rich.console import Console
    from rich.table import Table

    import auditlens as al
    from auditlens.export import export
    from auditlens.sigma import detect as sigma_detect
    from auditlens.sigma import load_sigma

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        db = tmp / "bench.db"
        _build(db, args.orgs, args.days)
        store = al.open_store(f"sqlite:///{db}")
        n = store.count()
        store.query(limit=1)  # start the SQLite read helper before any timing
        base_s, _ = _timed(lambda: export(store, tmp / "a.jsonl", format="jsonl", record=False))
        ocsf_s, _ = _timed(lambda: export(store, tmp / "b.jsonl", format="ocsf", record=False))
        pq_s, _ = _timed(lambda: export(store, tmp / "c.parquet", format="ocsf", record=False))
        row_s, _ = _timed(lambda: _per_row(store, tmp / "d.jsonl"))
        rules = load_sigma(HERE.parent / "rules")
        det_s, det = _timed(lambda: store.detect("all", context=False))
        sig_s, sig = _timed(lambda: sigma_detect(store, rules))
    t = Table(title=f"OCSF export and Sigma rules ({n:,} entries, SQLite)")
    for col in ("measure", "result", "baseline (same run)", "ratio"):
        t.add_column(col)
    t.add_row(
        "OCSF JSON Lines",
        f"{n / ocsf_s:,.0f} rows/s",
        f"JSON Lines export {n / base_s:,.0f} rows/s",
        f"{base_s / ocsf_s:.2f}× the speed",
    )
    t.add_row(
        "OCSF Parquet folder",
        f"{n / pq_s:,.0f} rows/s",
        f"JSON Lines export {n / base_s:,.0f} rows/s",
        f"{base_s / pq_s:.2f}× the speed",
    )
    t.add_row(
        "OCSF JSON Lines (column-wise)",
        f"{n / ocsf_s:,.0f} rows/s",
        f"per-row dicts + orjson {n / row_s:,.0f} rows/s",
        f"{row_s / ocsf_s:.2f}× the speed",
    )
    t.add_row(
        f"Sigma pack ({len(rules)} rules)",
        f"{sig_s:.2f} s, {sig.height} findings",
        f"six detectors {det_s:.2f} s, {det.height} findings",
        f"{det_s / sig_s:.2f}× the speed",
    )
    Console().print(t)


if __name__ == "__main__":
    main()
