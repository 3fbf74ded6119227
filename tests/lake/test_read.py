"""``open_lake(...).query``: the store's filters, on the lake, give the store's answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import auditlens as al
from auditlens.errors import ArchiveError, FilterError
from auditlens.frames import COLUMNS
from auditlens.lake import sync_lake
from tests.helpers import JANE_ID, ORG, ORG2, make_entry


@pytest.fixture
def synced(store: al.AuditStore, tmp_path: Path) -> tuple[al.AuditStore, al.Lake]:
    rows = []
    for i in range(60):
        rows.append(
            make_entry(
                organization_id=ORG if i % 3 else ORG2,
                timestamp=f"2025-01-{10 + i % 15:02d}T{i % 24:02d}:00:00Z",
                action=("auth.login", "auth.login_failed", "webhook.created", "user.deleted")[
                    i % 4
                ],
                result="failure" if i % 4 == 1 else "success",
                ip_address=("10.0.0.5", "10.1.2.3", "192.168.1.100", "2001:db8::1")[i % 4],
                **{
                    "actor.email": ("Jane@Company.com", "bob@company.com", "ci@bots.example")[
                        i % 3
                    ],
                    "actor.user_id": None if i % 3 == 2 else JANE_ID,
                    "actor.type": "system" if i % 3 == 2 else "user",
                    "resource.id": f"wh-{i % 5}",
                },
            )
        )
    store.append(rows)
    root = tmp_path / "lake"
    sync_lake(store, root)
    return store, al.open_lake(root)


FILTERS: list[tuple[Any, dict[str, Any]]] = [
    (None, {}),
    (None, {"result": "failure"}),
    (None, {"actions": "auth.*"}),
    (None, {"action": ["user.deleted", "webhook.created"]}),
    (None, {"category": "auth"}),
    (None, {"actor": "jane@company.com"}),
    (None, {"actor": "*@company.com"}),
    (None, {"actor": JANE_ID}),
    (None, {"organization_id": ORG2}),
    (None, {"start": "2025-01-15", "end": "2025-01-20"}),
    (None, {"ip": "10.0.0.0/8"}),
    (None, {"ip": "2001:db8::/32"}),
    (None, {"resource": "wh-3"}),
    (None, {"actor_type": "system"}),
    ("action:auth.* -result:failure", {}),
    ("-ip:10.0.0.0/8 org:" + ORG, {}),
]


@pytest.mark.parametrize(("where", "filters"), FILTERS)
def test_same_entries_as_the_store(
    synced: tuple[al.AuditStore, al.Lake], where: Any, filters: dict[str, Any]
) -> None:
    store, lake = synced
    expected = store.query(where, backend="polars", **filters)
    found = lake.query(where, **filters)
    assert expected.height > 0  # every filter here matches something
    assert found.columns == list(COLUMNS)
    assert sorted(found["audit_id"].to_list()) == sorted(expected["audit_id"].to_list())


def test_order_limit_and_backends(synced: tuple[al.AuditStore, al.Lake]) -> None:
    store, lake = synced
    newest = lake.query(limit=5)
    assert (
        newest["timestamp"].to_list()
        == store.query(backend="polars", limit=5)["timestamp"].to_list()
    )
    oldest = lake.query(order="asc", limit=1)
    assert (
        oldest["timestamp"][0]
        == store.query(backend="polars", order="asc", limit=1)["timestamp"][0]
    )
    assert isinstance(lake.query(backend="pandas", result="failure"), pd.DataFrame)
    table = lake.query(backend="arrow", result="failure")
    assert isinstance(table, pa.Table) and table.num_rows == 15


def test_free_text_is_refused_clearly(synced: tuple[al.AuditStore, al.Lake]) -> None:
    _, lake = synced
    with pytest.raises(FilterError, match="free-text search is not supported on the lake"):
        lake.query(text="Production")


def test_an_empty_lake_reads_as_an_empty_frame(tmp_path: Path) -> None:
    frame = al.open_lake(tmp_path).query(result="success")
    assert isinstance(frame, pl.DataFrame) and frame.height == 0
    assert frame.columns == list(COLUMNS)


def test_a_missing_folder_is_an_error_not_an_empty_lake(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no such folder"):
        al.open_lake(tmp_path / "typo")
