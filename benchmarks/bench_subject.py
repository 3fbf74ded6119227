"""GDPR subject access benchmark: one data subject with 500 entries (as actor and as the
resource of others' actions) among other people's entries, through ``subject_access`` and
the readable PDF (weasyprint). Target: 500 entries in at most 5 s, queries + PDF.
``cpu_s`` (this process's CPU time) is printed beside the wall time: on a busy machine
the wall time measures the neighbours.

    python benchmarks/bench_subject.py                 # 500 entries of the subject
    python benchmarks/bench_subject.py --entries 2000
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 5.0
ORG = "9a1c7e52-3f0b-4d5e-8a6b-2c4d6e8f0a1b"
SUBJECT = {"user_id": "5f0c2a55-3f7e-4f8e-8d44-9a4b0c3e2d11", "email": "jane.doe@acme.example"}
ADMIN = {"user_id": "6a1d3b66-4a8f-4a9f-9e55-0b5c1d4f3e22", "email": "ada.admin@acme.example"}


def entries(n: int) -> list[dict[str, Any]]:
    """``n`` entries of the subject (one in five done to them) and as many of someone else."""
    out: list[dict[str, Any]] = []
    for i in range(2 * n):
        mine = i % 2 == 0
        to_them = mine and i % 10 == 0
        actor = ADMIN if (to_them or not mine) else SUBJECT
        minute = i % 60
        ts = f"2025-01-{1 + (i // 1440) % 28:02d}T{(i // 60) % 24:02d}:{minute:02d}:00Z"
        if to_them:
            action, resource = (
                "user.role_changed",
                {"type": "user", "id": SUBJECT["user_id"], "name": SUBJECT["email"]},
            )
            details: dict[str, Any] = {"before": {"role": "member"}, "after": {"role": "admin"}}
        else:
            action = ("webhook.tested", "webhook.updated", "auth.login")[i % 3]
            resource = {"type": "webhook", "id": f"wh-{i % 40:04d}", "name": f"Webhook {i % 40}"}
            details = {
                "before": {"actions": {"url": "https://hooks.partner1.example/in"}},
                "after": {"actions": {"url": "https://hooks.partner2.example/v2"}},
            }
        out.append(
            {
                "timestamp": ts,
                "actor": {**actor, "type": "user"},
                "action": action,
                "resource": resource,
                "organization_id": ORG,
                "ip_address": "203.0.113.45",
                "details": details,
                "result": "failure" if i % 7 == 0 else "success",
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=500, help="entries of the subject")
    args = parser.parse_args()

    import pypdf

    import auditlens as al
    from auditlens.reports import subject_access

    with tempfile.TemporaryDirectory() as tmp:
        store = al.open_store(f"sqlite:///{Path(tmp) / 'subject.db'}")
        store.append(entries(args.entries))
        subject_access(store, "warm-up@acme.example")  # the reader process starts once
        c0, t0 = time.process_time(), time.perf_counter()
        sa = subject_access(store, SUBJECT["email"])
        t1 = time.perf_counter()
        pdf = sa.render_pdf()
        c2, t2 = time.process_time(), time.perf_counter()
        pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
        store.close()
    total = t2 - t0
    print(
        json.dumps(
            {
                "bench": "subject_access_pdf",
                "entries": sa.entries.height,
                "query_s": round(t1 - t0, 3),
                "pdf_s": round(t2 - t1, 3),
                "total_s": round(total, 3),
                # this process's CPU time: the wall time on a machine nobody else is using
                "cpu_s": round(c2 - c0, 3),
                "pages": pages,
                "bytes": len(pdf),
                "target_s": TARGET_S,
                "ok": total <= TARGET_S,
            }
        )
    )


if __name__ == "__main__":
    main()
