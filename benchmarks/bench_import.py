"""CloudTrail import benchmark: records/s into SQLite through ``auditlens import``'s path
(files read, mapped and validated in worker processes), against the plain JSONL ingest of
the very same entries in the same run (the baseline), the import with everything in one
process (``workers=0``, as before), and the importer's reading + mapping alone. Target: at
least 20,000 records/s. ``cpu_s`` (this process) and ``workers`` (its worker processes' CPU) are
printed beside the wall time, and the load average before and after: on a busy machine
the wall time measures the neighbours.

    python benchmarks/bench_import.py                    # 100,000 records in 200 .json.gz
    python benchmarks/bench_import.py --records 400000 --files 800
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET = 20_000
ACCOUNT = "123456789012"
SOURCES = (
    ("s3.amazonaws.com", "GetObject"),
    ("s3.amazonaws.com", "PutObject"),
    ("iam.amazonaws.com", "ListUsers"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("signin.amazonaws.com", "ConsoleLogin"),
    ("kms.amazonaws.com", "Decrypt"),
)


def record(i: int, rng: random.Random) -> dict[str, Any]:
    """A CloudTrail record of realistic size (~1.3 KB) and shape."""
    source, name = SOURCES[i % len(SOURCES)]
    user = f"user{i % 300:03d}"
    ident: dict[str, Any] = {
        "type": "IAMUser",
        "principalId": f"AIDA{i % 300:016d}",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}",
        "accountId": ACCOUNT,
        "accessKeyId": f"AKIA{i % 300:016d}",
        "userName": user,
    }
    if i % 3 == 0:
        ident = {
            "type": "AssumedRole",
            "principalId": f"AROA{i % 40:016d}:session-{i % 40}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Role{i % 40}/session-{i % 40}",
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/Role{i % 40}",
                    "userName": f"Role{i % 40}",
                },
                "attributes": {"creationDate": "2024-03-01T00:00:00Z", "mfaAuthenticated": "false"},
            },
        }
    sec = i % 86_400
    return {
        "eventVersion": "1.09",
        "userIdentity": ident,
        "eventTime": f"2024-03-{1 + i // 86_400 % 28:02d}T{sec // 3600:02d}:{sec // 60 % 60:02d}:"
        f"{sec % 60:02d}Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": f"198.51.{rng.randrange(256)}.{rng.randrange(256)}"
        if i % 10
        else "AWS Internal",
        "userAgent": "[aws-sdk-go/1.44.0 (go1.20; linux; amd64)]" if i % 2 else "aws-cli/2.15.0",
        "requestParameters": {"bucketName": "acme-data", "key": f"objects/{i:08d}.json"},
        "responseElements": None,
        "errorCode": "AccessDenied" if i % 17 == 0 else None,
        "requestID": f"{rng.getrandbits(64):016X}",
        "eventID": f"{rng.getrandbits(32):08x}-0000-4000-8000-{i:012d}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "s3.us-east-1.amazonaws.com",
        },
    }


def build(folder: Path, n: int, files: int) -> None:
    rng = random.Random(7)
    per = max(1, n // files)
    for f in range(0, n, per):
        recs = [record(i, rng) for i in range(f, min(n, f + per))]
        name = f"{ACCOUNT}_CloudTrail_us-east-1_20240301T{f:08d}Z.json.gz"
        (folder / name).write_bytes(gzip.compress(json.dumps({"Records": recs}).encode(), 1))


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process, and of its children that have ended (the import's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], int]) -> tuple[int, float, float, float]:
    """Records, wall seconds, CPU seconds of this process, CPU seconds of the workers."""
    wall, (own, kids) = time.perf_counter(), cpu_seconds()
    n = fn()
    own2, kids2 = cpu_seconds()
    return n, time.perf_counter() - wall, own2 - own, kids2 - kids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()

    import orjson

    import auditlens as al
    from auditlens.chain.canonical import content_hash_expr
    from auditlens.importers import cloudtrail, import_files
    from auditlens.importers.workers import default_workers
    from auditlens.ingest import ingest

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "AWSLogs"
        folder.mkdir()
        build(folder, args.records, args.files)
        jsonl = root / "entries.jsonl"
        with jsonl.open("wb") as fh:
            for entry in cloudtrail.read(folder):
                fh.write(orjson.dumps(entry) + b"\n")

        def read_only() -> int:
            return sum(1 for _ in cloudtrail.records(folder))

        def imported(workers: int | None, name: str) -> Callable[[], int]:
            def run() -> int:
                with al.open_store(str(root / name)) as store:
                    report = import_files(store, "cloudtrail", [folder], workers=workers)
                    assert report.ok and report.appended == args.records, report
                    return report.appended

            return run

        def ingested() -> int:
            with al.open_store(str(root / "ingest.db")) as store:
                report = ingest(store, jsonl)
                assert report.ok and report.appended == args.records
                return report.appended

        content_hash_expr()  # imports polars and polars-hash before any clock starts
        al.open_store("sqlite://").close()  # and the feature tables' modules
        load_before = os.getloadavg()
        rows = [
            ("plain JSONL ingest (baseline)", *timed(ingested)),
            (f"cloudtrail import, {default_workers()} worker(s)", *timed(imported(None, "a.db"))),
            ("cloudtrail import, one process", *timed(imported(0, "b.db"))),
            ("cloudtrail read + map only", *timed(read_only)),
        ]
        load_after = os.getloadavg()
    base = rows[0][1] / rows[0][2]
    print(f"{args.records:,} CloudTrail records in {args.files} .json.gz files")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    print(
        f"{'step':34} {'records':>9} {'wall_s':>7} {'cpu_s':>7} {'workers':>7} {'rec/s':>9} "
        f"{'vs base':>8}"
    )
    for label, n, wall, cpu, kids in rows:
        rate = n / wall
        print(
            f"{label:34} {n:9,} {wall:7.2f} {cpu:7.2f} {kids:7.2f} {rate:9,.0f} {rate / base:7.2f}x"
        )
    rate = rows[1][1] / rows[1][2]
    print(f"target ≥ {TARGET:,} records/s: {'met' if rate >= TARGET else 'NOT met'} ({rate:,.0f})")


if __name__ == "__main__":
    main()
