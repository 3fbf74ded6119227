"""Shipped files: every notebook goes into the wheel, and is found from a checkout."""

from __future__ import annotations

import tomllib
from pathlib import Path

from auditlens.reports.notebook import notebook_parameters
from auditlens.resources import notebook_path, notebooks_dir, templates_dir

ROOT = Path(__file__).resolve().parents[1]


def test_every_notebook_is_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert shipped.get(f"notebooks/{nb.name}") == f"auditlens/_shipped/notebooks/{nb.name}"
    assert shipped["report_templates"] == "auditlens/_shipped/report_templates"
    assert shipped["data/samples"] == "auditlens/_shipped/samples"  # the importer samples


def test_every_notebook_has_parameters_with_defaults() -> None:
    for nb in sorted(notebooks_dir().glob("*.ipynb")):
        params = notebook_parameters(nb)
        assert "store_url" in params, nb.name
        assert notebook_path(nb.stem) == nb
    assert (templates_dir() / "report.html.j2").is_file()
