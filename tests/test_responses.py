"""Responses to findings: privilege reductions by someone else and triage entries handle them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl
import pytest

import auditlens as al
from auditlens import detect
from auditlens.detect.findings import empty_findings, finding_id
from auditlens.errors import FindingNotFoundError, TriageError
from auditlens.responses import match_responses, triage, with_responses
from tests.helpers import make_entry

ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def user(name: str) -> dict[str, str]:
    uid = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    return {"email": f"{name}@acme.example", "user_id": uid, "type": "user"}


ADMIN, ADMIN2 = user("admin"), user("second.admin")


def entry(at: datetime, action: str, actor: dict[str, str], **kw: Any) -> dict[str, Any]:
    e = make_entry(
        actor=actor,
        action=action,
        organization_id=ORG,
        timestamp=at.isoformat(),
        ip_address=kw.pop("ip", "198.51.100.7"),
        details=kw.pop("details", {}),
        result=kw.pop("result", "success"),
        **kw,
    )
    return e


def on(target: dict[str, str]) -> dict[str, str]:
    return {"type": "user", "id": target["user_id"], "name": target["email"]}


def brute_force(victim: dict[str, str], start: datetime) -> list[dict[str, Any]]:
    """Six failures 30 s apart from one address, then the password works."""
    fails = [
        entry(start + timedelta(seconds=30 * i), "auth.failed", victim, ip="203.0.113.9")
        for i in range(6)
    ]
    return [*fails, entry(start + timedelta(minutes=4), "auth.login", victim, ip="203.0.113.9")]


def brute_force_finding(store: al.AuditStore, subject: str) -> dict[str, Any]:
    found = with_responses(store, store.detect("brute_force_success"))
    rows: list[dict[str, Any]] = found.filter(
        (pl.col("subject") == subject) & (pl.col("subject_type") == "actor")
    ).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


def test_only_a_privilege_reduction_by_someone_else_or_a_triage_handles_a_finding(
    store: al.AuditStore,
) -> None:
    vic, vic2 = user("victim"), user("other.victim")
    store.append(brute_force(vic, T0))
    # six hours later the account is promoted: a role change, but not a response
    store.append(
        entry(
            T0 + timedelta(hours=6),
            "user.role_changed",
            ADMIN,
            resource=on(vic),
            details={"before": {"role": "viewer"}, "after": {"role": "member"}},
        )
    )
    f = brute_force_finding(store, vic["email"])
    assert (f["status"], f["handled_by"], f["disposition"]) == ("open", None, None)
    assert f["why"] == (
        "no suspension, removal, role lowering, session revocation or MFA reset of "
        "victim@acme.example by someone else within 7 days of the finding, and no triage"
    )

    # the (possibly compromised) account suspending itself is not a response by someone else
    store.append(entry(T0 + timedelta(hours=7), "user.suspended", vic, resource=on(vic)))
    assert brute_force_finding(store, vic["email"])["status"] == "open"

    # another admin suspends it: handled, by that entry
    (susp,) = store.append(
        entry(T0 + timedelta(hours=8), "user.suspended", ADMIN2, resource=on(vic))
    )
    f = brute_force_finding(store, vic["email"])
    assert (f["status"], f["handled_by"], f["disposition"], f["responder"]) == (
        "handled",
        susp.audit_id,
        "suspended",
        ADMIN2["email"],
    )
    assert f["why"] == (
        "victim@acme.example was suspended by second.admin@acme.example on 2025-01-06 "
        "17:00 UTC (user.suspended), within 7 days of the finding"
    )

    # a second victim is triaged: the subject's own triage does not count, an analyst's does
    store.append(brute_force(vic2, T0 + timedelta(days=1)))
    open_ = brute_force_finding(store, vic2["email"])
    assert open_["status"] == "open"
    triage(
        store,
        open_["finding_id"],
        "false_positive",
        note="it was me",
        by=vic2["email"],
        organization_id=ORG,
    )
    assert brute_force_finding(store, vic2["email"])["status"] == "open"
    done = triage(
        store,
        open_["finding_id"],
        "accepted_risk",
        note="test account, password rotated",
        by="analyst@acme.example",
        organization_id=ORG,
    )
    f = brute_force_finding(store, vic2["email"])
    assert (f["status"], f["handled_by"], f["disposition"], f["responder"]) == (
        "handled",
        done.audit_id,
        "accepted_risk",
        "analyst@acme.example",
    )
    assert f["why"].startswith("triaged as accepted_risk by analyst@acme.example on ")
    assert f["why"].endswith(": test account, password rotated")
    # the triage is an ordinary, chained audit entry
    (recorded,) = store.entries(f"action:audit_log.finding_triaged actor:{'analyst@acme.example'}")
    assert recorded["resource"] == {
        "type": "finding",
        "id": open_["finding_id"],
        "name": open_["summary"],
    }
    assert recorded["details"]["disposition"] == "accepted_risk"
    assert recorded["details"]["detector"] == "brute_force_success"
    assert recorded["details"]["subject"] == vic2["email"]
    # re-running detection gives the same ids (the triage still points at its finding)
    again = store.detect("all")["finding_id"].sort().to_list()
    assert again == store.detect("all")["finding_id"].sort().to_list()
    assert open_["finding_id"] in again


def test_triage_refuses_bad_requests_and_unknown_findings(
    store: al.AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append(brute_force(user("victim"), T0))
    fid = store.detect("brute_force_success")["finding_id"][0]
    with pytest.raises(TriageError, match="one of false_positive, resolved, accepted_risk"):
        triage(store, fid, "ignored", note="x", organization_id=ORG)
    with pytest.raises(TriageError, match="needs a note"):
        triage(store, fid, "resolved", note="  ", organization_id=ORG)
    with pytest.raises(TriageError, match="organization_id"):
        triage(store, fid, "resolved", note="x")
    with pytest.raises(FindingNotFoundError, match="no finding 'feedfeedfeedfeed'"):
        triage(store, "feedfeedfeedfeed", "resolved", note="x", organization_id=ORG)
    with pytest.raises(FindingNotFoundError):  # the right id, another organization
        triage(store, fid, "resolved", note="x", organization_id="other-org")
    assert store.count("action:audit_log.finding_triaged") == 0  # nothing was written
    # without `by`, the reviewer comes from $AUDITLENS_ACTOR, as for every review entry
    monkeypatch.setenv("AUDITLENS_ACTOR", "analyst@acme.example")
    triage(store, fid, "resolved", note="reset", findings=store.detect("all"))
    (e,) = store.entries("action:audit_log.finding_triaged")
    assert e["actor"]["email"] == "analyst@acme.example"
    assert al.triage is triage  # exported at the top level


# -- frame-level rules (no store) --------------------------------------------------------
def finding(subject: str = "victim@acme.example", subject_type: str = "actor") -> pl.DataFrame:
    return empty_findings().vstack(
        pl.DataFrame(
            {
                "finding_id": ["f1"],
                "detector": ["brute_force_success"],
                "severity": ["critical"],
                "organization_id": [ORG],
                "subject_type": [subject_type],
                "subject": [subject],
                "window_start": [T0],
                "window_end": [T0 + timedelta(minutes=4)],
                "count": [7],
                "audit_ids": [["e1"]],
                "summary": ["brute force"],
                "details": ["{}"],
            },
            schema=empty_findings().schema,
        )
    )


def response(
    action: str,
    at: datetime = T0 + timedelta(hours=1),
    *,
    target: str | None = "victim@acme.example",
    target_id: str | None = None,
    actor: str = "admin@acme.example",
    details: str = "{}",
    audit_id: str = "r1",
    resource_type: str = "user",
) -> dict[str, Any]:
    return {
        "audit_id": audit_id,
        "timestamp": at,
        "action": action,
        "result": "success",
        "organization_id": ORG,
        "actor_email": actor,
        "actor_user_id": None,
        "resource_type": resource_type,
        "resource_id": target_id,
        "resource_name": target,
        "details": details,
    }


def outcome(rows: list[dict[str, Any]], found: pl.DataFrame | None = None, **kw: Any) -> Any:
    out = match_responses(finding() if found is None else found, pl.DataFrame(rows), **kw)
    return out.select("status", "handled_by", "disposition").row(0)


def role(before: str, after: str) -> str:
    return f'{{"before": {{"role": "{before}"}}, "after": {{"role": "{after}"}}}}'


def test_role_changes_count_only_when_the_role_goes_down() -> None:
    for before, after, expected in (
        ("viewer", "member", ("open", None, None)),
        ("member", "admin", ("open", None, None)),
        ("admin", "member", ("handled", "r1", "role_lowered")),
        ("Owner", "viewer", ("handled", "r1", "role_lowered")),
        ("member", "member", ("open", None, None)),
        ("member", "custom", ("open", None, None)),  # unknown roles: no order, no response
    ):
        assert outcome([response("user.role_changed", details=role(before, after))]) == expected
    found = match_responses(
        finding(), pl.DataFrame([response("user.role_changed", details=role("admin", "viewer"))])
    )
    assert found["why"][0].startswith(
        "victim@acme.example had their role lowered from admin to viewer by admin@acme.example"
    )


def test_every_reduction_kind_and_the_target_by_user_id() -> None:
    for action, disposition in (
        ("user.removed", "removed"),
        ("auth.sessions_revoked", "sessions_revoked"),
        ("auth.mfa_reset", "mfa_reset"),
    ):
        assert outcome([response(action)]) == ("handled", "r1", disposition)
    # a finding about a user id is matched by the response's resource id
    by_id = finding(subject="u-victim")
    rows = [response("user.suspended", target=None, target_id="u-victim")]
    assert outcome(rows, by_id) == ("handled", "r1", "suspended")
    # not a reduction: a password reset, a failed suspension, another user's suspension
    failed = {**response("user.suspended"), "result": "failure"}
    assert outcome([response("auth.password_reset"), failed]) == ("open", None, None)
    assert outcome([response("user.suspended", target="bob@acme.example")])[0] == "open"


def test_the_response_window_is_counted_from_the_end_of_the_finding() -> None:
    late = T0 + timedelta(minutes=4, days=7, seconds=1)
    assert outcome([response("user.suspended", at=late)])[0] == "open"
    assert outcome([response("user.suspended", at=late)], window="8d")[0] == "handled"
    before = T0 - timedelta(minutes=1)  # a suspension before the finding answers something else
    assert outcome([response("user.suspended", at=before)])[0] == "open"
    out = match_responses(
        finding(), pl.DataFrame([response("user.removed", at=late)]), window="30d"
    )
    assert "within 30 days of the finding" in out["why"][0]


def test_first_reduction_counts_and_the_latest_triage_wins_over_it() -> None:
    early, later = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    rows = [
        response("user.removed", at=later, audit_id="r2"),
        response("user.suspended", at=early, audit_id="r1"),
    ]
    assert outcome(rows) == ("handled", "r1", "suspended")

    def tri(disposition: str, at: datetime, audit_id: str) -> dict[str, Any]:
        return response(
            "audit_log.finding_triaged",
            at=at,
            target=None,
            target_id="f1",
            resource_type="finding",
            details=f'{{"disposition": "{disposition}", "note": "n"}}',
            audit_id=audit_id,
            actor="analyst@acme.example",
        )

    rows += [tri("accepted_risk", early, "t1"), tri("resolved", later, "t2")]
    assert outcome(rows) == ("handled", "t2", "resolved")


def test_ip_findings_are_handled_only_by_triage() -> None:
    spray = finding(subject="203.0.113.9", subject_type="ip")
    assert outcome([response("user.suspended", target="203.0.113.9")], spray)[0] == "open"
    out = match_responses(spray, pl.DataFrame([response("user.suspended")]))
    assert out["why"][0] == "a finding about an ip is handled only by a triage; none recorded"


def test_pandas_in_pandas_out() -> None:
    out = match_responses(finding().to_pandas(), pd.DataFrame([response("user.suspended")]))
    assert isinstance(out, pd.DataFrame)
    assert out["status"].tolist() == ["handled"]


# -- finding ids ---------------------------------------------------------------------------
def test_finding_ids_depend_on_the_evidence_not_on_row_order_or_later_entries() -> None:
    vic = user("victim")
    rows = [
        {
            "audit_id": e["audit_id"],
            "timestamp": datetime.fromisoformat(e["timestamp"]),
            "action": e["action"],
            "result": e["result"],
            "organization_id": ORG,
            "actor_email": vic["email"],
            "actor_user_id": vic["user_id"],
            "ip_address": e["ip_address"],
        }
        for e in brute_force(vic, T0)
    ]
    frame = pl.DataFrame(rows)
    ids = detect.run_all(frame)["finding_id"].sort().to_list()
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=random.Random(3).randint(0, 99))
    assert detect.run_all(shuffled)["finding_id"].sort().to_list() == ids
    # the spike grows with two more failures: same start, same first evidence, same id
    more = [
        {**rows[0], "audit_id": f"late-{i}", "timestamp": T0 + timedelta(seconds=200 + i)}
        for i in range(2)
    ]
    grown = detect.failed_login_spikes(pl.concat([frame, pl.DataFrame(more)]))
    assert (
        grown["finding_id"].to_list() == detect.failed_login_spikes(frame)["finding_id"].to_list()
    )
    assert grown["count"].to_list() != detect.failed_login_spikes(frame)["count"].to_list()
    # the frame's ids are the documented function of their parts
    spike = detect.failed_login_spikes(frame).row(0, named=True)
    assert spike["finding_id"] == finding_id(
        "failed_login_spikes",
        ORG,
        "actor",
        vic["email"],
        int(spike["window_start"].timestamp() * 1000),
        spike["audit_ids"][0],
    )


def test_two_findings_about_the_same_first_action_get_two_ids() -> None:
    # suspended, then removed, then the account acts: one finding per stop, same first action
    vic = user("victim")
    base = {"organization_id": ORG, "result": "success", "actor_type": "user"}
    frame = pl.DataFrame(
        [
            {**base, "audit_id": "s", "timestamp": T0, "action": "user.suspended",
             "actor_email": "admin@acme.example", "resource_id": vic["user_id"],
             "resource_name": vic["email"]},
            {**base, "audit_id": "r", "timestamp": T0 + timedelta(hours=1),
             "action": "user.removed", "actor_email": "admin@acme.example",
             "resource_id": vic["user_id"], "resource_name": vic["email"]},
            {**base, "audit_id": "a", "timestamp": T0 + timedelta(hours=2),
             "action": "webhook.updated", "actor_email": vic["email"],
             "actor_user_id": vic["user_id"]},
        ]
    )  # fmt: skip
    found = detect.unusual_access(frame)
    assert found.height == 2
    assert found["finding_id"].n_unique() == 2
