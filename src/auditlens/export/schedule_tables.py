"""The tables of scheduled exports, owned by :mod:`auditlens.export.schedules`.

``export_schedules`` holds one row per schedule, ``export_runs`` one row per (schedule,
period) with its status, attempts and result (the unique period makes a run exactly-once).
Declared on the storage layer's shared :data:`~auditlens.store.backend.metadata`; the store
creates them with its schema (:data:`~auditlens.store.backend.FEATURE_TABLES`).

Example:
    >>> export_runs.c.status.type.length
    16
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Text, UniqueConstraint

from auditlens.store.backend import ID_TYPE, declare_table

__all__ = ["export_runs", "export_schedules"]

export_schedules = declare_table(
    "export_schedules",
    Column("name", String(200), primary_key=True),
    Column("organization_id", String(36), nullable=False),
    Column("every", String(16), nullable=False),
    Column("at", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("query", Text),
    Column("format", String(16), nullable=False),
    Column("fields", Text),
    Column("destination", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("report", Text),  # a framework (soc2, iso27001, gdpr or a YAML path): deliver its PDF
)

export_runs = declare_table(
    "export_runs",
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("schedule", String(200), nullable=False),
    Column("period_start_ms", BigInteger, nullable=False),
    Column("period_end_ms", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # running | succeeded | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger),
    Column("finished_ms", BigInteger),
    Column("rows", BigInteger),
    Column("bytes", BigInteger),
    Column("sha256", String(64)),
    Column("destination", Text, nullable=False),
    Column("location", Text),
    Column("error", Text),
    UniqueConstraint("schedule", "period_start_ms", name="uq_export_run_period"),
)
