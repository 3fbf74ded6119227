"""Test helpers: valid entries to start from."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl
    import pytest

    import auditlens as al

ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
ORG2 = "7d1e8f3a-5c2b-4e6d-9a8b-1c2d3e4f5a6b"
JANE_ID = "5f0c2a55-3f7e-4f8e-8d44-9a4b0c3e2d11"
NOW = datetime(2025, 3, 1, tzinfo=UTC)  # "now" of the retention tests


def make_entry(**overrides: Any) -> dict[str, Any]:
    """A complete, valid entry in the interchange shape."""
    entry: dict[str, Any] = {
        "audit_id": str(uuid.uuid4()),
        "timestamp": "2025-01-20T10:30:00.123Z",
        "actor": {"user_id": JANE_ID, "email": "jane@company.com", "type": "user"},
        "action": "webhook.created",
        "resource": {"type": "webhook", "id": "wh-123", "name": "Production Webhook"},
        "organization_id": ORG,
        "application_id": "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f",
        "ip_address": "192.168.1.100",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "details": {
            "conditions": {"events": ["order.created"]},
            "actions": {"url": "https://x.example"},
        },
        "result": "success",
    }
    for key, value in overrides.items():
        if "." in key:
            outer, inner = key.split(".", 1)
            entry[outer] = {**entry[outer], inner: value}
        else:
            entry[key] = value
    return entry


def days_ago(n: float) -> str:
    return (NOW - timedelta(days=n)).isoformat()


def append_aged(store: al.AuditStore) -> None:
    """ORG and ORG2: 40 entries from 60 to 21 days ago, then 10 recent ones each."""
    for org in (ORG, ORG2):
        store.append(
            [
                make_entry(organization_id=org, timestamp=days_ago(60 - i), details={"i": i})
                for i in range(40)
            ]
        )
        store.append(
            [make_entry(organization_id=org, timestamp=days_ago(5 - i * 0.1)) for i in range(10)]
        )


def plan_set_at(store: al.AuditStore, org: str, plan: str, when: datetime) -> None:
    """The plan ``set_plan`` records, as a store whose plan was set at ``when`` holds it: an
    ``org_plans`` row and its ``organization.plan_changed`` entry, both dated then (a test
    cannot wait a month for a plan to age; retention and ``verify`` judge against the clock)."""
    from sqlalchemy import insert  # lazy: only the tests that backdate a plan

    from auditlens.plans import RETENTION_DAYS  # lazy: only the tests that backdate a plan
    from auditlens.retention_tables import org_plans  # lazy: only the tests that backdate a plan

    with store.engine.begin() as conn:
        conn.execute(
            insert(org_plans).values(
                organization_id=org, plan=plan, changed_ms=int(when.timestamp() * 1000)
            )
        )
    store.append(
        {
            "actor": {"type": "system"},
            "action": "organization.plan_changed",
            "organization_id": org,
            "result": "success",
            "timestamp": when.isoformat(),
            "resource": {"type": "organization", "id": org},
            "details": {
                "old_plan": None,
                "old_retention_days": None,
                "plan": plan,
                "retention_days": RETENTION_DAYS[plan],
            },
        }
    )


S3_BUCKET = "audit-lake"  # the bucket the ``s3`` fixture (tests/conftest.py) creates


def s3_prefix(lake: str) -> str:
    """The key prefix of an ``s3://S3_BUCKET/…`` lake URL, with its trailing slash."""
    return lake.removeprefix(f"s3://{S3_BUCKET}/") + "/"


def s3_keys(s3: Any, lake: str) -> list[str]:
    """The lake's objects, relative to its prefix (not the empty ``folder/`` markers
    pyarrow leaves where it deleted a folder's last object: no reader takes them for data)."""
    prefix = s3_prefix(lake)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix)
    keys = (o["Key"][len(prefix) :] for p in pages for o in p.get("Contents", []))
    return sorted(k for k in keys if not k.endswith("/"))


def archive_previous_layout(patch: pytest.MonkeyPatch, staging: Path) -> None:
    """Make retention write archives of the previous layout (one manifest per range beside
    its files, as earlier versions wrote) instead of the lake layout: into the folder, or
    staged in ``staging`` and uploaded for an ``s3://`` URL. ``patch.undo()`` (or leaving a
    ``monkeypatch.context()``) goes back to the lake layout."""
    import auditlens.retention as ret  # lazy: only the retention tests need it

    def previous(
        store: object, root: Path | str, org: str, frame: pl.DataFrame, first: int, through: int
    ) -> tuple[Path | str, str]:
        if not str(root).startswith("s3://"):
            manifest = ret._write_archive(Path(root), org, frame, first, through)
            return manifest, ret._sha(manifest)
        manifest = ret._write_archive(staging, org, frame, first, through)
        return ret._publish(staging, manifest, str(root)), ret._sha(manifest)

    patch.setattr(ret, "_archive_to_lake", previous)


def assert_previous_and_lake_layout_read(store: al.AuditStore, lake: Path | str) -> None:
    """After one run into ``lake`` in the previous layout (ORG's seq 1..30) and the next in
    the lake layout (31..38): the archive checks, verifies and restores as one range, and
    the lake holds what was archived in its layout (the earlier files are not listed)."""
    import auditlens as al  # lazy: keeps tests.helpers cheap to import (conftest does)
    from auditlens.lake import open_lake, verify_lake  # lazy: as above
    from auditlens.retention import check_archive, restore_archive, set_plan  # lazy: as above

    check = check_archive(store, ORG, read=True, verify=True)
    assert check.problems == [] and check.frame is not None
    assert check.frame["seq"].to_list() == list(range(1, 39))
    assert al.verify(store, include_archive=True).ok
    assert sorted(open_lake(lake).query(organization_id=ORG)["seq"]) == list(range(31, 39))
    assert verify_lake(lake).ok
    set_plan(store, ORG, "enterprise")
    restored = restore_archive(store, ORG, allow_unanchored=True)
    assert restored.entries["seq"].to_list() == list(range(1, 39))
