"""The three support questions, answered from the trail, one organization at a time
(both backends)."""

from __future__ import annotations

import pytest

import auditlens as al
from auditlens import troubleshoot
from auditlens.errors import AmbiguousOrganizationError
from tests.helpers import ORG, ORG2, make_entry
from tests.reports import scenario

GLOBEX = "0662b0e0-64ce-4449-886d-a06333d692dc"
INES = {"user_id": "11111111-0000-4000-8000-000000000001", "email": "ines.costa@globex.example"}
SOFIA = {"user_id": "11111111-0000-4000-8000-000000000002", "email": "sofia.tanaka@globex.example"}
MILA = {"user_id": "11111111-0000-4000-8000-000000000003", "email": "mila.chen@globex.example"}


@pytest.fixture
def seeded(store: al.AuditStore) -> al.AuditStore:
    scenario.seed(store)
    return store


def _globex(ts: str, actor: dict[str, str], action: str, **kw: object) -> dict[str, object]:
    kw.setdefault("resource", {"type": "organization", "id": GLOBEX, "name": "Globex"})
    kw.setdefault("details", {})
    return make_entry(
        timestamp=ts,
        actor={**actor, "type": "user"},
        action=action,
        organization_id=GLOBEX,
        **kw,
    )


def _target(who: dict[str, str]) -> dict[str, str]:
    return {"type": "user", "id": who["user_id"], "name": who["email"]}


def test_webhook_disabled_is_named_with_who_and_when(seeded: al.AuditStore) -> None:
    history = troubleshoot.resource_history(seeded, "wh-1")
    assert history.found and history.organization_id == ORG
    assert history.timeline["changes"].to_list() == ["enabled: True → False"]
    assert history.summary.startswith("Orders (wh-1): 1 entry from 2025-01-15 to 2025-01-15")
    diagnosis = troubleshoot.webhook_diagnosis(seeded, "wh-1")
    assert isinstance(diagnosis, troubleshoot.WebhookDiagnosis)
    assert (diagnosis.found, diagnosis.cause) == (True, "disabled")
    assert (
        diagnosis.summary
        == str(diagnosis)
        == (
            "Orders (wh-1): disabled by bob@acme.example at 2025-01-15 10:00 UTC "
            "(enabled: True → False)."
        )
    )
    assert diagnosis.timeline["action"].to_list() == ["webhook.updated"]


