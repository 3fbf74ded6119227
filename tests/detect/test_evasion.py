"""defence_evasion: logging stopped, MFA switched off, alert destinations disabled."""

from __future__ import annotations

import json

import polars as pl
import pytest

import auditlens as al
from auditlens.detect import defence_evasion
from tests.detect.timeline import as_entries, evidence_back, timeline

IP = "10.0.0.5"
ORG_RES = ("organization", "org-1", "Acme")


def setting(minute: float, name: str, before: str, after: str, actor: str = "adm@x.io") -> tuple:
    return (
        minute,
        "organization.settings_updated",
        "success",
        actor,
        IP,
        None,
        ORG_RES,
        {"setting": name, "before": before, "after": after},
    )


def hook(minute: float, name: str, enabled: bool, url: str = "https://hooks.partner1.example/in"):
    before = {"actions": {"url": url, "enabled": True}}
    after = {"actions": {"url": url, "enabled": enabled}}
    return (
        minute,
        "webhook.updated",
        "success",
        "adm@x.io",
        IP,
        None,
        ("webhook", "wh-1", name),
        {"before": before, "after": after},
    )


def reasons(f: pl.DataFrame) -> list[str]:
    return [json.loads(d)["reason"] for d in f["details"].to_list()]


@pytest.mark.parametrize(
    ("action", "reason", "severity"),
    [
        ("cloudtrail.stop_logging", "logging_disabled", "critical"),
        ("cloudtrail.delete_trail", "logging_disabled", "critical"),
        ("guardduty.delete_detector", "logging_disabled", "critical"),
        ("audit_log_streaming.destroy", "logging_disabled", "critical"),
        ("iam.deactivate_mfa_device", "mfa_disabled", "high"),
        ("iam.delete_virtual_mfa_device", "mfa_disabled", "high"),
        ("org.disable_two_factor_requirement", "mfa_disabled", "high"),
        ("user.mfa.factor.deactivate", "mfa_disabled", "high"),
        ("cloudwatch.delete_alarms", "alerting_disabled", "high"),
        ("events.disable_rule", "alerting_disabled", "high"),
    ],
)
def test_imported_actions(action: str, reason: str, severity: str) -> None:
    f = defence_evasion(timeline((0, action, "success", "eve@x.io", IP)))
    assert reasons(f) == [reason] and f["severity"].to_list() == [severity]


def test_ordinary_actions_do_not_fire() -> None:
    quiet = timeline(
        (0, "auth.mfa_reset", "success", "adm@x.io", IP),  # a response, not evasion
        (1, "auth.mfa_enabled", "success", "adm@x.io", IP),
        (2, "cloudtrail.lookup_events", "success", "adm@x.io", IP),
        (3, "webhook.deleted", "success", "adm@x.io", IP, None, ("webhook", "wh-9", "CRM Webhook")),
        hook(4, "Billing Webhook", enabled=False),
        hook(5, "Security Alerts", enabled=True),
        setting(6, "session_timeout_minutes", "30", "60"),
        setting(7, "require_mfa", "false", "true"),
        setting(8, "require_mfa", "30", "60"),
    )
    assert defence_evasion(quiet).height == 0


def test_settings_and_alert_webhooks() -> None:
    f = defence_evasion(timeline(setting(0, "audit_log_retention_days", "365", "7")))
    assert reasons(f) == ["logging_disabled"] and f["severity"][0] == "critical"
    for off in ("false", "off", "optional"):
        f = defence_evasion(timeline(setting(0, "require_mfa", "true", off)))
        assert reasons(f) == ["mfa_disabled"], off
    assert reasons(defence_evasion(timeline(hook(0, "Security Alerts", enabled=False)))) == [
        "alerting_disabled"
    ]
    by_url = hook(0, "Ops", enabled=False, url="https://events.pagerduty.com/x")
    assert reasons(defence_evasion(timeline(by_url))) == ["alerting_disabled"]
    deleted = (
        0,
        "webhook.deleted",
        "success",
        "adm@x.io",
        IP,
        None,
        ("webhook", "wh-2", "SIEM feed"),
    )
    assert reasons(defence_evasion(timeline(deleted))) == ["alerting_disabled"]


def test_episodes_at_the_window_edge() -> None:
    # two log changes exactly one hour apart are one episode; a moment later, two
    one = defence_evasion(
        timeline(
            (0, "cloudtrail.stop_logging", "success", "eve@x.io", IP),
            (60, "cloudtrail.delete_trail", "success", "eve@x.io", IP),
        )
    )
    assert one.height == 1 and one["count"][0] == 2
    assert "cloudtrail.delete_trail, cloudtrail.stop_logging" in one["summary"][0]
    two = defence_evasion(
        timeline(
            (0, "cloudtrail.stop_logging", "success", "eve@x.io", IP),
            (60.01, "cloudtrail.delete_trail", "success", "eve@x.io", IP),
        )
    )
    assert two.height == 2
    # ties, other kinds and other actors are separate findings
    mixed = defence_evasion(
        timeline(
            (0, "cloudtrail.stop_logging", "success", "eve@x.io", IP),
            (0, "iam.deactivate_mfa_device", "success", "eve@x.io", IP),
            (0, "cloudtrail.stop_logging", "success", "bob@x.io", IP),
        )
    )
    assert sorted(zip(mixed["subject"], reasons(mixed), strict=True)) == [
        ("bob@x.io", "logging_disabled"),
        ("eve@x.io", "logging_disabled"),
        ("eve@x.io", "mfa_disabled"),
    ]


def test_failed_attempts_null_actor_and_organizations() -> None:
    tried = defence_evasion(timeline((0, "cloudtrail.stop_logging", "failure", "eve@x.io", IP)))
    assert tried["severity"].to_list() == ["medium"] and "attempt failed" in tried["summary"][0]
    machine = defence_evasion(timeline((0, "cloudtrail.stop_logging", "success", None, None)))
    assert machine["subject"].to_list() == ["(unknown)"]
    two = pl.concat(
        [
            timeline((0, "cloudtrail.stop_logging", "success", "eve@x.io", IP), org="org-a"),
            timeline(
                (1, "cloudtrail.delete_trail", "success", "eve@x.io", IP), org="org-b"
            ).with_columns(pl.lit("e100").alias("audit_id")),
        ]
    )
    assert sorted(defence_evasion(two)["organization_id"].to_list()) == ["org-a", "org-b"]


def test_patterns_are_parameters() -> None:
    tl = timeline((0, "siem.mute_feed", "success", "eve@x.io", IP))
    assert defence_evasion(tl).height == 0
    assert defence_evasion(tl, alerting_actions=r"mute_feed").height == 1
    with pytest.raises(al.FilterError, match="logging_actions"):
        defence_evasion(tl, logging_actions="[")


def test_through_the_store(store: al.AuditStore) -> None:
    tl = timeline(
        hook(0, "Security Alerts (PagerDuty)", enabled=False),
        setting(4, "audit_log_retention_days", "365", "7"),
        setting(5, "require_mfa", "true", "false"),
    )
    store.append(as_entries(tl))
    f = store.detect("defence_evasion").sort("window_start")
    assert sorted(zip(reasons(f), evidence_back(f, tl), strict=True)) == [
        ("alerting_disabled", ["e000"]),
        ("logging_disabled", ["e001"]),
        ("mfa_disabled", ["e002"]),
    ]
