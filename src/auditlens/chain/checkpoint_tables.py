"""The tables of signed checkpoints, owned by :mod:`auditlens.chain.checkpoints`.

``checkpoints`` holds every signed tree head (C2SP note) of an organization's Merkle tree,
``signing_keys`` every key seen signing one (``log`` or ``witness``). Both vouch for the
log, so both are append-only (:data:`auditlens.store.backend.APPEND_ONLY_TABLES`: the
storage layer's triggers refuse UPDATE and DELETE). Declared on the storage layer's shared
:data:`~auditlens.store.backend.metadata`; the store creates them when it creates its schema
(:data:`~auditlens.store.backend.FEATURE_TABLES`).

Example:
    >>> sorted(checkpoints.c.keys())
    ['created_ms', 'id', 'note', 'organization_id', 'root_hash', 'tree_size']
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Text

from auditlens.store.backend import ID_TYPE, declare_table

__all__ = ["checkpoints", "signing_keys"]

checkpoints = declare_table(
    "checkpoints",
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("organization_id", String(36), nullable=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
    Index("ix_checkpoints_org_size", "organization_id", "tree_size"),
)

signing_keys = declare_table(
    "signing_keys",
    Column("vkey", String(200), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),  # log | witness
    Column("first_seen_ms", BigInteger, nullable=False),
)
