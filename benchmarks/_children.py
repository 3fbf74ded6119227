"""What every benchmark script shares: each measurement runs in a child process of its
own (so its peak memory, ``ru_maxrss``, is its own), and reports one JSON line."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from typing import Any


def rss_mb() -> float:
    """Peak resident memory of this process, in MB.

    Linux keeps ``ru_maxrss`` across ``execve``: a child started by a parent that is
    already large reports the parent's size. Keep the parent small (build data in a
    child, or in an earlier run).
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script: str, name: str, *args: str) -> dict[str, Any] | None:
    """Run ``script --child name args`` and return its JSON answer; None when it failed
    (killed for lack of memory, say — reported as such by the caller)."""
    out = subprocess.run(
        [sys.executable, script, "--child", name, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-2000:])
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def answer_child(children: dict[str, Callable[..., dict[str, Any]]], child: list[str]) -> None:
    """In the child: run the named measurement and print its JSON line."""
    name, *rest = child
    print(json.dumps(children[name](*rest)))


def helper_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's SQLite reader helper
    processes (``_adbc_worker``), read from /proc while they run (0 where there is none)."""
    from auditlens.store.readers import _SqliteWorker

    total = 0.0
    for cls in (_SqliteWorker, *_SqliteWorker._slots.values()):
        proc = cls._proc
        if proc is None or proc.poll() is not None:
            continue
        with open(f"/proc/{proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
