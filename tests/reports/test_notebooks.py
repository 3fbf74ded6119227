"""The shipped notebooks run by papermill with parameters other than their defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pypdf
import pytest

import auditlens as al
from auditlens.errors import ConfigError
from auditlens.reports.notebook import NotebookError, notebook_parameters, run_notebook
from tests.helpers import ORG
from tests.reports import scenario

pytestmark = pytest.mark.slow


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with al.open_store(url) as store:
        scenario.seed(store)
    return url


def _run(name: str, tmp_path: Path, db: str, **params: object) -> dict:
    results = tmp_path / f"{name}.json"
    run_notebook(
        name,
        tmp_path / f"{name}.ipynb",
        {**params, "results_json": str(results)},
        store_url=db,
        timeout=300,
    )
    return json.loads(results.read_text())


def test_compliance_report_for_another_framework_and_period(tmp_path: Path, db: str) -> None:
    pdf = tmp_path / "gdpr.pdf"
    got = _run(
        "compliance_report",
        tmp_path,
        db,
        framework="gdpr",
        organization_id=ORG,
        start="2025-01-10",
        end="2025-01-12",
        output_pdf=str(pdf),
        output_html=str(tmp_path / "gdpr.html"),
    )
    with al.open_store(db) as store:
        rows = store.count(organization_id=ORG, start="2025-01-10", end="2025-01-12")
    assert got["framework"] == "GDPR" and got["provenance"]["rows"] == rows == 9
    assert {r["id"] for r in got["requirements"]} == {
        "Art. 5(1)(f)",
        "Art. 15",
        "Art. 30",
        "Art. 32",
        "Art. 33",
    }
    assert pdf.read_bytes().startswith(b"%PDF")
    assert (tmp_path / "gdpr.html").stat().st_size > 1_000_000
    executed = json.loads((tmp_path / "compliance_report.ipynb").read_text())
    # the store URL reached the kernel through the environment, not as a parameter
    assert db not in json.dumps(executed) and db.split("///")[1] not in json.dumps(executed)
    # every chart is kept as a static SVG too (readable outside JupyterLab), no stale bar
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    charts = [o["data"] for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert charts and all("image/svg+xml" in d for d in charts)
    assert "0%" not in json.dumps([o.get("data", {}).get("text/plain") for o in outputs])


def test_subject_access_security_review_troubleshooting_export(tmp_path: Path, db: str) -> None:
    sa = _run(
        "gdpr_subject_access",
        tmp_path,
        db,
        subject="carol@acme.example",
        export_path=str(tmp_path / "carol.json"),
        output_pdf=str(tmp_path / "carol.pdf"),
    )
    pdf = pypdf.PdfReader(tmp_path / "carol.pdf")
    assert pdf.metadata is not None
    assert pdf.metadata.title == "Subject access — carol@acme.example"
    with al.open_store(db) as store:
        assert sa["counts"]["as_actor"] == store.count(actor="carol@acme.example")
        about = (
            store.count(actor="carol@acme.example")
            + store.count(resource="carol@acme.example")
            - store.count(actor="carol@acme.example", resource="carol@acme.example")
        )
    assert len(json.loads((tmp_path / "carol.json").read_text())) == about

    review = _run("security_review", tmp_path, db, organization_id=ORG, days=3, end="2025-01-12")
    assert review["period"] == ["2025-01-10", "2025-01-12"]
    assert review["metrics"]["authentication"]["failed_logins"] == 6

    ts = _run(
        "troubleshooting",
        tmp_path,
        db,
        webhook_id="wh-1",
        application_id="app-1",
        user="dave@acme.example",
    )
    assert "disabled by bob@acme.example" in ts["webhook"]["diagnosis"]
    assert ts["user"]["summary"].startswith(
        "ada@acme.example removed dave@acme.example on 2025-01-12;"
    )
    assert ts["organization_id"] == ORG

    out = tmp_path / "exports"
    out.mkdir()
    ex = _run(
        "scheduled_export",
        tmp_path,
        db,
        query="action:auth.failed",
        format="jsonl",
        fields="timestamp,actor.email",
        destination=f"file://{out}/",
        organization_id=ORG,
    )
    assert ex["rows"] == 6 + 3
    files = sorted(out.glob("*.jsonl"))
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 9


def test_a_failing_cell_is_named(tmp_path: Path, db: str) -> None:
    with pytest.raises(NotebookError) as err:
        run_notebook(
            "compliance_report",
            tmp_path / "x.ipynb",
            {"organization_id": "00000000-0000-4000-8000-000000000000"},
            store_url=db,
            timeout=300,
        )
    msg = str(err.value)
    assert "compliance_report.ipynb: cell" in msg and "FilterError" in msg
    assert str(tmp_path / "x.ipynb") in msg and (tmp_path / "x.ipynb").is_file()


def test_unknown_parameters_are_refused_before_running(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no parameter"):
        run_notebook("explore", tmp_path / "x.ipynb", {"colour": "blue"})
    assert notebook_parameters("explore") == {"store_url": "", "export_dir": "out"}
