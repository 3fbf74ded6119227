"""Shipped frameworks and the validation of custom ones (file, line, field)."""

from __future__ import annotations

from pathlib import Path

import pytest

import auditlens as al
from auditlens.reports import FrameworkError, load_framework, parse_framework
from tests.helpers import ORG
from tests.reports import scenario

REQUIRED = {
    "soc2": {"CC6.1", "CC6.2", "CC6.3", "CC7.2", "CC7.3", "CC8.1"},
    "iso27001": {
        "A.5.15",
        "A.5.16",
        "A.5.18",
        "A.5.28",
        "A.8.2",
        "A.8.5",
        "A.8.15",
        "A.8.16",
        "A.8.17",
        "A.8.32",
    },
    "gdpr": {"Art. 5(1)(f)", "Art. 15", "Art. 30", "Art. 32", "Art. 33"},
}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_shipped_frameworks_hold_the_required_controls(name: str) -> None:
    fw = load_framework(name)
    ids = {r.id for r in fw.requirements}
    assert REQUIRED[name] <= ids
    for r in fw.requirements:
        assert r.name and r.description, r.id
        assert r.type == "manual" or r.checks, r.id


def test_control_texts_are_the_published_ones() -> None:
    soc2 = {r.id: r for r in load_framework("soc2").requirements}
    assert soc2["CC6.1"].description.startswith(
        "The entity implements logical access security software, infrastructure, and "
        "architectures over protected information assets"
    )
    iso = {r.id: r for r in load_framework("iso27001").requirements}
    assert iso["A.8.15"].name == "Logging"
    assert iso["A.5.16"].description == "The full life cycle of identities shall be managed."
    gdpr = {r.id: r for r in load_framework("gdpr").requirements}
    assert gdpr["Art. 33"].name.startswith("Notification of a personal data breach")


GOOD = """\
framework: ACME
name: Acme access policy
version: "1"
requirements:
  - id: AC-1
    name: No self-promotion
    description: Nobody changes their own role.
    checks:
      - evidence: role_changes
        fail_if: self_changes > 0
  - id: AC-2
    name: Quarterly access review
    attributes:
      type: manual
      guidance: Attach the signed review.
"""


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            GOOD.replace("evidence: role_changes", "evidence: roles"),
            "x.yaml:9: requirements[0].checks[0].evidence: unknown evidence 'roles'",
        ),
        (
            GOOD.replace("self_changes > 0", "self_changes >> 0"),
            "x.yaml:10: requirements[0].checks[0].fail_if: 'self_changes >> 0' is not a rule",
        ),
        (
            GOOD.replace("self_changes > 0", "selfies > 0"),
            "x.yaml:10: requirements[0].checks[0].fail_if: unknown metric 'selfies'",
        ),
        (
            GOOD.replace("  - id: AC-2\n", "  - id: AC-1\n"),
            "x.yaml:11: requirements[1].id: duplicate id 'AC-1'",
        ),
        (
            GOOD.replace("    name: No self-promotion\n", ""),
            "x.yaml:5: requirements[0].name: is required",
        ),
        (
            GOOD.replace("      type: manual", "      type: sometimes"),
            "x.yaml:14: requirements[1].attributes.type: must be one of automated, partial, manual",
        ),
        (
            GOOD.replace("    description: Nobody", "    owner: me\n    description: Nobody"),
            "x.yaml:7: requirements[0].owner: unknown key",
        ),
        (
            GOOD.replace("      type: manual\n", ""),
            "x.yaml:11: requirements[1].checks: an automated requirement needs at least one check",
        ),
        (GOOD.replace('version: "1"', "version: [1"), "x.yaml:"),
        (
            "framework: X\nname: X\nrequirements: []\n",
            "x.yaml:3: requirements: lists no requirement",
        ),
    ],
)
def test_custom_framework_errors_point_at_line_and_field(text: str, where: str) -> None:
    with pytest.raises(FrameworkError) as err:
        parse_framework(text, "x.yaml")
    assert str(err.value).startswith(where), str(err.value)
    assert err.value.source == "x.yaml"


def test_a_custom_framework_file_is_assessed(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(GOOD)
    store = al.open_store("sqlite://")
    scenario.seed(store)
    report = al.build_report(
        store, path, ORG, scenario.START, scenario.END, charts=False, record=False
    )
    assert report.status_of("AC-1") == "fail"  # mallory promoted herself
    assert report.status_of("AC-2") == "manual"
    reasons = report.requirements[0].checks[0].reasons
    assert reasons == ("Self changes: 1.",)  # a sentence; the rule is in the appendix
    assert [
        e["audit_id"] for e in report._check_json(report.requirements[0].checks[0])["exceptions"]
    ] == store.search("action:user.role_changed actor:mallory@acme.example", backend="polars")[
        "audit_id"
    ].to_list()
    assert report.provenance["framework_file"] == str(path)


def test_missing_framework_file_says_what_is_accepted() -> None:
    with pytest.raises(FrameworkError, match="use soc2, iso27001, gdpr"):
        load_framework("no/such/file.yaml")
