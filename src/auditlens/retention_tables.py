"""The plan table, owned by :mod:`auditlens.retention`.

``org_plans`` has one row per plan change (append-only: the storage layer's triggers refuse
UPDATE and DELETE, :data:`auditlens.store.backend.APPEND_ONLY_TABLES`); an organization's
current plan is its newest row. The archived-prefix boundary (``retention_log``) and the one
authorized removal (``retention_authorizations``) belong to the storage layer
(:mod:`auditlens.store.backend`): the chain continues from the one, and the triggers of
``audit_entries`` consult the other. Declared on the storage layer's shared
:data:`~auditlens.store.backend.metadata`; the store creates it with its schema
(:data:`~auditlens.store.backend.FEATURE_TABLES`).

Example:
    >>> sorted(org_plans.c.keys())
    ['changed_ms', 'id', 'organization_id', 'plan', 'retention_days']
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String

from auditlens.store.backend import ID_TYPE, declare_table

__all__ = ["org_plans"]

# one row per plan change (append-only); an organization's current plan is its newest row
org_plans = declare_table(
    "org_plans",
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("organization_id", String(36), nullable=False),
    Column("plan", String(16), nullable=False),  # free | starter | pro | enterprise
    Column("retention_days", Integer),  # enterprise: custom days, or NULL for unlimited
    Column("changed_ms", BigInteger, nullable=False),
    Index("ix_org_plans_org_id", "organization_id", "id"),
)
