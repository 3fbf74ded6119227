"""``run_notebook`` reads parameters without executing them and hands the store URL to the
kernel alone: the caller's environment is never changed."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from auditlens.errors import ConfigError
from auditlens.reports.notebook import notebook_parameters, run_notebook


def _notebook(path: Path, parameters: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(parameters)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path


def test_parameters_are_parsed_not_executed(tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "p.ipynb", 'name = "a"  # who\nlimit = 3\nkeys = []\n')
    assert notebook_parameters(nb) == {"name": "a", "limit": 3, "keys": []}
    marker = tmp_path / "ran"
    code = _notebook(tmp_path / "c.ipynb", f'name = "a"\nlimit = open({str(marker)!r}, "w")\n')
    with pytest.raises(ConfigError, match=r"limit = open.* is not a literal value"):
        notebook_parameters(code)
    assert not marker.exists()


def test_a_notebook_without_parameters_cell_is_refused(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "none.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(ConfigError, match="no cell tagged 'parameters'"):
        notebook_parameters(path)


@pytest.mark.slow
def test_the_store_url_reaches_the_kernel_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITLENS_URL", "sqlite:///caller.db")
    seen = tmp_path / "seen.txt"
    nb = _notebook(
        tmp_path / "k.ipynb",
        'out = ""\n',
        "import os, pathlib\npathlib.Path(out).write_text(os.environ['AUDITLENS_URL'])",
    )
    run_notebook(
        nb,
        tmp_path / "done.ipynb",
        {"out": str(seen)},
        store_url="sqlite:///kernel.db",
        timeout=120,
    )
    assert seen.read_text() == "sqlite:///kernel.db"
    assert os.environ["AUDITLENS_URL"] == "sqlite:///caller.db"
    assert "kernel.db" not in (tmp_path / "done.ipynb").read_text()
