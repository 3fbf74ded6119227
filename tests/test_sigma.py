"""Sigma rules: the pack in rules/ fires on a small timeline (SQLite and PostgreSQL) and
not just below its threshold, selections are pushed down as Filters, the window boundary,
unsupported modifiers name the rule and field, and alerts check/watch run Sigma rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy.dialects import postgresql, sqlite
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from auditlens.query.compile import compile_filter
from auditlens.query.filters import Clause, Filter
from auditlens.sigma import detect, load_sigma, parse_sigma
from tests.helpers import JANE_ID, ORG, ORG2, make_entry

RULES = Path(__file__).parent.parent / "rules"
T0 = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)
BOB_ID = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _rule(stem: str) -> list[Any]:
    return load_sigma(RULES / f"{stem}.yml")


def _fired(store: al.AuditStore, stem: str) -> pl.DataFrame:
    return detect(store, _rule(stem))


def _failed(n: int, *, step: float = 20, **kw: Any) -> list[dict[str, Any]]:
    return [
        make_entry(
            action="auth.failed", result="failure", resource=None, timestamp=_at(i * step), **kw
        )
        for i in range(n)
    ]


def test_pack_loads_one_rule_per_file_and_hides_correlation_inputs() -> None:
    rules = load_sigma(RULES)
    assert sorted(r.title for r in rules) == [
        "Audit settings changed",
        "Brute force against one account",
        "Mass export by one actor",
        "Multi-factor authentication disabled or reset",
        "Password spray from one address",
        "Privilege self-grant",
    ]
    assert all(r.name == f"sigma:{r.id}" for r in rules)


@pytest.mark.parametrize(("n", "fires"), [(6, True), (5, False)])
def test_brute_force(store: al.AuditStore, n: int, fires: bool) -> None:
    store.append(_failed(n))  # n failures in 2 minutes for jane
    store.append(_failed(5, actor={"email": "bob@company.com", "type": "user"}))
    found = _fired(store, "brute_force")
    assert found.height == int(fires)
    if fires:
        row = found.row(0, named=True)
        assert (row["subject"], row["count"], row["severity"]) == ("jane@company.com", 6, "high")
        assert row["detector"] == "sigma:6a2f1c55-1b0e-4c6e-9a51-3d0f5a1e7b02"
        assert len(row["audit_ids"]) == 6


def test_store_detect_takes_sigma_rules(store: al.AuditStore) -> None:
    """``store.detect(sigma=...)`` runs the rules like ``al.sigma.detect``; filters narrow them."""
    store.append(_failed(6))  # jane: fires
    store.append(_failed(6, actor={"email": "bob@company.com", "type": "user"}))  # bob: fires
    found = store.detect(sigma=RULES / "brute_force.yml")
    assert sorted(found["subject"]) == ["bob@company.com", "jane@company.com"]
    assert found.equals(detect(store, RULES / "brute_force.yml"))
    only_jane = store.detect(sigma=[RULES / "brute_force.yml"], actor="jane@company.com")
    assert only_jane["subject"].to_list() == ["jane@company.com"]
    as_pandas = store.detect(sigma=str(RULES / "brute_force.yml"), backend="pandas")
    assert sorted(as_pandas["subject"]) == ["bob@company.com", "jane@company.com"]


def test_accounts_without_email_are_grouped_by_their_own_id(store: al.AuditStore) -> None:
    """SSH accounts and IAM principals have no email: ``actor`` groups them by their stable
    id, and accounts without any identity are never lumped together as one."""
    root = {"user_id": "sshd:web-1:root", "type": "user"}
    store.append(_failed(6, actor=root))  # one account guessed 6 times: fires
    for name in ("admin", "oracle", "test"):  # three accounts, 3 failures each: none fires
        store.append(_failed(3, actor={"user_id": f"sshd:web-1:{name}", "type": "user"}))
    found = _fired(store, "brute_force")
    assert found["subject"].to_list() == ["sshd:web-1:root"]
    assert found["count"].to_list() == [6]


def test_window_is_right_closed(store: al.AuditStore) -> None:
    # 6 failures with the first and the last exactly 5 minutes apart: the window (t − 5m, t]
    # holds 5 of them (pySigma's SQLite backend counts [t, t + 5m] in whole seconds: 6)
    store.append(_failed(6, step=60))
    assert _fired(store, "brute_force").height == 0
    store.append(
        [make_entry(action="auth.failed", result="failure", resource=None, timestamp=_at(299.999))]
    )
    assert _fired(store, "brute_force").height == 1


@pytest.mark.parametrize(("accounts", "fires"), [(5, True), (4, False)])
def test_password_spray(store: al.AuditStore, accounts: int, fires: bool) -> None:
    # a quieter address first (4 accounts): each address is counted on its own
    store.append(
        [
            make_entry(
                action="auth.failed",
                result="failure",
                resource=None,
                actor={"email": f"other{i % 4}@company.com", "type": "user"},
                ip_address="198.51.100.7",
                timestamp=_at(i * 10 - 5),
            )
            for i in range(12)
        ]
    )
    store.append(
        [
            make_entry(
                action="auth.failed",
                result="failure",
                resource=None,
                actor={"email": f"user{i % accounts}@company.com", "type": "user"},
                ip_address="203.0.113.9",
                timestamp=_at(i * 30),
            )
            for i in range(12)
        ]
    )
    found = _fired(store, "password_spray")
    assert found.height == int(fires)
    if fires:
        assert found["subject"].to_list() == ["203.0.113.9"]
        assert found["subject_type"].to_list() == ["ip_address"]


@pytest.mark.parametrize(
    ("action", "result", "fires"),
    [
        ("auth.mfa_disabled", "success", True),
        ("auth.mfa_reset", "success", True),
        ("auth.mfa_disabled", "failure", False),
        ("auth.mfa_enabled", "success", False),
    ],
)
def test_mfa_disabled(store: al.AuditStore, action: str, result: str, fires: bool) -> None:
    store.append([make_entry(action=action, result=result, resource=None)])
    assert _fired(store, "mfa_disabled").height == int(fires)


@pytest.mark.parametrize(
    ("action", "details", "fires"),
    [
        ("organization.settings_updated", {"setting": "audit_log.retention_days"}, True),
        ("organization.settings_updated", {"setting": "Data Retention"}, True),
        ("audit_log.retention_applied", {"removed": 10}, True),
        ("organization.settings_updated", {"setting": "billing_email"}, False),
    ],
)
def test_audit_settings_changed(
    store: al.AuditStore, action: str, details: dict[str, Any], fires: bool
) -> None:
    store.append(
        [
            make_entry(
                action=action,
                details=details,
                resource={"type": "organization", "id": ORG, "name": "Acme"},
            )
        ]
    )
    assert _fired(store, "audit_settings_changed").height == int(fires)


@pytest.mark.parametrize(
    ("target", "role", "fires"),
    [(JANE_ID, "admin", True), (BOB_ID, "admin", False), (JANE_ID, "member", False)],
)
def test_privilege_self_grant(store: al.AuditStore, target: str, role: str, fires: bool) -> None:
    store.append(
        [
            make_entry(
                action="user.role_changed",
                resource={"type": "user", "id": target, "name": "someone"},
                details={"before": {"role": "member"}, "after": {"role": role}},
            )
        ]
    )
    found = _fired(store, "privilege_self_grant")
    assert found.height == int(fires)
    if fires:
        assert found["severity"].to_list() == ["critical"]


@pytest.mark.parametrize(("n", "fires"), [(5, True), (4, False)])
def test_mass_export(store: al.AuditStore, n: int, fires: bool) -> None:
    store.append(
        [
            make_entry(action="audit_log.exported", resource=None, timestamp=_at(i * 600))
            for i in range(n)
        ]
    )
    assert _fired(store, "mass_export").height == int(fires)


def test_correlations_never_cross_organizations(store: al.AuditStore) -> None:
    store.append(_failed(3) + _failed(3, organization_id=ORG2))
    assert _fired(store, "brute_force").height == 0


def test_selections_are_pushed_down_as_filters() -> None:
    (rule,) = _rule("mfa_disabled")
    account, organization = rule.branches
    success = Clause("result", ("success",))
    assert account.filter == Filter(
        (Clause("action", ("auth.mfa_disabled", "auth.mfa_reset")), success)
    )
    assert account.residual == ()
    # details.<path> is what SQL filters cannot express: checked column-wise on what SQL returns
    assert organization.filter == Filter(
        (Clause("action", ("organization.settings_updated",)), success)
    )
    assert len(organization.residual) == 2
    branch = account
    sql = str(compile_filter(branch.filter, "sqlite").compile(dialect=sqlite.dialect()))
    assert "audit_entries.action" in sql and "audit_entries.result" in sql
    (settings,) = _rule("audit_settings_changed")
    assert [b.filter for b in settings.branches] == [
        Filter(
            (
                Clause("action", ("organization.settings_updated",)),
                Clause("text", ("audit", "retention")),
            )
        ),
        Filter((Clause("action", ("audit_log.retention_applied",)),)),
    ]
    compile_filter(settings.branches[0].filter, "postgresql").compile(dialect=postgresql.dialect())


def test_conditions_modifiers_and_negation() -> None:
    (rule,) = parse_sigma(
        """
