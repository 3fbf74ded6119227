"""`auditlens findings list` and `auditlens findings triage` (both backends, two widths)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from tests.test_responses import ADMIN2, ORG, brute_force, entry, on, user

pytestmark = pytest.mark.usefixtures("terminal_width")
runner = CliRunner()
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
VICTIM, OTHER = user("victim"), user("other.victim")


def run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def db(store_url: str) -> tuple[str, str]:
    """Two brute-forced accounts; the first is suspended by an admin. Returns (url, its id)."""
    with al.open_store(store_url) as store:
        store.append([*brute_force(VICTIM, T0), *brute_force(OTHER, T0 + timedelta(days=1))])
        (susp,) = store.append(
            entry(T0 + timedelta(hours=2), "user.suspended", ADMIN2, resource=on(VICTIM))
        )
    return store_url, susp.audit_id


def brute(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        r["subject"]: r
        for r in rows
        if r["detector"] == "brute_force_success" and r["subject_type"] == "actor"
    }


def test_list_json_shows_status_response_and_why(db: tuple[str, str]) -> None:
    url, suspension = db
    code, out, err = run("findings", "list", "--org", ORG, "--db", url, "--format", "json")
    assert code == 0, err
    found = brute(json.loads(out))
    handled, open_ = found[VICTIM["email"]], found[OTHER["email"]]
    assert (handled["status"], handled["handled_by"], handled["disposition"]) == (
        "handled",
        suspension,
        "suspended",
    )
    assert "within 7 days of the finding" in handled["why"]
    assert (open_["status"], open_["handled_by"], open_["disposition"]) == ("open", None, None)
    assert open_["severity"] == "critical" and len(open_["finding_id"]) == 16
    code, out, _ = run(
        "findings", "list", "--org", ORG, "--db", url, "-f", "json", "--status", "open"
    )
    assert {r["status"] for r in json.loads(out)} == {"open"}
    assert VICTIM["email"] not in brute(json.loads(out))
    # another organization has no findings
    code, out, _ = run("findings", "list", "--org", "other-org", "--db", url, "-f", "json")
    assert (code, json.loads(out)) == (0, [])


def test_list_table_keeps_ids_whole(db: tuple[str, str]) -> None:
    url, suspension = db
    code, out, _ = run("findings", "list", "--org", ORG, "--db", url, "-f", "json")
    ids = [r["finding_id"] for r in json.loads(out)]
    code, out, err = run("findings", "list", "--org", ORG, "--db", url)
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith(f"{len(ids)} finding(s) in {ORG}: ")
    assert "within 7d of a finding" in first
    for fid in ids:
        assert fid in out  # printed whole at any width
    assert suspension in out
    assert "(suspended)" in out  # the handled finding's disposition


def test_triage_records_the_decision_and_the_list_shows_it(db: tuple[str, str]) -> None:
    url, _ = db
    code, out, _ = run("findings", "list", "--org", ORG, "--db", url, "-f", "json")
    fid = brute(json.loads(out))[OTHER["email"]]["finding_id"]
    code, out, err = run(
        "findings", "triage", fid, "--org", ORG, "--db", url, "--disposition", "resolved",
        "--note", "password rotated, sessions checked", "--by", "analyst@acme.example",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith(f"finding {fid} triaged as resolved: entry ")
    triage_id = out.split("entry ")[1].strip()
    code, out, _ = run("findings", "list", "--org", ORG, "--db", url, "-f", "json")
    f = brute(json.loads(out))[OTHER["email"]]
    assert (f["status"], f["handled_by"], f["disposition"], f["responder"]) == (
        "handled",
        triage_id,
        "resolved",
        "analyst@acme.example",
    )
    with al.open_store(url) as store:
        (e,) = store.entries("action:audit_log.finding_triaged")
    assert e["details"]["note"] == "password rotated, sessions checked"


def test_triage_errors_have_documented_exit_codes(db: tuple[str, str]) -> None:
    url, _ = db
    code, _, err = run(
        "findings", "triage", "feedfeedfeedfeed", "--org", ORG, "--db", url,
        "--disposition", "ignore", "--note", "x",
    )  # fmt: skip
    assert code == 2
    assert "false_positive, resolved, accepted_risk" in err
    code, _, err = run(
        "findings", "triage", "feedfeedfeedfeed", "--org", ORG, "--db", url,
        "--disposition", "resolved", "--note", "x",
    )  # fmt: skip
    assert code == 1
    assert "no finding 'feedfeedfeedfeed'" in err
    code, _, err = run("findings", "list", "--org", ORG, "--db", url, "--format", "csv")
    assert code == 2 and "--format must be table or json" in err
