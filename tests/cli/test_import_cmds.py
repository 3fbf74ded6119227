"""`auditlens import`: each format from the terminal, rejects as file:line, re-runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from auditlens.resources import samples_dir

pytestmark = pytest.mark.usefixtures("terminal_width")
runner = CliRunner()
ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
DATA = Path(__file__).parents[1] / "importers" / "data"


def run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_every_sample_imports_and_a_rerun_changes_nothing(store_url: str) -> None:
    args = {
        "cloudtrail": [],
        "okta": ["--okta-org", "acme.okta.com"],
        "github": [],
        "workspace": [],
        "sshd": ["--org", ORG, "--year", "2024", "--timezone", "Europe/Berlin"],
    }
    for fmt, extra in args.items():
        code, out, err = run("import", fmt, str(samples_dir() / fmt), "--db", store_url, *extra)
        assert code == 0, (fmt, out, err)
        assert "0 rejected" in out and "appended 0," not in out
    with al.open_store(store_url) as store:
        total = store.count()
    code, out, _ = run("import", "cloudtrail", str(samples_dir() / "cloudtrail"), "--db", store_url)
    assert code == 0
    assert "appended 0, 8 already stored" in out
    with al.open_store(store_url) as store:
        assert store.count() == total


def test_rejected_records_are_listed_as_file_line_and_exit_1(
    store_url: str, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.jsonl"
    code, out, err = run(
        "import",
        "okta",
        str(DATA / "okta"),
        "--db",
        store_url,
        "--org",
        ORG,
        "--rejects",
        str(rejects),
    )
    assert code == 1
    assert f"{DATA / 'okta' / 'page1.json'}:130: uuid None: uuid is missing" in err
    assert "appended 4, 0 already stored, 2 rejected" in out
    assert len(rejects.read_text().splitlines()) == 2


def test_usage_errors_are_named(store_url: str) -> None:
    code, _, err = run("import", "splunk", "x", "--db", store_url)
    assert code == 3 and "unknown import format 'splunk'" in err
    code, _, err = run("import", "sshd", str(DATA / "sshd" / "dst.log"), "--db", store_url)
    assert code == 3 and "pass --org" in err
    code, _, err = run(
        "import", "sshd", str(DATA / "sshd" / "dst.log"), "--db", store_url, "--org", ORG
    )
    assert code == 3 and "pass --year" in err
    code, _, err = run("import", "github", str(DATA / "nothing-here"), "--db", store_url)
    assert code == 3 and "no such file or folder" in err


def test_workers_option_changes_nothing_but_who_reads(tmp_path: Path) -> None:
    outputs = []
    for n in ("0", "2"):
        db = str(tmp_path / f"w{n}.db")
        code, out, err = run(
            "import", "cloudtrail", str(DATA / "cloudtrail"), "--db", db, "--workers", n
        )
        assert code == 1  # the data set's three bad records
        with al.open_store(db) as store:
            outputs.append((out, err, [(e["audit_id"], e["entry_hash"]) for e in store.entries()]))
    assert outputs[0] == outputs[1]
    assert "appended 20, 0 already stored, 3 rejected" in outputs[1][0]
