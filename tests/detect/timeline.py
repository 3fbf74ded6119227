"""Small event timelines written with minute offsets, detection-as-code style."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday, noon UTC


def timeline(*events: tuple[Any, ...], org: str = "org-1") -> pl.DataFrame:
    """(minute, action, result, actor email, ip[, user agent, resource, details]) rows →
    entries frame."""
    rows = []
    for i, ev in enumerate(events):
        minute, action, result, actor, ip, *rest = (*ev, None, None, None)[:8]
        ua, resource, details = rest[0], rest[1], rest[2]
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
                "details": json.dumps(details) if details is not None else None,
            }
        )
    return pl.DataFrame(
        rows, schema_overrides={"timestamp": pl.Datetime("ms", "UTC"), "details": pl.Utf8}
    )


def uid(name: str) -> str:
    """A stable UUID for a timeline id or organization name (the store wants UUIDs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"auditlens-test:{name}"))


def as_entries(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """A timeline frame in the interchange shape, for ``store.append``; ids through :func:`uid`."""
    out = []
    for r in frame.iter_rows(named=True):
        actor = (
            {"email": r["actor_email"], "type": r["actor_type"]}
            if r["actor_email"]
            else {"type": "system"}
        )
        resource = (
            {"type": r["resource_type"], "id": r["resource_id"], "name": r["resource_name"]}
            if r["resource_type"]
            else None
        )
        out.append(
            {
                "audit_id": uid(r["audit_id"]),
                "timestamp": r["timestamp"].isoformat(),
                "actor": actor,
                "action": r["action"],
                "resource": resource,
                "organization_id": uid(r["organization_id"]),
                "ip_address": r["ip_address"],
                "user_agent": r["user_agent"],
                "details": json.loads(r["details"]) if r["details"] else {},
                "result": r["result"],
            }
        )
    return out


def evidence_back(findings: pl.DataFrame, frame: pl.DataFrame) -> list[list[str]]:
    """The findings' evidence as timeline ids (``e000``…), from the store's UUIDs."""
    back = {uid(a): a for a in frame["audit_id"].to_list()}
    return [sorted(back[a] for a in ids) for ids in findings["audit_ids"].to_list()]


def fails(
    n: int, start: float = 0, step: float = 0.5, actor: str = "jane@x.io", ip: str = "1.2.3.4"
) -> list[tuple]:
    return [(start + i * step, "auth.failed", "failure", actor, ip) for i in range(n)]
