"""The explorer panel, driven through its widgets as a user would (no browser needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import auditlens as al
from tests.helpers import ORG
from tests.reports import scenario


@pytest.fixture
def panel(store: al.AuditStore, tmp_path: Path) -> al.explorer.Explorer:
    scenario.seed(store)
    return al.explore(
        store, page_size=5, export_dir=tmp_path, now=datetime(2025, 1, 31, 12, tzinfo=UTC)
    )


def test_filters_become_one_query_run_by_the_database(
    panel: al.explorer.Explorer, store: al.AuditStore
) -> None:
    panel.category.value = "authentication"
    panel.result.value = "failure"
    panel.actor.value = "carol@acme.example"
    panel.refresh()
    assert panel.query == "actor:carol@acme.example category:authentication result:failure"
    assert panel.total == store.count(actor="carol@acme.example", result="failure")  # 6+3+4
    assert panel.total == 13
    assert list(panel.frame["action"].unique()) == ["auth.failed"]
    assert "13 entries match" in panel.status.value


def test_presets_and_custom_range(panel: al.explorer.Explorer, store: al.AuditStore) -> None:
    panel.preset.value = "last 24 h"  # from 2025-01-30 12:00: only the role change of February
    panel.refresh()
    assert panel.query.startswith("created:>=2025-01-30T12:00:00Z")
    assert panel.total == 1
    assert list(panel.frame["action"]) == ["user.role_changed"]
    panel.preset.value = "last 30 d"
    panel.refresh()
    assert panel.total == store.count(start="2025-01-01T12:00:00Z")
    panel.preset.value = "custom"
    panel.start.value = date(2025, 1, 10)
    panel.end.value = date(2025, 1, 10)
    panel.refresh()
    assert panel.total == store.count(start="2025-01-10", end="2025-01-10")
    assert panel.total == 6 + 4 + 1  # carol's failures (both orgs) and her suspension


def test_search_bar_and_resource_filter(panel: al.explorer.Explorer) -> None:
    panel.search.value = "action:webhook.* -result:success"
    panel.refresh()
    assert panel.total == 0
    panel.search.value = ""
    panel.resource.value = "Orders"
    panel.refresh()
    assert panel.query == "resource:Orders"
    assert list(panel.frame["action"]) == ["webhook.updated"]


def test_paging_walks_every_entry_once(panel: al.explorer.Explorer, store: al.AuditStore) -> None:
    panel.refresh()
    seen = list(panel.frame["timestamp"])
    assert panel.prev_button.disabled and not panel.next_button.disabled
    while not panel.next_button.disabled:
        panel.next_button.click()
        seen += list(panel.frame["timestamp"])
    assert len(seen) == store.count()
    assert seen == sorted(seen, reverse=True)
    panel.prev_button.click()
    assert panel.page_number > 1


def test_a_bad_query_is_shown_not_raised(panel: al.explorer.Explorer) -> None:
    panel.search.value = "result:maybe"
    panel.refresh()
    assert "result" in panel.status.value and "color:#b00020" in panel.status.value
    assert panel.frame is None


def test_table_escapes_entry_text(panel: al.explorer.Explorer) -> None:
    panel.resource.value = "wh-3"
    panel.refresh()
    assert scenario.SCRIPT not in panel.table.value
    assert "&lt;script&gt;" in panel.table.value


def test_export_button_writes_the_chosen_fields(panel: al.explorer.Explorer) -> None:
    panel.category.value = "user_management"
    panel.export_format.value = "csv"
    panel.export_fields.value = ("timestamp", "actor.email", "action")
    panel.refresh()
    panel.export_button.click()
    path = panel.last_export
    assert path is not None and path.suffix == ".csv"
    lines = path.read_text().splitlines()
    assert lines[0] == "timestamp,actor.email,action"
    assert len(lines) - 1 == panel.total
    assert "entries written" in panel.export_status.value


def test_timeline_counts_match(panel: al.explorer.Explorer) -> None:
    panel.actor.value = "bob@acme.example"
    panel.refresh()
    assert panel.figure is not None
    assert sum(sum(trace.y) for trace in panel.figure.data) == panel.total


def test_organization_is_a_search_qualifier(panel: al.explorer.Explorer) -> None:
    panel.search.value = f"org:{ORG}"
    panel.refresh()
    assert panel.total == panel.store.count(organization_id=ORG)
