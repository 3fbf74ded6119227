"""What one schema migration is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.operations import Operations

__all__ = ["Migration"]


@dataclass(frozen=True)
class Migration:
    """One step of the stored layout: from ``version - 1`` to ``version``.

    ``upgrade(op, dialect)`` changes the layout with Alembic operations (``op``) on the
    connection of the running upgrade; it runs inside that upgrade's transaction, so it
    must not commit. ``dialect`` is ``sqlite`` or ``postgresql``.
    """

    version: int
    name: str
    upgrade: Callable[[Operations, str], None]
