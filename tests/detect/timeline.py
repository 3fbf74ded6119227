"""Small event timelines written with minute offsets, detection-as-code style."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday, noon UTC


def timeline(*events: tuple[Any, ...], org: str = "org-1") -> pl.DataFrame:
    """(minute, action, result, actor email, ip[, user agent, resource]) rows → entries frame."""
    rows = []
    for i, ev in enumerate(events):
        minute, action, result, actor, ip, *rest = (*ev, None, None, None)[:8]
        ua, resource = rest[0], rest[1]
        rtype, rid, rname = resource if resource else (None, None, None)
        rows.append(
            {
                "audit_id": f"e{i:03d}",
                "timestamp": T0 + timedelta(minutes=minute),
                "action": action,
                "result": result,
                "organization_id": org,
                "actor_email": actor,
                "actor_user_id": None,
                "actor_type": "user" if actor else "system",
                "ip_address": ip,
                "user_agent": ua or "Mozilla/5.0 Chrome/131.0",
                "resource_type": rtype,
                "resource_id": rid,
                "resource_name": rname,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"timestamp": pl.Datetime("ms", "UTC")})


def fails(
    n: int, start: float = 0, step: float = 0.5, actor: str = "jane@x.io", ip: str = "1.2.3.4"
) -> list[tuple]:
    return [(start + i * step, "auth.failed", "failure", actor, ip) for i in range(n)]
