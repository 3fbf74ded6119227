"""privilege_escalation: self-grants and new principals made admin, at the window's edges."""

from __future__ import annotations

import json

import polars as pl
import pytest

import auditlens as al
from auditlens.detect import privilege_escalation
from tests.detect.timeline import as_entries, evidence_back, timeline

IP = "10.0.0.5"


def role(minute: float, actor: str | None, target: str, before: str, after: str, **kw) -> tuple:
    target_id = kw.get("target_id", f"id-{target}")
    return (
        minute,
        "user.role_changed",
        kw.get("result", "success"),
        actor,
        IP,
        None,
        ("user", target_id, target),
        {"before": {"role": before}, "after": {"role": after}},
    )


def invite(minute: float, actor: str, who: str, as_role: str = "member") -> tuple:
    return (
        minute,
        "user.invited",
        "success",
        actor,
        IP,
        None,
        ("user", who, who),
        {"role": as_role},
    )


def test_self_grant_of_admin_is_critical() -> None:
    f = privilege_escalation(timeline(role(0, "eve@x.io", "Eve@X.io", "member", "admin")))
    assert f.height == 1
    row = f.row(0, named=True)
    assert row["severity"] == "critical" and row["subject"] == "eve@x.io"
    assert json.loads(row["details"])["reason"] == "self_grant"
    assert "granted themselves admin" in row["summary"]


def test_no_self_grant_for_others_lower_roles_or_refusals() -> None:
    assert (
        privilege_escalation(timeline(role(0, "bob@x.io", "eve@x.io", "member", "admin"))).height
        == 0
    )
    assert (
        privilege_escalation(timeline(role(0, "eve@x.io", "eve@x.io", "admin", "viewer"))).height
        == 0
    )
    refused = role(0, "eve@x.io", "eve@x.io", "member", "admin", result="failure")
    assert privilege_escalation(timeline(refused)).height == 0
    # a member added to an application as a developer is not administration
    dev = (
        0,
        "application.member_added",
        "success",
        "eve@x.io",
        IP,
        None,
        ("application", "app-1", "Storefront"),
        {"member": "eve@x.io", "role": "developer"},
    )
    assert privilege_escalation(timeline(dev)).height == 0
    owner = (*dev[:7], {"member": "eve@x.io", "role": "owner"})
    assert privilege_escalation(timeline(owner))["severity"].to_list() == ["critical"]


def test_imported_policy_attachments() -> None:
    # an importer's actor id is an ARN; the target is the bare user name
    tl = timeline(
        (
            0,
            "iam.attach_user_policy",
            "success",
            None,
            IP,
            "aws-cli/2.15.0",
            ("user", None, "alice"),
            {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        ),
    ).with_columns(pl.lit("arn:aws:iam::123456789012:user/alice").alias("actor_user_id"))
    f = privilege_escalation(tl)
    assert f["severity"].to_list() == ["critical"]
    # no privilege recorded: still a self-grant, high
    unknown = tl.with_columns(pl.lit(None, pl.Utf8).alias("details"))
    assert privilege_escalation(unknown)["severity"].to_list() == ["high"]


def test_new_principal_made_admin_within_the_window() -> None:
    # invited at 0, made owner at exactly 60 minutes: inside (the window is closed)
    tl = timeline(
        invite(0, "bob@x.io", "new@x.io"), role(60, "bob@x.io", "new@x.io", "member", "owner")
    )
    f = privilege_escalation(tl)
    assert f.height == 1 and f["subject"][0] == "new@x.io" and f["severity"][0] == "high"
    assert sorted(f["audit_ids"][0]) == ["e000", "e001"]
    assert json.loads(f["details"][0])["minutes_after_creation"] == 60
    late = timeline(
        invite(0, "bob@x.io", "new@x.io"), role(60.01, "bob@x.io", "new@x.io", "member", "owner")
    )
    assert privilege_escalation(late).height == 0
    assert privilege_escalation(late, window="2h").height == 1
    before = timeline(
        role(0, "bob@x.io", "new@x.io", "member", "owner"), invite(1, "bob@x.io", "new@x.io")
    )
    assert privilege_escalation(before).height == 0  # promoted, then re-invited: not new
    lower = timeline(
        invite(0, "bob@x.io", "new@x.io"), role(5, "bob@x.io", "new@x.io", "member", "viewer")
    )
    assert privilege_escalation(lower).height == 0


def test_invited_as_admin_and_matched_by_id() -> None:
    f = privilege_escalation(timeline(invite(0, "bob@x.io", "boss@x.io", as_role="admin")))
    assert f.height == 1 and f["audit_ids"].to_list() == [["e000"]]
    # the role change names the new account by id only
    by_id = timeline(
        (
            0,
            "user.invited",
            "success",
            "bob@x.io",
            IP,
            None,
            ("user", "u-77", "new@x.io"),
            {"role": "member"},
        ),
        (
            3,
            "user.role_changed",
            "success",
            "bob@x.io",
            IP,
            None,
            ("user", "u-77", None),
            {"before": {"role": "member"}, "after": {"role": "admin"}},
        ),
    )
    assert privilege_escalation(by_id)["subject"].to_list() == ["new@x.io"]


def test_organizations_are_kept_apart() -> None:
    tl = pl.concat(
        [
            timeline(invite(0, "bob@x.io", "new@x.io"), org="org-a"),
            timeline(role(5, "bob@x.io", "new@x.io", "member", "owner"), org="org-b").with_columns(
                pl.lit("e900").alias("audit_id")
            ),
        ]
    )
    assert privilege_escalation(tl).height == 0


def test_patterns_are_checked() -> None:
    with pytest.raises(al.FilterError, match="grant_actions"):
        privilege_escalation(timeline(invite(0, "a@x.io", "b@x.io")), grant_actions="(")


def test_through_the_store(store: al.AuditStore) -> None:
    tl = timeline(
        invite(0, "bob@x.io", "new@x.io"),
        role(6, "bob@x.io", "new@x.io", "member", "owner"),
        role(9, "eve@x.io", "eve@x.io", "member", "admin"),
    )
    store.append(as_entries(tl))
    f = store.detect("privilege_escalation")
    got = dict(zip(f["subject"].to_list(), evidence_back(f, tl), strict=True))
    assert got == {"new@x.io": ["e000", "e001"], "eve@x.io": ["e002"]}


def test_grants_at_the_same_instant_are_told_the_same_way_in_any_row_order() -> None:
    """Two admin grants in the same millisecond: the first by seq (then audit id) names the
    granter and the privilege, whatever order the rows come in."""
    tl = timeline(
        invite(0, "bob@x.io", "new@x.io"),
        role(5, "carol@x.io", "new@x.io", "member", "owner"),
        role(5, "bob@x.io", "new@x.io", "member", "admin"),
    ).with_columns(pl.Series("seq", [1, 3, 2]))
    told = {
        privilege_escalation(tl.sample(fraction=1.0, shuffle=True, seed=seed))["details"][0]
        for seed in range(8)
    }
    assert len(told) == 1
    details = json.loads(told.pop())
    assert (details["granted_by"], details["granted"]) == ("bob@x.io", "admin")  # seq 2 < 3
