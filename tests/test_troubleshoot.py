"""The three support questions, answered from the trail (both backends)."""

from __future__ import annotations

import pytest

import auditlens as al
from auditlens import troubleshoot
from tests.reports import scenario


@pytest.fixture
def seeded(store: al.AuditStore) -> al.AuditStore:
    scenario.seed(store)
    return store


def test_webhook_disabled_is_named_with_who_and_when(seeded: al.AuditStore) -> None:
    history = troubleshoot.resource_history(seeded, "wh-1")
    assert history["changes"].to_list() == ["enabled: True → False"]
    text = troubleshoot.webhook_diagnosis(seeded, "wh-1")
    assert text == (
        "Orders (wh-1): disabled by bob@acme.example at 2025-01-15 10:00 UTC "
        "(enabled: True → False)."
    )


def test_webhook_deleted_or_url_changed(seeded: al.AuditStore) -> None:
    assert troubleshoot.webhook_diagnosis(seeded, "wh-2") == (
        "Billing (wh-2): deleted by bob@acme.example at 2025-01-20 10:00 UTC."
    )
    seeded.append(
        [
            scenario._e(
                "2025-01-23T08:00:00Z",
                scenario.ADA,
                "webhook.updated",
                resource={"type": "webhook", "id": "wh-9", "name": "Ship"},
                details={
                    "before": {"actions": {"url": "https://a/in"}},
                    "after": {"actions": {"url": "https://b/in"}},
                },
            )
        ]
    )
    text = troubleshoot.webhook_diagnosis(seeded, "wh-9")
    assert "URL was changed by ada@acme.example" in text
    assert "actions.url: https://a/in → https://b/in" in text
    assert troubleshoot.webhook_diagnosis(seeded, "wh-nope") == "No entry mentions webhook wh-nope."


def test_who_changed_an_application(seeded: al.AuditStore) -> None:
    seeded.append(
        [
            scenario._e(
                "2025-01-24T08:00:00Z",
                scenario.ADA,
                "application.updated",
                resource={"type": "application", "id": "app-1", "name": "Storefront"},
                details={"before": {"rate_limit": 100}, "after": {"rate_limit": 500}},
            )
        ]
    )
    changes = troubleshoot.who_changed(seeded, resource_id="app-1")
    assert changes["actor"].to_list() == ["bob@acme.example", "ada@acme.example"]
    assert changes["changes"].to_list() == ["", "rate_limit: 100 → 500"]
    with pytest.raises(al.FilterError):
        troubleshoot.who_changed(seeded)


def test_access_investigation_explains_a_suspension(seeded: al.AuditStore) -> None:
    inv = troubleshoot.access_investigation(seeded, "carol@acme.example")
    actions = inv.events["action"].to_list()
    assert actions.count("auth.failed") == 13  # both organizations, December included
    assert "user.suspended" in actions
    assert inv.summary.startswith(
        "carol@acme.example was suspended by ada@acme.example on 2025-01-10 and has not "
        "been reinstated."
    )
    assert inv.events["timestamp"].is_sorted()


def test_access_investigation_of_a_removed_user_and_a_resource(seeded: al.AuditStore) -> None:
    inv = troubleshoot.access_investigation(seeded, "dave@acme.example", resource="Storefront")
    assert "dave@acme.example was removed by ada@acme.example on 2025-01-12." in inv.summary
    assert "No entry adds dave@acme.example as a member of Storefront." in inv.summary
    unknown = troubleshoot.access_investigation(seeded, "nobody@acme.example")
    assert unknown.summary.startswith("No sign-in, membership or role entry mentions")


def test_diff_of_nested_configurations() -> None:
    before = {"actions": {"url": "a", "retries": 3}, "conditions": {"events": ["x"]}}
    after = {"actions": {"url": "a", "retries": 5}, "conditions": {"events": ["x", "y"]}}
    assert troubleshoot.diff(before, after) == [
        "actions.retries: 3 → 5",
        "conditions.events: ['x'] → ['x', 'y']",
    ]
    assert troubleshoot.diff(None, {"a": 1}) == ["a: (none) → 1"]
