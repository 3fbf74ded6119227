"""Exports of audit entries (CSV, JSON, JSON Lines, Parquet, PDF, OCSF), streamed in chunks;
scheduled exports and their destinations."""

from __future__ import annotations

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
