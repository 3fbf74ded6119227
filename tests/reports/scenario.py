"""A month of one organization with known counts, plus entries that must not count.

Everything the report tests assert is derived here, by hand, not by auditlens.
"""

from __future__ import annotations

from typing import Any

import auditlens as al
from tests.helpers import ORG, ORG2, make_entry

START, END = "2025-01-01", "2025-01-31"
ADA = {
    "user_id": "a0000000-0000-4000-8000-000000000001",
    "email": "ada@acme.example",
    "type": "user",
}
BOB = {
    "user_id": "b0000000-0000-4000-8000-000000000002",
    "email": "bob@acme.example",
    "type": "user",
}
CAROL = {
    "user_id": "c0000000-0000-4000-8000-000000000003",
    "email": "carol@acme.example",
    "type": "user",
}
DAVE = {
    "user_id": "d0000000-0000-4000-8000-000000000004",
    "email": "dave@acme.example",
    "type": "user",
}
MALLORY = {
    "user_id": "e0000000-0000-4000-8000-000000000005",
    "email": "mallory@acme.example",
    "type": "user",
}
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=file:///etc/passwd>"


def _user(who: dict[str, str]) -> dict[str, str]:
    return {"type": "user", "id": who["user_id"], "name": who["email"]}


def _e(ts: str, actor: dict[str, str], action: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("result", "success")
    kw.setdefault("details", {})
    kw.setdefault("resource", {"type": "organization", "id": ORG, "name": "Acme Corp"})
    return make_entry(timestamp=ts, actor=actor, action=action, **kw)


def entries() -> list[dict[str, Any]]:
    out = [
        _e("2025-01-05T09:00:00Z", ADA, "user.invited", resource=_user(DAVE)),
        _e("2025-01-05T10:00:00Z", DAVE, "user.joined", resource=_user(DAVE)),
        _e(
            "2025-01-06T10:00:00Z",
            ADA,
            "user.role_changed",
            resource=_user(BOB),
            details={"before": {"role": "member"}, "after": {"role": "admin"}},
        ),
        _e(
            "2025-01-07T10:00:00Z",
            MALLORY,
            "user.role_changed",
            resource=_user(MALLORY),
            details={"before": {"role": "viewer"}, "after": {"role": "admin"}},
        ),
    ]
    # six failed sign-ins of carol within two minutes
    out += [
        _e(
            f"2025-01-10T10:0{i // 3}:{(i % 3) * 15:02d}Z",
            CAROL,
            "auth.failed",
            result="failure",
            resource=_user(CAROL),
            ip_address="198.51.100.7",
        )
        for i in range(6)
    ]
    out += [
        _e(
            "2025-01-10T11:00:00Z",
            ADA,
            "user.suspended",
            resource=_user(CAROL),
            details={"reason": "suspicious sign-ins"},
        ),
        _e("2025-01-11T10:00:00Z", CAROL, "auth.login", resource=_user(CAROL)),
        _e("2025-01-12T10:00:00Z", ADA, "user.removed", resource=_user(DAVE)),
        _e(
            "2025-01-15T10:00:00Z",
            BOB,
            "webhook.updated",
            resource={"type": "webhook", "id": "wh-1", "name": "Orders"},
            details={
                "before": {"url": "https://a.example/in", "enabled": True},
                "after": {"url": "https://a.example/in", "enabled": False},
            },
        ),
        _e(
            "2025-01-16T10:00:00Z",
            BOB,
            "application.updated",
            resource={"type": "application", "id": "app-1", "name": "Storefront"},
            details={"note": "no before/after recorded"},
        ),
        _e(
            "2025-01-20T10:00:00Z",
            BOB,
            "webhook.deleted",
            resource={"type": "webhook", "id": "wh-2", "name": "Billing"},
        ),
        _e(
            "2025-01-21T10:00:00Z",
            BOB,
            "webhook.created",
            resource={"type": "webhook", "id": "wh-3", "name": SCRIPT},
        ),
        _e(
            "2025-01-21T10:05:00Z",
            BOB,
            "webhook.created",
            resource={"type": "webhook", "id": "wh-4", "name": IMG},
        ),
    ]
    out += [
        _e(f"2025-01-{d:02d}T09:30:00Z", who, "auth.login", resource=_user(who))
        for d, who in ((2, ADA), (3, BOB), (8, ADA), (13, BOB), (22, ADA))
    ]
    # outside the period or the organization: must not count
    out += [
        _e("2024-12-20T10:00:00Z", CAROL, "auth.failed", result="failure", resource=_user(CAROL))
        for _ in range(3)
    ]
    out.append(
        _e(
            "2025-02-02T10:00:00Z",
            ADA,
            "user.role_changed",
            resource=_user(CAROL),
            details={"before": {"role": "viewer"}, "after": {"role": "admin"}},
        )
    )
    out += [
        _e(
            "2025-01-10T10:00:00Z",
            CAROL,
            "auth.failed",
            result="failure",
            organization_id=ORG2,
            resource=_user(CAROL),
        )
        for _ in range(4)
    ]
    return out


#: what the period of ORG holds, counted by hand from entries() above
EXPECTED = {
    "authentication": {"logins": 6, "failed_logins": 6, "accounts_targeted": 1},
    "role_changes": {"role_changes": 2, "admin_grants": 2, "self_changes": 1, "changers": 2},
    "provisioning": {
        "invited": 1,
        "joined": 1,
        "suspended": 1,
        "removed": 1,
        "activity_after_suspension": 1,
        "suspended_not_removed": 1,
    },
    "change_management": {
        "changes": 5,
        "changes_with_diff": 1,
        "changes_without_diff": 1,
        "deletions": 1,
    },
}
ROWS = 23  # entries of ORG in January 2025


def seed(store: al.AuditStore) -> None:
    store.append(entries())
