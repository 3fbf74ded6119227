"""The tables of alerting, owned by :mod:`auditlens.alerts.engine`.

``alert_state`` holds, per rule and group, the last alert sent (dedup and cooldown; the row
``("__watch__", "cursor")`` is where ``watch`` stopped); ``alert_deliveries`` one row per
alert, channel and target with its status and retries. They live in the audited store, so a
restart of ``watch`` elsewhere continues where the last one stopped. Declared on the storage
layer's shared :data:`~auditlens.store.backend.metadata`; the store creates them with its
schema (:data:`~auditlens.store.backend.FEATURE_TABLES`).

Example:
    >>> [c.name for c in alert_state.primary_key]
    ['rule', 'group_key']
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Text, UniqueConstraint

from auditlens.store.backend import ID_TYPE, declare_table

__all__ = ["alert_deliveries", "alert_state"]

alert_state = declare_table(
    "alert_state",
    Column("rule", String(200), primary_key=True),
    Column("group_key", String(300), primary_key=True),
    Column("last_alert_id", String(32), nullable=False),
    Column("last_window_end_ms", BigInteger, nullable=False),
    Column("fired_at_ms", BigInteger, nullable=False),
)

alert_deliveries = declare_table(
    "alert_deliveries",
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("alert_id", String(32), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("sent_ms", BigInteger),
    UniqueConstraint("alert_id", "channel", "target", name="uq_alert_delivery"),
)
