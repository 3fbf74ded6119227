"""The schema migrations of a store, in order, and the frozen layout they start from.

A store records its layout version in ``auditlens_meta`` (key ``schema_version``).
Version 1 is the layout auditlens was first released with; ``v1.json`` beside this file
holds its DDL per dialect, frozen (never edited: tests build genuine version-1 stores
from it). Each later version is one :class:`Migration` here,
applied by :func:`auditlens.store.migrate.upgrade` with Alembic operations.

To change the layout: add a module ``vNNNN_<what>.py`` defining ``MIGRATION``, list it in
:data:`MIGRATIONS`, and raise :data:`auditlens.store.tables.SCHEMA_VERSION` to its version.

Example:
    >>> [(m.version, m.name) for m in MIGRATIONS]
    [(2, 'actor_user_id holds up to 256 characters')]
    >>> baseline_statements("sqlite")[0].startswith("CREATE TABLE")
    True
"""

from __future__ import annotations

import json
from pathlib import Path

from auditlens.store.migrations.migration import Migration
from auditlens.store.migrations.v0002_actor_user_id import MIGRATION as _V0002

__all__ = ["BASELINE_VERSION", "MIGRATIONS", "Migration", "baseline_statements"]

#: the version of the frozen layout every migration chain starts from.
BASELINE_VERSION = 1

#: every migration, in version order (each one's ``version`` is the previous plus one).
MIGRATIONS: tuple[Migration, ...] = (_V0002,)


def baseline_statements(dialect: str) -> list[str]:
    """The SQL statements that create a version-1 store (``sqlite`` or ``postgresql``).

    They create the tables, indexes, triggers and text-search index exactly as auditlens
    0.1 did and record ``schema_version`` 1. Run them in one transaction on an empty
    database (PostgreSQL: as a user who may create the ``pg_trgm`` extension or where
    it exists).
    """
    frozen = json.loads((Path(__file__).parent / "v1.json").read_text(encoding="utf-8"))
    return list(frozen[dialect])
