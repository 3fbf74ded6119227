"""`auditlens report` end to end, on both backends: papermill, PDF, executed notebook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from tests.cli.widths import terminal_width  # noqa: F401 - the fixture
from tests.helpers import ORG
from tests.reports import scenario

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.mark.usefixtures("terminal_width")  # the long result lines stay whole at any width
def test_report_command_writes_pdf_notebook_and_results(store_url: str, tmp_path: Path) -> None:
    with al.open_store(store_url) as store:
        scenario.seed(store)
        rows = store.count(organization_id=ORG, start=scenario.START, end=scenario.END)
    out = tmp_path / "reports" / "soc2-jan.pdf"
    args = [
        "report",
        "soc2",
        "--org",
        ORG,
        "--start",
        scenario.START,
        "--end",
        scenario.END,
        "--out",
        str(out),
        "--db",
        store_url,
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "soc2-jan.pdf: SOC2" in res.output
    assert any(line.startswith(f"{out}: SOC2 for ") for line in res.stdout.splitlines())
    text = "".join(p.extract_text() for p in PdfReader(str(out)).pages)
    assert "CC7.3" in text
    assert re.search(rf"Entries in the period\s*{rows}\b", text)
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["provenance"]["rows"] == rows
    assert results["provenance"]["backend"] == store_url.split(":")[0].split("+")[0]
    executed = json.loads(out.with_suffix(".ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["framework"] == "soc2"
    # --check turns failing requirements into exit code 1 (CC6.2 fails here)
    res = runner.invoke(app, [*args, "--check"])
    assert res.exit_code == 1


def test_report_command_rejects_a_bad_framework_file(tmp_path: Path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text(
        "framework: M\nname: M\nrequirements:\n  - id: X\n    name: x\n"
        "    checks:\n      - evidence: findings\n        fail_if: later > 1\n"
    )
    res = runner.invoke(
        app,
        [
            "report",
            str(bad),
            "--out",
            str(tmp_path / "r.pdf"),
            "--db",
            f"sqlite:///{tmp_path / 'a.db'}",
        ],
    )
    assert res.exit_code == 2
    assert f"{bad}:8: requirements[0].checks[0].fail_if: unknown metric 'later'" in res.output
    assert not (tmp_path / "r.pdf").exists()


def test_report_command_names_the_failing_cell(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    with al.open_store(db) as store:
        scenario.seed(store)
    res = runner.invoke(
        app,
        [
            "report",
            "iso27001",
            "--org",
            ORG,
            "--start",
            "2025-02-10",
            "--end",
            "2025-01-01",
            "--out",
            str(tmp_path / "r.pdf"),
            "--db",
            db,
        ],
    )
    assert res.exit_code == 1
    assert "compliance_report.ipynb: cell" in res.output
    assert "the period ends before it starts" in res.output
