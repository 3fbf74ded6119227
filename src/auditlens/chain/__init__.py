"""Tamper evidence: the canonical bytes of an entry and the per-organization hash chain.

See ``docs/CHAIN.md`` for the specification an auditor can re-implement.
"""

from __future__ import annotations

from auditlens.chain.canonical import (
    CANONICAL_VERSION,
    CONTENT_FIELDS,
    GENESIS_HASH,
    canonical_bytes,
    content_hash,
    content_hashes,
    entry_hash,
    link_hash,
)

__all__ = [
    "CANONICAL_VERSION",
    "CONTENT_FIELDS",
    "GENESIS_HASH",
    "canonical_bytes",
    "content_hash",
    "content_hashes",
    "entry_hash",
    "link_hash",
]
