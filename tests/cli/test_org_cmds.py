"""`auditlens org`, `auditlens people` and `auditlens detect` with the stored context."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from tests.helpers import make_entry

pytestmark = pytest.mark.usefixtures("terminal_width")
runner = CliRunner()
ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"


def run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def db(store_url: str) -> str:
    with al.open_store(store_url) as store:
        for day, hour in ((6, 1), (6, 8), (7, 1), (8, 17)):  # Tokyo 10:00/17:00, then 02:00
            store.append(
                [
                    make_entry(
                        actor={"email": "lena.kim@acme.example", "type": "user"},
                        action="user.role_changed",
                        organization_id=ORG,
                        timestamp=datetime(2025, 1, day, hour, 0, tzinfo=UTC).isoformat(),
                    )
                ]
            )
    return store_url


def test_org_set_list_and_people_import(db: str, tmp_path: Path) -> None:
    code, out, err = run(
        "org", "set", ORG, "--db", db, "--name", "Acme", "--timezone", "Asia/Tokyo",
        "--hours", "09:00-18:00", "--workdays", "mon-fri", "--by", "ops@acme.example",
    )  # fmt: skip
    assert code == 0, err
    assert f"{ORG}: Acme, Asia/Tokyo, 09:00-18:00, mon,tue,wed,thu,fri — recorded" in out
    code, out, _ = run("org", "list", "--db", db, "--format", "json")
    (row,) = json.loads(out)
    assert (row["name"], row["timezone"], row["hours"], row["entries"]) == (
        "Acme",
        "Asia/Tokyo",
        "09:00-18:00",
        5,  # four actions and the profile change itself
    )
    code, out, _ = run("org", "list", "--db", db)
    assert code == 0 and ORG in out  # the id is printed whole at any width

    people = tmp_path / "people.csv"
    people.write_text("email,timezone,name\nlena.kim@acme.example,Asia/Tokyo,Lena Kim\n")
    code, out, err = run("people", "import", str(people), "--org", ORG, "--db", db)
    assert code == 0, err
    assert "1 added, 0 changed, 0 removed, 0 unchanged" in out
    with al.open_store(db) as store:
        assert store.count(action="organization.person_set") == 1
        assert store.count(action="organization.profile_changed") == 1


def test_bad_context_exits_2_and_writes_nothing(db: str, tmp_path: Path) -> None:
    code, _, err = run("org", "set", ORG, "--db", db, "--timezone", "Mars/Base")
    assert code == 2 and "unknown time zone 'Mars/Base'" in err
    bad = tmp_path / "people.csv"
    bad.write_text("email,timezone\nlena.kim@acme.example,Asia/Tokyo\nbo@acme.example,Nope/X\n")
    code, _, err = run("people", "import", str(bad), "--org", ORG, "--db", db)
    assert code == 2 and "people.csv:3: timezone: unknown time zone 'Nope/X'" in err
    with al.open_store(db) as store:
        assert store.count(actions=["organization.*"]) == 0


def test_detect_uses_the_stored_context_and_params_override(db: str) -> None:
    code, out, _ = run("detect", "--db", db, "--format", "json")
    assert code == 0 and len(json.loads(out)) == 2  # UTC: both 01:00s look off-hours
    run("org", "set", ORG, "--db", db, "--timezone", "Asia/Tokyo", "--hours", "09:00-18:00")
    code, out, _ = run("detect", "--db", db, "--format", "json")
    (finding,) = json.loads(out)
    assert json.loads(finding["details"])["timezone_source"] == "organization"
    assert finding["window_start"].startswith("2025-01-08T17:00")
    code, out, _ = run("detect", "--db", db, "--format", "json", "--no-context")
    assert len(json.loads(out)) == 2
    code, out, _ = run(
        "detect", "--db", db, "--format", "json", "--param", "off_hours.hours=11:00-18:00"
    )
    assert len(json.loads(out)) == 3  # 10:00 Tokyo is now early too
    code, _, err = run("detect", "--db", db, "--param", "astrology.stars=5")
    assert code == 2 and "unknown detector 'astrology'" in err
    code, _, err = run("detect", "--db", db, "--param", "off_hours")
    assert code == 2 and "expected DETECTOR.PARAMETER=VALUE" in err


def test_detect_never_silently_narrows_a_dated_query(db: str) -> None:
    """Entries from January 2025: no default window hides them."""
    code, out, _ = run("detect", "--db", db, "created:>=2025-01-01")
    assert code == 0
    assert "2 finding(s) in 4 entries (the selection: created:>=2025-01-01)" in out
    code, out, _ = run("detect", "--db", db, "--since", "30d")
    assert "0 finding(s) in 0 entries (the last 30d" in out
