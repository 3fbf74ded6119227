"""The explorer panel, driven through its widgets as a user would (no browser needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import auditlens as al
from tests.helpers import ORG, ORG2
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


def _csv(path: Path | None) -> list[dict[str, str]]:
    import csv

    assert path is not None
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_organization_dropdown_lists_each_organization_by_name_and_id(
    store: al.AuditStore, tmp_path: Path
) -> None:
    scenario.seed(store)
    al.context.set_org_profile(store, ORG2, name="Globex")
    panel = al.explore(store, export_dir=tmp_path)
    assert list(panel.organization.options) == [
        ("all organizations", al.explorer.ALL_ORGANIZATIONS),
        (f"Globex ({ORG2})", ORG2),  # named from the stored context, named ones first
        (ORG, ORG),  # no context set: its id
    ]
    assert panel.organization.value == al.explorer.ALL_ORGANIZATIONS
    panel.refresh()
    assert panel.query == ""
    assert panel.total == store.count()


def test_organization_filter_narrows_counts_timeline_and_export_to_one_tenant(
    panel: al.explorer.Explorer, store: al.AuditStore
) -> None:
    panel.category.value = "authentication"
    panel.export_fields.value = ("timestamp", "organization_id", "action")
    panel.refresh()
    both = panel.total
    assert both == store.count(category="authentication")
    panel.organization.value = ORG2
    panel.refresh()
    assert panel.query == f"organization_id:{ORG2} category:authentication"
    assert panel.total == store.count(organization_id=ORG2) == 4 < both
    assert list(panel.frame["action"]) == ["auth.failed"] * 4
    assert panel.figure is not None
    assert sum(sum(trace.y) for trace in panel.figure.data) == 4
    rows = _csv(panel.export())
    assert len(rows) == 4
    assert {r["organization_id"] for r in rows} == {ORG2}
    panel.organization.value = ORG
    panel.refresh()
    assert panel.total == both - 4 == store.count(organization_id=ORG, category="authentication")
    rows = _csv(panel.export())
    assert len(rows) == panel.total
    assert {r["organization_id"] for r in rows} == {ORG}


def test_export_follows_filters_changed_since_the_last_search(
    panel: al.explorer.Explorer,
) -> None:
    panel.export_fields.value = ("timestamp", "organization_id")
    panel.refresh()  # everything
    panel.organization.value = ORG2  # then pick a tenant and export without searching again
    rows = _csv(panel.export())
    assert {r["organization_id"] for r in rows} == {ORG2}
    assert len(rows) == 4
    assert panel.total == 4  # the table was brought up to date too


def test_reload_organizations_keeps_the_choice(
    panel: al.explorer.Explorer, store: al.AuditStore
) -> None:
    panel.organization.value = ORG2
    al.context.set_org_profile(store, ORG2, name="Globex")
    panel.reload_organizations()
    assert (f"Globex ({ORG2})", ORG2) in panel.organization.options
    assert panel.organization.value == ORG2


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (None, None, "Custom range: choose a start date and an end date."),
        (None, date(2025, 1, 10), "Custom range: choose a start date."),
        (date(2025, 1, 10), None, "Custom range: choose an end date."),
        (
            date(2025, 1, 20),
            date(2025, 1, 10),
            "Custom range: the start (2025-01-20) is after the end (2025-01-10).",
        ),
    ],
    ids=["no-dates", "no-start", "no-end", "reversed"],
)
def test_an_incomplete_or_reversed_custom_range_says_so_and_runs_nothing(
    panel: al.explorer.Explorer,
    start: date | None,
    end: date | None,
    message: str,
) -> None:
    panel.refresh()  # a first search: everything
    assert panel.total > 0 and panel.frame is not None
    panel.preset.value = "custom"
    panel.start.value = start
    panel.end.value = end
    panel.refresh()
    assert message in panel.status.value
    assert "color:#b00020" in panel.status.value
    assert "entries match" not in panel.status.value
    # not broadened to everything, nor left showing the previous results
    assert panel.problem == message
    assert panel.total == 0 and panel.frame is None and panel.table.value == ""
    assert panel.figure is None
    assert panel.prev_button.disabled and panel.next_button.disabled
    assert panel.export() is None
    assert panel.last_export is None
    assert message in panel.export_status.value and "Nothing exported" in panel.export_status.value
    assert list(panel.export_dir.glob("audit-export-*")) == []
    # fixed: the search runs again
    panel.start.value, panel.end.value = date(2025, 1, 10), date(2025, 1, 10)
    panel.refresh()
    assert panel.problem is None
    assert panel.total == 6 + 4 + 1
    assert "11 entries match" in panel.status.value


def test_a_custom_range_ending_in_the_future_runs_and_is_labelled(
    panel: al.explorer.Explorer, store: al.AuditStore
) -> None:
    panel.preset.value = "custom"  # the panel's today is 2025-01-31
    panel.start.value, panel.end.value = date(2025, 1, 30), date(2025, 2, 28)
    panel.refresh()
    assert panel.total == store.count(start="2025-01-30", end="2025-02-28") == 1
    assert "(the end, 2025-02-28, is in the future)" in panel.status.value
    panel.end.value = date(2025, 1, 31)
    panel.refresh()
    assert "in the future" not in panel.status.value
