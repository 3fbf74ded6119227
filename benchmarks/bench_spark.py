"""Spark benchmark: the ported detectors on Spark ``local[N]`` against polars, same entries.

A synthetic trail (``bench_detect.synthetic``: 50 organizations, 20,000 people, 90 days;
``seq`` per organization) is written straight into a lake layout with polars (month
partitions, one file per organization-month, a manifest listing them: no store ingest),
then each ported detector runs

- with polars: ``auditlens.detect.run(name, frame)`` on the frame read from the lake,
- with Spark: ``engines.spark.detect(session, read_lake(session, lake), [name])`` collected
  by ``to_polars`` (each detector reads the Parquet files again: a batch job's cost),

and then all of them in one call, what a user runs: ``detect.run_all`` on the polars frame
against one ``engines.spark.detect(session, entries, names)`` collected by ``to_polars``;

each side in a child process of its own. The session start and the lake read are timed
apart. Prints a table with the Spark/polars ratio and the machine's load (``uptime``).

    python benchmarks/bench_spark.py [--entries 10000000] [--cores 2] [--memory 6g]
        [--detectors failed_login_spikes,bulk_deletions] [--lake DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# this checkout's code, not whichever copy the environment installed (a worktree measures its own)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _children import answer_child, rss_mb
from bench_detect import synthetic

TARGET = 3.0  # docs/PERFORMANCE.md: Spark detect on 10M within 3x polars


def write_lake(n: int, root: Path) -> None:
    """The synthetic entries as a month-partitioned lake with one manifest."""
    frame = synthetic(n).with_columns(
        pl.int_range(1, pl.len() + 1).over("organization_id").cast(pl.Int64).alias("seq"),
        pl.lit(None, pl.Utf8).alias("details"),
        pl.col("timestamp").dt.strftime("%Y-%m").alias("month"),
    )
    files = []
    for (org, month), part in frame.group_by(["organization_id", "month"], maintain_order=True):
        rel = f"organization_id={org}/month={month}/part-s1-{part['seq'].min()}.parquet"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        part.drop("organization_id", "month").write_parquet(path, compression="zstd")
        data = path.read_bytes()
        files.append(
            {
                "path": rel,
                "organization_id": org,
                "rows": part.height,
                "first_seq": part["seq"].min(),
                "last_seq": part["seq"].max(),
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
        )
    manifest = {
        "format": "auditlens.lake.v1",
        "sync": 1,
        "previous_sha256": None,
        "partition": "month",
        "organizations": {},
        "files": files,
        "replaces": [],
    }
    (root / "manifests").mkdir(exist_ok=True)
    (root / "manifests" / "sync-000001.json").write_text(json.dumps(manifest))
    (root / ".entries").write_text(str(n))


def child_polars(lake: str, detectors: str) -> dict[str, Any]:
    import auditlens as al
    from auditlens import detect

    t = time.perf_counter()
    frame = al.open_lake(lake).scan().collect()
    out: dict[str, Any] = {"load": time.perf_counter() - t}
    for name in detectors.split(","):
        t = time.perf_counter()
        found = detect.run(name, frame)
        out[name] = [time.perf_counter() - t, found.height]
        print(f"  polars {name}: {out[name][0]:.1f} s", file=sys.stderr, flush=True)
    names = detectors.split(",")
    t = time.perf_counter()
    found = detect.run_all(frame, {n: False for n in detect.DETECTORS if n not in names})
    out["all"] = [time.perf_counter() - t, found.height]
    print(f"  polars all in one run_all: {out['all'][0]:.1f} s", file=sys.stderr, flush=True)
    out["rss_mb"] = rss_mb()
    return out


def child_spark(lake: str, detectors: str, cores: str, memory: str) -> dict[str, Any]:
    warnings.simplefilter("ignore")
    from auditlens.engines import spark

    t = time.perf_counter()
    session = spark.local_session(int(cores), memory=memory)
    out: dict[str, Any] = {"session": time.perf_counter() - t}
    t = time.perf_counter()
    entries = spark.read_lake(session, lake)
    out["load"] = [time.perf_counter() - t, entries.count()]
    out["load"][0] = time.perf_counter() - t
    for name in detectors.split(","):
        t = time.perf_counter()
        found = spark.to_polars(spark.detect(session, entries, [name]))
        out[name] = [time.perf_counter() - t, found.height]
        print(f"  spark {name}: {out[name][0]:.1f} s", file=sys.stderr, flush=True)
    t = time.perf_counter()  # what a user runs: every detector in one detect call
    found = spark.to_polars(spark.detect(session, entries, detectors.split(",")))
    out["all"] = [time.perf_counter() - t, found.height]
    print(f"  spark all in one detect: {out['all'][0]:.1f} s", file=sys.stderr, flush=True)
    session.stop()
    return out


def run_streaming(script: str, *args: str) -> dict[str, Any] | None:
    """A child whose stderr (per-detector progress) goes straight to the terminal."""
    out = subprocess.run(
        [sys.executable, script, "--child", *args], stdout=subprocess.PIPE, text=True, check=False
    )
    if out.returncode != 0:
        return None
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--memory", default="6g")
    ap.add_argument("--detectors", default="")
    ap.add_argument("--lake", type=Path, default=None)
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        answer_child({"polars": child_polars, "spark": child_spark}, args.child)
        return
    from auditlens.engines.spark import PORTED

    detectors = args.detectors or ",".join(PORTED)
    lake = args.lake or Path(tempfile.gettempdir()) / f"auditlens-bench-spark-{args.entries}"
    marker = lake / ".entries"
    if not (marker.exists() and marker.read_text() == str(args.entries)):
        t = time.perf_counter()
        lake.mkdir(parents=True, exist_ok=True)
        write_lake(args.entries, lake)
        print(
            f"lake of {args.entries:,} entries written in {time.perf_counter() - t:.1f} s: {lake}"
        )
    script = os.path.abspath(__file__)
    print(f"load before: {load()}")
    pol = run_streaming(script, "polars", str(lake), detectors)
    print(f"load after polars: {load()}")
    spk = run_streaming(script, "spark", str(lake), detectors, str(args.cores), args.memory)
    print(f"load after spark: {load()}")
    if pol is None or spk is None:
        sys.exit("a child failed (see above)")
    print(f"\n{args.entries:,} entries, Spark local[{args.cores}] (driver {args.memory}) vs polars")
    print(f"Spark session start: {spk['session']:.1f} s")
    print(f"read the lake: polars {pol['load']:.1f} s, Spark (count) {spk['load'][0]:.1f} s")
    print(f"{'detector':22} {'polars s':>9} {'spark s':>9} {'ratio':>7} {'findings':>9}")
    tp = ts = 0.0
    for name in detectors.split(","):
        p, s = pol[name], spk[name]
        tp, ts = tp + p[0], ts + s[0]
        same = "" if p[1] == s[1] else f"  (polars {p[1]})"
        print(f"{name:22} {p[0]:9.2f} {s[0]:9.2f} {s[0] / p[0]:6.1f}x {s[1]:9}{same}")
    verdict = "met" if ts <= TARGET * tp else "not met"
    print(f"{'total':22} {tp:9.2f} {ts:9.2f} {ts / tp:6.1f}x  (target ≤ {TARGET:.0f}x: {verdict})")
    (pa, pn), (sa, sn) = pol["all"], spk["all"]
    verdict = "met" if sa <= TARGET * pa else "not met"
    same = "" if pn == sn else f"  (polars {pn})"
    print(f"{'all in one call':22} {pa:9.2f} {sa:9.2f} {sa / pa:6.1f}x {sn:9}{same}  ({verdict})")
    print(f"polars peak RSS {pol['rss_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