title: Webhooks by outsiders
id: 00000000-0000-4000-8000-000000000001
logsource: {product: auditlens}
detection:
  hooks:
    action|startswith: webhook.
  staff:
    actor|endswith: '@company.com'
  office:
    ip_address|cidr: 10.0.0.0/8
  condition: hooks and not (staff or office)
"""
    )
    (branch,) = rule.branches
    lo, hi = al.query.filters.cidr_range("10.0.0.0/8")
    assert branch.filter == Filter(
        (
            Clause("action", ("webhook.*",)),
            Clause("actor", ("*@company.com",), negate=True),
            Clause("ip", ((lo, hi),), negate=True),
        )
    )
    (anyof,) = parse_sigma(
        """
title: Any of
id: 00000000-0000-4000-8000-000000000002
logsource: {product: auditlens}
detection:
  sel_a: {action: user.removed}
  sel_b: {action: webhook.deleted, result: success}
  condition: 1 of sel_*
"""
    )
    assert len(anyof.branches) == 2


def test_unsupported_modifier_names_rule_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "regex.yml"
    path.write_text(
        "title: Regex rule\nid: 00000000-0000-4000-8000-000000000003\nlogsource: {product: auditlens}\n"
        "detection:\n  sel:\n    action|re: 'auth\\..*'\n  condition: sel\n"
    )
    with pytest.raises(al.SigmaRuleError) as err:
        load_sigma(path)
    message = str(err.value)
    assert str(path) in message and ":6:" in message
    assert "Regex rule" in message and "00000000-0000-4000-8000-000000000003" in message
    assert "detection.sel.action|re" in message
    assert err.value.field == "detection.sel.action|re"


@pytest.mark.parametrize(
    ("detection", "field", "why"),
    [
        ("    resource.name|contains: prod\n", "detection.resource.name", "exact values only"),
        ("    hostname: web-1\n", "detection.sel.hostname", "unknown field"),
        ("    action: auth.fail?d\n", "detection.action", "single-character wildcard"),
    ],
)
def test_what_cannot_be_pushed_down_is_refused(detection: str, field: str, why: str) -> None:
    text = (
        "title: T\nid: 00000000-0000-4000-8000-000000000004\nlogsource: {product: auditlens}\ndetection:\n  sel:\n"
        + detection
        + "  condition: sel\n"
    )
    with pytest.raises(al.SigmaRuleError, match=why) as err:
        parse_sigma(text, "x.yml")
    assert err.value.field == field


def test_unsupported_correlation_condition() -> None:
    text = (
        "title: Base\nname: base\nid: 00000000-0000-4000-8000-000000000005\nlogsource: {product: auditlens}\n"
        "detection: {sel: {action: auth.login}, condition: sel}\n---\n"
        "title: Quiet\nid: 00000000-0000-4000-8000-000000000006\ncorrelation:\n  type: event_count\n  rules: [base]\n"
        "  timespan: 1h\n  condition: {lt: 1}\n"
    )
    with pytest.raises(al.SigmaRuleError, match="'lt' is not supported"):
        parse_sigma(text)


def test_alerts_check_cli_with_sigma(store: al.AuditStore, store_url: str) -> None:
    now = datetime.now(UTC)
    store.append(
        [
            make_entry(
                action="auth.failed",
                result="failure",
                resource=None,
                timestamp=(now - timedelta(minutes=30, seconds=-i)).isoformat(),
            )
            for i in range(10)
        ]
    )
    res = CliRunner().invoke(
        app, ["alerts", "check", "--sigma", str(RULES), "--since", "2h", "--db", store_url]
    )
    assert res.exit_code == 0, res.output
    assert "1 alert(s) from 6 rule(s)" in res.output
    assert "Brute force against one account" in res.output


def test_alert_rules_file_references_a_sigma_rule(store: al.AuditStore, tmp_path: Path) -> None:
    from auditlens import alerts

    (tmp_path / "self_grant.yml").write_text((RULES / "privilege_self_grant.yml").read_text())
    rules_file = tmp_path / "alerts.yml"
    rules_file.write_text(
        "alert: Self grant\ntrigger:\n  sigma: self_grant.yml\nseverity: critical\n"
        "notification:\n  email: sec@company.com\n"
    )
    (rule,) = alerts.load_rules(rules_file).rules
    assert rule.trigger.sigma is not None and rule.trigger.sigma.title == "Privilege self-grant"
    store.append(
        [
            make_entry(
                action="user.role_changed",
                timestamp=datetime.now(UTC).isoformat(),
                resource={"type": "user", "id": JANE_ID, "name": "jane"},
                details={"after": {"role": "owner"}},
            )
        ]
    )
    (alert,) = alerts.check(store, [rule], since="1h")
    assert (alert.rule, alert.severity, alert.count) == ("Self grant", "critical", 1)


def test_alert_rules_file_with_a_broken_sigma_rule(tmp_path: Path) -> None:
    from auditlens import alerts

    (tmp_path / "bad.yml").write_text(
        "title: Bad\nid: 00000000-0000-4000-8000-000000000007\nlogsource: {product: auditlens}\n"
        "detection:\n  sel:\n    action|base64: x\n  condition: sel\n"
    )
    (tmp_path / "alerts.yml").write_text(
        "alert: A\ntrigger:\n  sigma: bad.yml\nnotification:\n  email: sec@company.com\n"
    )
    with pytest.raises(al.RuleError, match=r"alerts.yml:3: trigger.sigma: .*base64"):
        alerts.load_rules(tmp_path / "alerts.yml")


def test_mfa_no_longer_required(store: al.AuditStore) -> None:
    store.append(
        [
            make_entry(
                action="organization.settings_updated",
                details={"setting": "require_mfa", "before": "true", "after": "false"},
            ),
            make_entry(
                action="organization.settings_updated",
                details={"setting": "require_mfa", "before": "false", "after": "true"},
            ),
        ]
    )
    assert _fired(store, "mfa_disabled").height == 1


def test_pack_on_the_demo_finds_the_injected_incidents(store: al.AuditStore) -> None:
    from auditlens.demo import generate

    data = generate(orgs=1, days=7, seed=3)
    store.append(data.entries)
    found = detect(store, load_sigma(RULES))
    by_rule = {
        title: set(found.filter(pl.col("detector") == f"sigma:{rid}")["subject"])
        for rid, title in ((r.id, r.title) for r in load_sigma(RULES))
    }
    incident = {i["kind"]: i for i in data.incidents}
    assert by_rule["Password spray from one address"] == {incident["password_spray"]["subject"]}
    assert incident["failed_login_spike"]["subject"] in by_rule["Brute force against one account"]
    off_hours = set(incident["off_hours_admin"]["audit_ids"])
    mfa = found.filter(pl.col("detector") == "sigma:6a2f1c55-1b0e-4c6e-9a51-3d0f5a1e7b04")
    assert off_hours & {a for ids in mfa["audit_ids"] for a in ids}
