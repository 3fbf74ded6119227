"""Version 2: ``audit_entries.actor_user_id`` holds up to 256 characters (was 36).

An actor's id is any stable identifier (an IAM ARN, an Okta id), not only a UUID. SQLite
does not enforce VARCHAR lengths, so there the step changes nothing but the recorded
version; PostgreSQL widens the column in place (no table rewrite: varchar(36) →
varchar(256) is binary compatible, so the index on it and the append-only triggers stay
as they are, and the content hashes are unchanged).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import String

from auditlens.store.migrations.migration import Migration

if TYPE_CHECKING:
    from alembic.operations import Operations

__all__ = ["MIGRATION"]


def _upgrade(op: Operations, dialect: str) -> None:
    if dialect == "sqlite":
        return
    op.alter_column(
        "audit_entries",
        "actor_user_id",
        type_=String(256),
        existing_type=String(36),
        existing_nullable=True,
    )


MIGRATION = Migration(2, "actor_user_id holds up to 256 characters", _upgrade)
