"""Exports of audit entries (CSV, JSON, JSON Lines, Parquet, PDF, OCSF), streamed in chunks;
scheduled exports and their destinations.

The names load on first use (PEP 562): scheduled exports build reports
(:mod:`auditlens.reports`), and reports write exports, so importing
``auditlens.export.writers`` must not import the schedules.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from auditlens.export.ocsf import export_ocsf_parquet, findings_to_ocsf
    from auditlens.export.schedules import (
        Run,
        Schedule,
        add_schedule,
        deliver,
        list_runs,
        list_schedules,
        previous_period,
        remove_schedule,
        run_due,
    )
    from auditlens.export.writers import FORMATS, ExportResult, export, resolve_fields

__all__ = [
    "FORMATS",
    "ExportResult",
    "Run",
    "Schedule",
    "add_schedule",
    "deliver",
    "export",
    "export_ocsf_parquet",
    "findings_to_ocsf",
    "list_runs",
    "list_schedules",
    "previous_period",
    "remove_schedule",
    "resolve_fields",
    "run_due",
]

_WRITERS = frozenset({"FORMATS", "ExportResult", "export", "resolve_fields"})
_OCSF = frozenset({"export_ocsf_parquet", "findings_to_ocsf"})


def __getattr__(name: str) -> object:
    """Load a public name (or the ``schedules``/``writers``/``pdf`` module) on first use."""
    if name in ("schedules", "writers", "pdf", "ocsf"):
        return _importlib.import_module(f"auditlens.export.{name}")
    if name not in __all__:
        raise AttributeError(f"module 'auditlens.export' has no attribute {name!r}")
    module = "writers" if name in _WRITERS else "ocsf" if name in _OCSF else "schedules"
    value: object = getattr(_importlib.import_module(f"auditlens.export.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The package's attributes, lazy public names included."""
    return sorted(set(globals()) | set(__all__))
