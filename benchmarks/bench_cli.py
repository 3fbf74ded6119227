"""CLI start-up benchmark: ``auditlens --help`` and ``auditlens --version`` against the
time to import the data stack they must not load (``import polars, sqlalchemy``).

Each command runs in a fresh interpreter, interleaved with the baseline in the same run
so that machine load affects both alike; the best of ``--repeat`` runs is compared.
Target: each command ≤ 0.25× the baseline.

    python benchmarks/bench_cli.py
    python benchmarks/bench_cli.py --repeat 15
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

TARGET_RATIO = 0.25

#: what is timed: the same interpreter, each in a fresh process
CASES: dict[str, list[str]] = {
    "import polars, sqlalchemy (baseline)": [sys.executable, "-c", "import polars, sqlalchemy"],
    "auditlens --help": [sys.executable, "-c", "from auditlens.cli import main; main()", "--help"],
    "auditlens --version": [
        sys.executable,
        "-c",
        "from auditlens.cli import main; main()",
        "--version",
    ],
}


def _seconds(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    """Time the cases, interleaved, and print the table with ratios and the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="Runs of each case (best kept).")
    args = parser.parse_args()
    best = dict.fromkeys(CASES, float("inf"))
    for argv in CASES.values():
        _seconds(argv)  # warm the file cache and the bytecode
    for _ in range(args.repeat):
        for name, argv in CASES.items():
            best[name] = min(best[name], _seconds(argv))

    from rich.console import Console
    from rich.table import Table

    base_name = next(iter(CASES))
    base = best[base_name]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    t = Table(
        title=f"CLI start-up (best of {args.repeat} fresh processes, {os.cpu_count()} cores, "
        f"load average {load})"
    )
    for col in ("measure", "result", "baseline / ratio", "target", "met"):
        t.add_column(col)
    t.add_row(base_name, f"{base * 1000:.0f} ms", "", "", "")
    for name, seconds in best.items():
        if name == base_name:
            continue
        ratio = seconds / base
        t.add_row(
            name,
            f"{seconds * 1000:.0f} ms",
            f"{ratio:.2f}× the baseline",
            f"≤ {TARGET_RATIO:.2f}×",
            "yes" if ratio <= TARGET_RATIO else "NO",
        )
    Console().print(t)


if __name__ == "__main__":
    main()
