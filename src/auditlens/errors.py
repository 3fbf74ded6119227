"""Exceptions raised by auditlens.

Every error auditlens raises on purpose derives from :class:`AuditLensError`, and
each subclass also inherits the matching builtin so that ``except ValueError``
keeps working in code that does not know auditlens::

    AuditLensError
    ├── ValidationError (ValueError)        an entry (or several) is malformed
    ├── DuplicateEntryError (ValueError)    same audit_id, different content
    ├── QuerySyntaxError (ValueError)       a search query cannot be parsed
    ├── FilterError (ValueError)            a filter argument is malformed
    ├── ConfigError (ValueError)            a setting or URL is malformed
    ├── IngestError (ValueError)            an input file cannot be read at all
    └── StoreError (RuntimeError)           the database refused or is unusable
        └── StoreVersionError               the store was made by another schema version

Feature modules add their own, under the same root: ``alerts.RuleError`` (ValueError),
``alerts.DeliveryError`` (RuntimeError), ``chain.checkpoints.WitnessError`` (ValueError),
``retention.ArchiveError`` (RuntimeError).

Messages say what was wrong, where (entry index or file line, field), and end
with a hint of what to do.

Example:
    >>> from auditlens.errors import AuditLensError, ValidationError
    >>> issubclass(ValidationError, ValueError) and issubclass(ValidationError, AuditLensError)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AuditLensError",
    "ConfigError",
    "DuplicateEntryError",
    "EntryProblem",
    "FilterError",
    "IngestError",
    "QuerySyntaxError",
    "StoreError",
    "StoreVersionError",
    "ValidationError",
]


class AuditLensError(Exception):
    """Root of every error auditlens raises on purpose."""


@dataclass(frozen=True)
class EntryProblem:
    """One problem found in one entry.

    Attributes:
        index: position of the entry in the batch (0-based), or ``None``.
        field: dotted path of the offending field (``actor.email``), or ``""``.
        message: what is wrong with it.
        line: 1-based line number in the input file, when the entry came from one.
        source: the input file name, when known.
    """

    index: int | None
    field: str
    message: str
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        where: list[str] = []
        if self.source is not None:
            where.append(self.source)
        if self.line is not None:
            where.append(f"line {self.line}")
        elif self.index is not None:
            where.append(f"entry {self.index}")
        if self.field:
            where.append(f"field '{self.field}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ValidationError(AuditLensError, ValueError):
    """One or more entries are malformed; nothing was written.

    Attributes:
        problems: every problem found (validation is lazy: the whole batch is checked).
    """

    def __init__(self, problems: Sequence[EntryProblem]) -> None:
        self.problems: list[EntryProblem] = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:20])
        more = len(self.problems) - 20
        if more > 0:
            shown += f"\n  … and {more} more"
        super().__init__(
            f"{len(self.problems)} invalid field(s); nothing was appended:\n{shown}\n"
            "Fix the entries (see docs/ENTRY.md for the shape) and append again."
        )


class DuplicateEntryError(AuditLensError, ValueError):
    """An ``audit_id`` already exists with different content; nothing was written."""

    def __init__(self, audit_id: str, differing: Sequence[str]) -> None:
        self.audit_id = audit_id
        self.differing = list(differing)
        super().__init__(
            f"audit_id {audit_id} already exists with different content "
            f"(fields differ: {', '.join(self.differing)}); nothing was appended. "
            "Audit entries are immutable: give the new event its own audit_id."
        )


class QuerySyntaxError(AuditLensError, ValueError):
    """A search query cannot be parsed.

    Attributes:
        query: the query text.
        position: 0-based offset of the problem in ``query``.
    """

    def __init__(self, message: str, query: str, position: int) -> None:
        self.query = query
        self.position = position
        self.reason = message
        caret = " " * position + "^"
        super().__init__(
            f"{message} at position {position}:\n  {query}\n  {caret}\n"
            "See `auditlens search --help` for the syntax."
        )


class FilterError(AuditLensError, ValueError):
    """A filter argument (date, duration, CIDR, enum value…) is malformed."""


class ConfigError(AuditLensError, ValueError):
    """A setting, URL or option is malformed or missing."""


class IngestError(AuditLensError, ValueError):
    """An input file cannot be read at all (not JSON Lines nor a JSON array)."""


class StoreError(AuditLensError, RuntimeError):
    """The database refused an operation or the store is unusable."""


class StoreVersionError(StoreError):
    """The store was created by an incompatible auditlens schema version."""