def test_webhook_deleted_url_changed_or_not_found(seeded: al.AuditStore) -> None:
    deleted = troubleshoot.webhook_diagnosis(seeded, "wh-2")
    assert (deleted.cause, deleted.summary) == (
        "deleted",
        "Billing (wh-2): deleted by bob@acme.example at 2025-01-20 10:00 UTC.",
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
    moved = troubleshoot.webhook_diagnosis(seeded, "wh-9")
    assert moved.cause == "url_changed"
    assert "URL was changed by ada@acme.example" in moved.summary
    assert "actions.url: https://a/in → https://b/in" in moved.summary
    missing = troubleshoot.webhook_diagnosis(seeded, "wh-nope")
    assert not isinstance(missing, str)
    assert (missing.found, missing.cause, missing.timeline.height) == (False, "not_found", 0)
    assert missing.summary == "No entry mentions webhook wh-nope."


def test_a_re_enabled_webhook_is_not_reported_disabled(seeded: al.AuditStore) -> None:
    seeded.append(
        [
            scenario._e(
                "2025-01-16T09:00:00Z",
                scenario.BOB,
                "webhook.updated",
                resource={"type": "webhook", "id": "wh-1", "name": "Orders"},
                details={"before": {"enabled": False}, "after": {"enabled": True}},
            )
        ]
    )
    diagnosis = troubleshoot.webhook_diagnosis(seeded, "wh-1")
    assert diagnosis.cause == "unclear"
    assert "disabled by" not in diagnosis.summary


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
    assert changes.timeline["actor"].to_list() == ["bob@acme.example", "ada@acme.example"]
    assert changes.timeline["changes"].to_list() == ["", "rate_limit: 100 → 500"]
    assert changes.actors == ["bob@acme.example", "ada@acme.example"]
    assert changes.summary == (
        "Storefront (app-1): 2 changes by bob@acme.example, ada@acme.example between "
        "2025-01-16 and 2025-01-24; the last by ada@acme.example at 2025-01-24 08:00 UTC: "
        "rate_limit: 100 → 500."
    )
    none = troubleshoot.who_changed(seeded, application_id="app-none")
    assert (none.found, none.summary) == (False, "No change to app-none is recorded.")
    with pytest.raises(al.FilterError):
        troubleshoot.who_changed(seeded)


def test_a_user_in_two_organizations_needs_one(seeded: al.AuditStore) -> None:
    with pytest.raises(AmbiguousOrganizationError) as err:
        troubleshoot.access_investigation(seeded, "carol@acme.example")
    assert err.value.organizations == sorted([ORG, ORG2])
    assert isinstance(err.value, al.FilterError)
    message = str(err.value)
    assert ORG in message and ORG2 in message and "pass organization_id" in message


def test_access_investigation_explains_a_suspension(seeded: al.AuditStore) -> None:
    inv = troubleshoot.access_investigation(seeded, "carol@acme.example", organization_id=ORG)
    assert inv.found and inv.organization_id == ORG
    assert set(inv.timeline["organization_id"].to_list()) == {ORG}
    actions = inv.timeline["action"].to_list()
    assert actions.count("auth.failed") == 6 + 3  # January and December, ORG only
    assert inv.to_user["action"].to_list().count("user.suspended") == 1
    assert inv.by_user.is_empty()
    assert inv.summary.startswith(
        "ada@acme.example suspended carol@acme.example on 2025-01-10; no later entry "
        "reinstates the account. Yet carol@acme.example signed in successfully on 2025-01-11, "
        "after being suspended: check how."
    )
    assert inv.timeline["timestamp"].is_sorted()
    assert inv.events.equals(inv.timeline)


def test_what_the_user_did_is_not_read_as_done_to_them(store: al.AuditStore) -> None:
    store.append(
        [
            _globex("2025-03-03T09:00:00Z", INES, "auth.login"),
            _globex("2025-03-03T10:00:00Z", INES, "user.suspended", resource=_target(SOFIA)),
            _globex(
                "2025-03-03T10:05:00Z",
                INES,
                "user.role_changed",
                resource=_target(SOFIA),
                details={"before": {"role": "admin"}, "after": {"role": "viewer"}},
            ),
        ]
    )
    inv = troubleshoot.access_investigation(store, "ines.costa@globex.example")
    assert inv.summary == (
        "Nothing in the trail blocks ines.costa@globex.example. "
        "Last successful sign-in on 2025-03-03 09:00. "
        "ines.costa@globex.example suspended sofia.tanaka@globex.example on 2025-03-03. "
        "ines.costa@globex.example also changed the role of 1 user(s)."
    )
    assert "suspended ines.costa" not in inv.summary and "by ines.costa" not in inv.summary
    assert inv.by_user["action"].to_list() == ["user.suspended", "user.role_changed"]
    assert inv.to_user["action"].to_list() == ["auth.login"]

    victim = troubleshoot.access_investigation(store, "sofia.tanaka@globex.example")
    assert victim.summary.startswith(
        "ines.costa@globex.example suspended sofia.tanaka@globex.example on 2025-03-03; "
        "no later entry reinstates the account. ines.costa@globex.example last changed "
        "sofia.tanaka@globex.example's role on 2025-03-03 (role: admin → viewer)."
    )

    store.append([_globex("2025-03-05T10:00:00Z", MILA, "user.suspended", resource=_target(INES))])
    now = troubleshoot.access_investigation(store, INES["user_id"])  # by user id too
    assert now.summary.startswith(
        f"mila.chen@globex.example suspended {INES['user_id']} on 2025-03-05; "
        "no later entry reinstates the account."
    )
    assert "suspended sofia.tanaka@globex.example on 2025-03-03" in now.summary


def test_a_resource_name_in_several_organizations_is_not_mixed(seeded: al.AuditStore) -> None:
    seeded.append(
        [
            scenario._e(
                "2025-01-17T10:00:00Z",
                scenario.BOB,
                "application.deleted",
                organization_id=ORG2,
                resource={"type": "application", "id": "app-9", "name": "Storefront"},
            ),
            scenario._e(
                "2025-01-18T10:00:00Z",
                scenario.ADA,
                "application.member_added",
                resource={"type": "application", "id": "app-1", "name": "Storefront"},
                details={"member": "bob@acme.example", "role": "developer"},
            ),
        ]
    )
    with pytest.raises(AmbiguousOrganizationError) as err:
        troubleshoot.access_investigation(seeded, "nobody@acme.example", resource="Storefront")
    assert err.value.name == "Storefront"
    assert err.value.organizations == sorted([ORG, ORG2])
    only = troubleshoot.access_investigation(
        seeded, "nobody@acme.example", resource="Storefront", organization_id=ORG2
    )
    assert not only.found
    assert set(only.timeline["organization_id"].to_list()) == {ORG2}
    assert only.summary == (
        # ORG2 records no organization entry, hence no name: the id alone
        f"No sign-in, membership or role entry mentions nobody@acme.example in organization "
        f"{ORG2}: check the address or id. "
        "bob@acme.example deleted Storefront on 2025-01-17."
    )
    # a user of one organization picks it: dave is only in ORG, so app-9 is not his
    dave = troubleshoot.access_investigation(seeded, "dave@acme.example", resource="Storefront")
    assert dave.organization_id == ORG
    assert "dave@acme.example was removed" not in dave.summary
    assert dave.summary.startswith("ada@acme.example removed dave@acme.example on 2025-01-12;")
    assert "No entry adds dave@acme.example as a member of Storefront." in dave.summary
    assert "deleted Storefront" not in dave.summary


def test_a_webhook_id_in_several_organizations(store: al.AuditStore) -> None:
    hook = {"type": "webhook", "id": "wh-0042", "name": "Payments Webhook"}
    store.append(
        [
            _globex(
                "2025-03-01T10:00:00Z",
                MILA,
                "webhook.updated",
                resource=hook,
                details={"before": {"enabled": True}, "after": {"enabled": False}},
            ),
            _globex("2025-03-01T09:00:00Z", MILA, "organization.settings_updated"),
            make_entry(
                timestamp="2025-03-02T10:00:00Z",
                action="webhook.deleted",
                resource=hook,
                organization_id=ORG,
            ),
        ]
    )
    with pytest.raises(AmbiguousOrganizationError) as err:
        troubleshoot.webhook_diagnosis(store, "wh-0042")
    assert err.value.labels == [f"Globex ({GLOBEX})", ORG]  # sorted by id; names when known
    for name in (GLOBEX, "Globex", GLOBEX.upper()):
        d = troubleshoot.webhook_diagnosis(store, "wh-0042", organization_id=name)
        assert d.cause == "disabled" and d.organization_id == GLOBEX
        assert set(d.timeline["organization_id"].to_list()) == {GLOBEX}
    other = troubleshoot.webhook_diagnosis(store, "wh-0042", organization_id=ORG)
    assert other.cause == "deleted"
    with pytest.raises(al.FilterError, match="no organization is named 'Initech'"):
        troubleshoot.resource_history(store, "wh-0042", organization_id="Initech")
    missing = troubleshoot.webhook_diagnosis(store, "wh-1", organization_id=GLOBEX)
    assert missing.summary == f"No entry mentions webhook wh-1 in organization Globex ({GLOBEX})."


def test_notebook_rendering_escapes_names(seeded: al.AuditStore) -> None:
    md = troubleshoot.resource_history(seeded, "wh-3")._repr_markdown_()
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "1 entry in `.timeline`" in md


def test_diff_of_nested_configurations() -> None:
    before = {"actions": {"url": "a", "retries": 3}, "conditions": {"events": ["x"]}}
    after = {"actions": {"url": "a", "retries": 5}, "conditions": {"events": ["x", "y"]}}
    assert troubleshoot.diff(before, after) == [
        "actions.retries: 3 → 5",
        "conditions.events: ['x'] → ['x', 'y']",
    ]
    assert troubleshoot.diff(None, {"a": 1}) == ["a: (none) → 1"]
