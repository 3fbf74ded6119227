"""Exports of audit entries (CSV, JSON, JSON Lines, Parquet), streamed in chunks."""

from __future__ import annotations

from auditlens.export.writers import FORMATS, ExportResult, export, resolve_fields

__all__ = ["FORMATS", "ExportResult", "export", "resolve_fields"]
