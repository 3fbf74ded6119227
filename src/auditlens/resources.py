"""Where the shipped notebooks, report templates and sample data are.

A wheel carries ``notebooks/`` and ``report_templates/`` inside the package
(``auditlens/_shipped/``); a source checkout (editable install) uses the
repository's own folders, so edits show at once.

Example:
    >>> notebook_path("compliance_report").name
    'compliance_report.ipynb'
    >>> (templates_dir() / "frameworks" / "soc2.yaml").is_file()
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from auditlens.errors import ConfigError

if TYPE_CHECKING:
    from auditlens.facade import AuditStore

__all__ = [
    "notebook_path",
    "notebooks_dir",
    "open_store_or_sample",
    "sample_data",
    "samples_dir",
    "templates_dir",
]

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parents[1]


def _shipped(name: str) -> Path:
    for base in (_PACKAGE / "_shipped", _CHECKOUT):
        if (base / name).is_dir():
            return base / name
    raise ConfigError(f"auditlens' {name}/ folder is missing from this installation")


def notebooks_dir() -> Path:
    """The folder of the shipped notebooks."""
    return _shipped("notebooks")


def templates_dir() -> Path:
    """The folder of the report templates (``frameworks/`` holds the framework YAMLs)."""
    return _shipped("report_templates")


def notebook_path(name: str) -> Path:
    """A shipped notebook by name (``compliance_report`` or ``compliance_report.ipynb``)."""
    path = notebooks_dir() / (name if name.endswith(".ipynb") else f"{name}.ipynb")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in notebooks_dir().glob("*.ipynb")))
        raise ConfigError(f"no notebook named {name!r}; shipped: {known}")
    return path


def sample_data() -> Path:
    """The sample JSONL of a source checkout (``data/sample.jsonl``)."""
    path = _CHECKOUT / "data" / "sample.jsonl"
    if not path.is_file():
        raise ConfigError("the sample data ships with the source checkout only (data/sample.jsonl)")
    return path


def samples_dir() -> Path:
    """The folder of small samples of each importer format (``data/samples/<format>/``).

    Example:
        >>> sorted(p.name for p in samples_dir().iterdir())
        ['cloudtrail', 'github', 'okta', 'sshd', 'workspace']
    """
    for path in (_PACKAGE / "_shipped" / "samples", _CHECKOUT / "data" / "samples"):
        if path.is_dir():
            return path
    raise ConfigError("auditlens' data/samples/ folder is missing from this installation")


def open_store_or_sample(url: str | None = None) -> AuditStore:
    """The store at ``url`` (else ``$AUDITLENS_URL``); with neither, an in-memory store
    holding the sample data.

    The notebooks use this so that they run as shipped (nbval, a first look) and on
    your store when papermill passes ``store_url``.

    Example:
        >>> store = open_store_or_sample("")
        >>> store.count() > 2000
        True
    """
    import os

    from auditlens.facade import open_store  # lazy: only the sample needs the data stack
    from auditlens.ingest import ingest  # lazy: only the sample needs the data stack

    if url or os.environ.get("AUDITLENS_URL"):
        return open_store(url or None)
    store = open_store("sqlite://")
    ingest(store, sample_data())
    return store
