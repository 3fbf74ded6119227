"""Exports of audit entries (CSV, JSON, JSON Lines, Parquet, PDF), streamed in chunks;
scheduled exports and their destinations."""

from __future__ import annotations

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
    "list_runs",
    "list_schedules",
    "previous_period",
    "remove_schedule",
    "resolve_fields",
    "run_due",
]
