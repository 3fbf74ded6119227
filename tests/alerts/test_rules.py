"""The rules file format: the seed's text, the canonical form, and errors with file/line/field."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditlens.alerts import AlertRuleWarning, RuleError, load_rules, parse_rules

SEED = """alert: Failed Login Spike
trigger:
  action: auth.failed
  count: > 5
  window: 5m
notification:
  email: security@company.com
  slack: #security-alerts
"""


def test_the_seed_example_loads_with_warnings_showing_the_quoted_form(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(SEED)
    with pytest.warns(AlertRuleWarning) as caught:
        ruleset = load_rules(path)
    [rule] = ruleset.rules
    assert rule.name == "Failed Login Spike"
    assert (rule.trigger.actions, rule.trigger.op, rule.trigger.count) == (("auth.failed",), ">", 5)
    assert rule.trigger.window.total_seconds() == 300
    assert rule.notification.email == ["security@company.com"]
    assert rule.notification.slack == ["#security-alerts"]
    messages = [str(w.message) for w in caught]
    assert f'{path}:4: read `count: > 5` as `count: "> 5"`' in messages[0]
    assert f"{path}:8:" in messages[1] and '"#security-alerts"' in messages[1]
    assert rule.line == 1 and rule.cooldown == rule.trigger.window


def test_the_canonical_form_loads_silently() -> None:
    text = SEED.replace("count: > 5", 'count: "> 5"').replace(
        "slack: #security-alerts", 'slack: "#security-alerts"'
    )
    assert parse_rules(text).warnings == []


def test_several_rules_lists_and_documents() -> None:
    text = """- alert: A
  trigger: {query: 'action:webhook.* -result:success', count: ">= 3", window: 1h, group_by: resource}
  severity: high
  notification: {webhook: "https://hooks.example.com/a"}
- alert: B
  trigger: {detector: password_spray, params: {accounts: 8}}
  notification: {slack: ["#sec", "#ops"]}
  cooldown: 2h
---
alert: C
trigger: {actions: [billing.payment_succeeded], count: "< 1", window: 1d}
notification: {email: [a@x.io, b@x.io]}
"""
    rules = parse_rules(text).rules
    assert [r.name for r in rules] == ["A", "B", "C"]
    assert (
        rules[0].trigger.query
        and rules[0].trigger.group_by == "resource"
        and rules[0].severity == "high"
    )
    assert rules[1].trigger.detector == "password_spray" and rules[1].trigger.params == {
        "accounts": 8
    }
    assert rules[1].cooldown.total_seconds() == 7200
    assert rules[2].trigger.op == "<" and rules[2].notification.email == ["a@x.io", "b@x.io"]


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (
            "alert: A\ntrigger:\n  action: auth.failed\n  count: lots\nnotification: {email: a@x.io}\n",
            4,
            "trigger.count",
            "comparison",
        ),
        (
            "alert: A\ntrigger:\n  action: auth.failed\n  count: '> 5'\n  window: soon\nnotification: {email: a@x.io}\n",
            5,
            "trigger.window",
            "duration",
        ),
        (
            "alert: A\ntrigger:\n  detector: astrology\nnotification: {email: a@x.io}\n",
            3,
            "trigger.detector",
            "unknown detector",
        ),
        (
            "alert: A\ntrigger:\n  action: auth.failed\n  count: '> 5'\n",
            1,
            "notification",
            "is required",
        ),
        (
            "alert: A\ntrigger: {action: x.y, count: '>1'}\nnotification:\n  email: not-an-email\n",
            4,
            "notification.email",
            "not an email",
        ),
        (
            "alert: A\ntrigger: {action: x.y, count: '>1'}\nnotification: {pager: x}\n",
            3,
            "notification.pager",
            "unknown key",
        ),
        (
            "alert: A\ntrigger: {action: x.y, count: '>1', colour: red}\nnotification: {email: a@x.io}\n",
            2,
            "trigger.colour",
            "unknown key",
        ),
        (
            "alert: A\ntrigger: {query: 'acton:x', count: '>1'}\nnotification: {email: a@x.io}\n",
            2,
            "trigger.query",
            "unknown qualifier",
        ),
        (
            "alert: A\ntrigger: {action: x.y, count: '>1', group_by: planet}\nnotification: {email: a@x.io}\n",
            2,
            "trigger.group_by",
            "must be one of",
        ),
        (
            "alert: A\ntrigger: {count: '>1'}\nnotification: {email: a@x.io}\n",
            2,
            "trigger",
            "needs action, query or detector",
        ),
        (
            "trigger: {action: x.y, count: '>1'}\nnotification: {email: a@x.io}\n",
            1,
            "alert",
            "is required",
        ),
        ("alert: A\ntrigger: [unclosed\n", 3, "yaml", ""),
    ],
)
def test_invalid_rules_name_file_line_and_field(
    text: str, line: int, field: str, message: str
) -> None:
    with pytest.raises(RuleError) as err:
        parse_rules(text, "rules.yaml")
    assert err.value.line == line
    assert err.value.field == field
    assert message in str(err.value)
    assert str(err.value).startswith(f"rules.yaml:{line}: {field}:")


def test_duplicate_names_and_missing_file(tmp_path: Path) -> None:
    one = "alert: A\ntrigger: {action: x.y, count: '>1'}\nnotification: {email: a@x.io}\n"
    with pytest.raises(RuleError, match="duplicate rule name"):
        parse_rules(one + "---\n" + one)
    with pytest.raises(RuleError, match="file"):
        load_rules(tmp_path / "missing.yaml")
