"""The allow-list of known automation: what it downgrades or suppresses, and why it says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import auditlens as al
from auditlens.detect import apply_allowlist, bulk_deletions, load_allowlist, run_all
from tests.detect.timeline import as_entries, timeline

TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.6.0 (+https://www.terraform.io) aws-sdk-go/1.49.13"


def destroy(n: int = 12, actor: str = "ci@x.io", ip: str = "10.20.3.4", ua: str = TERRAFORM):
    return [
        (i * 0.1, "webhook.deleted", "success", actor, ip, ua, ("webhook", f"wh-{i}", f"Hook {i}"))
        for i in range(n)
    ]


RULE = {"name": "terraform-ci", "reason": "Terraform from CI", "agents": ["terraform"]}


def test_downgrade_keeps_the_finding_and_says_why() -> None:
    tl = timeline(*destroy())
    before = bulk_deletions(tl)
    assert before["severity"].to_list() == ["high"]
    after = apply_allowlist(before, tl, [RULE])
    assert after["finding_id"].to_list() == before["finding_id"].to_list()  # triage still finds it
    assert after["severity"].to_list() == ["low"]
    assert after["summary"][0].endswith("[allow-listed: Terraform from CI]")
    assert json.loads(after["details"][0])["allowlisted"] == {
        "rule": "terraform-ci",
        "reason": "Terraform from CI",
        "action": "downgrade",
        "severity_was": "high",
    }


def test_suppress_and_keep_suppressed() -> None:
    tl = timeline(*destroy())
    rule = {**RULE, "action": "suppress"}
    assert apply_allowlist(bulk_deletions(tl), tl, [rule]).height == 0
    kept = apply_allowlist(bulk_deletions(tl), tl, [rule], keep_suppressed=True)
    assert json.loads(kept["details"][0])["allowlisted"]["action"] == "suppress"
    assert kept["severity"].to_list() == ["high"]


def test_every_evidence_entry_must_match() -> None:
    # one deletion from a browser inside the Terraform burst keeps the finding as it was
    tl = timeline(*destroy(11), (0.55, "webhook.deleted", "success", "ci@x.io", "10.20.3.4"))
    found = bulk_deletions(tl)
    assert apply_allowlist(found, tl, [RULE])["severity"].to_list() == ["high"]


@pytest.mark.parametrize(
    ("rule", "explained"),
    [
        ({"reason": "ci", "actors": ["CI@x.io"]}, True),  # case does not matter
        ({"reason": "ci", "actors": ["*@x.io"]}, True),
        ({"reason": "ci", "actors": ["ops@x.io"]}, False),
        ({"reason": "ci", "networks": ["10.20.0.0/16"]}, True),
        ({"reason": "ci", "networks": ["10.21.0.0/16"]}, False),
        ({"reason": "ci", "agents": ["terra*"], "networks": ["10.20.0.0/16"]}, True),
        ({"reason": "ci", "agents": ["terraform"], "networks": ["10.21.0.0/16"]}, False),  # AND
        ({"reason": "ci", "actors": ["ci@x.io"], "detectors": ["off_hours"]}, False),
        ({"reason": "ci", "actors": ["ci@x.io"], "organizations": ["org-2"]}, False),
        ({"reason": "ci", "actors": ["ci@x.io"], "organizations": ["org-1"]}, True),
    ],
)
def test_rule_fields(rule: dict, explained: bool) -> None:
    tl = timeline(*destroy())
    out = apply_allowlist(bulk_deletions(tl), tl, [rule])
    assert (out["severity"][0] == "low") is explained


def test_null_actor_and_ip_are_never_explained_by_those_fields() -> None:
    tl = timeline(*destroy(actor=None, ip=None))  # type: ignore[arg-type]
    found = bulk_deletions(tl)
    assert found.height == 1
    assert apply_allowlist(found, tl, [{"reason": "x", "actors": ["*"]}])["severity"][0] == "high"
    assert (
        apply_allowlist(found, tl, [{"reason": "x", "networks": ["0.0.0.0/0"]}])["severity"][0]
        == "high"
    )


def test_first_rule_wins_and_severity_never_rises() -> None:
    tl = timeline(*destroy())
    rules = [
        {"name": "first", "reason": "one", "agents": ["terraform"], "severity": "medium"},
        {"name": "second", "reason": "two", "agents": ["terraform"], "action": "suppress"},
    ]
    out = apply_allowlist(bulk_deletions(tl), tl, rules)
    assert out["severity"].to_list() == ["medium"]
    assert json.loads(out["details"][0])["allowlisted"]["rule"] == "first"
    up = [{"reason": "x", "agents": ["terraform"], "severity": "critical"}]
    assert apply_allowlist(bulk_deletions(tl), tl, up)["severity"].to_list() == ["high"]


def test_run_all_with_an_allowlist_on_pandas() -> None:
    tl = timeline(*destroy())
    out = run_all(tl.to_pandas(), allowlist=[RULE])
    assert list(out["severity"]) == ["low"]


def test_yaml_file_and_errors_with_line_and_field(tmp_path: Path) -> None:
    good = tmp_path / "allow.yaml"
    good.write_text(
        "automation:\n"
        "  - name: terraform-ci\n"
        "    reason: Terraform from CI\n"
        "    agents: [terraform]\n"
        "    networks: [10.20.0.0/16]\n"
        "    detectors: [bulk_deletions]\n"
    )
    rules = load_allowlist(good).rules
    assert rules[0].networks == ("10.20.0.0/16",) and rules[0].detectors == ("bulk_deletions",)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "automation:\n  - reason: backups\n    actors: [b@x.io]\n    networks: [10.0.0.300/8]\n"
    )
    with pytest.raises(al.YamlFileError, match=r"bad\.yaml:4: automation\[0\]\.networks: "):
        load_allowlist(bad)
    for text, message in [
        ("automation:\n  - actors: [a@x.io]\n", "needs a reason"),
        ("automation:\n  - reason: r\n", "at least one of actors"),
        ("automation:\n  - reason: r\n    actors: a@x.io\n    action: ignore\n", "action"),
        (
            "automation:\n  - reason: r\n    actors: a@x.io\n    detectors: [x]\n",
            "unknown detector",
        ),
        ("automation:\n  - reason: r\n    actors: a@x.io\n    colour: red\n", "colour"),
        ("automation: 3\n", "list of rules"),
    ]:
        bad.write_text(text)
        with pytest.raises(al.YamlFileError, match=message):
            load_allowlist(bad)
    with pytest.raises(al.ConfigError, match="cannot read"):
        load_allowlist(tmp_path / "missing.yaml")


def test_through_the_store_and_the_cli(store: al.AuditStore, tmp_path: Path) -> None:
    tl = timeline(*destroy())
    store.append(as_entries(tl))
    assert store.detect("bulk_deletions", allowlist=[RULE])["severity"].to_list() == ["low"]
    suppress = [{**RULE, "action": "suppress"}]
    assert store.detect("all", allowlist=suppress).height == 0
    assert store.detect("all", allowlist=suppress, keep_suppressed=True).height == 1


def test_cli_detect_allowlist(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from auditlens.cli import app

    db = f"sqlite:///{tmp_path / 'a.db'}"
    with al.open_store(db) as s:
        s.append(as_entries(timeline(*destroy())))
    allow = tmp_path / "allow.yaml"
    allow.write_text(
        "automation:\n  - name: tf\n    reason: Terraform from CI\n    agents: [terraform]\n"
        "    action: suppress\n"
    )
    runner = CliRunner()
    res = runner.invoke(app, ["detect", "--db", db, "--allowlist", str(allow)])
    assert res.exit_code == 0, res.output
    assert (
        "0 finding(s)" in res.stdout and "1 more suppressed by the allow-list (tf: 1)" in res.stdout
    )
    allow.write_text("automation:\n  - name: tf\n    reason: Terraform\n    agents: [terraform]\n")
    res = runner.invoke(app, ["detect", "--db", db, "--allowlist", str(allow), "-f", "json"])
    rows = json.loads(res.stdout)
    assert [r["severity"] for r in rows] == ["low"] and "allow-listed: Terraform" in rows[0][
        "summary"
    ]
    allow.write_text("automation:\n  - reason: r\n    networks: [nope]\n")
    res = runner.invoke(app, ["detect", "--db", db, "--allowlist", str(allow)])
    assert res.exit_code == 2 and "networks" in res.output
