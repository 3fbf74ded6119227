"""Exceptions raised by auditlens.

Every error auditlens raises on purpose derives from :class:`AuditLensError`, and
each subclass also inherits the matching builtin so that ``except ValueError``
keeps working in code that does not know auditlens::

    AuditLensError
    ├── ValidationError (ValueError)        an entry (or several) is malformed
    ├── DuplicateEntryError (ValueError)    same audit_id, different content
    ├── QuerySyntaxError (ValueError)       a search query cannot be parsed
    ├── FilterError (ValueError)            a filter argument is malformed
    │   ├── AmbiguousOrganizationError      a name or id matches several organizations
    │   ├── TriageError                     a finding's triage is malformed (disposition)
    │   ├── DetectorError                   an unknown detector or a bad detector parameter
    │   └── ExportFormatError               an unknown export format (or gzip of a binary one)
    ├── ConfigError (ValueError)            a setting or URL is malformed
    ├── ContextError (ValueError)           an organization's context (time zone, people) is bad
    ├── IngestError (ValueError)            an input file cannot be read at all
    ├── FindingNotFoundError (ValueError)   no detector finding has this id
    ├── YamlFileError (ValueError)          a YAML file is invalid (file, line, field)
    │   ├── RuleError                       an alert rules file is invalid
    │   ├── SigmaRuleError                  a Sigma rule cannot be read or run by auditlens
    │   └── FrameworkError                  a report framework file is invalid
    ├── WitnessError (ValueError)           a witness refused to cosign a checkpoint
    ├── ProofError (ValueError)             a Merkle proof was asked for a bad tree size or leaf
    ├── NoteFormatError (ValueError)        a signed note or checkpoint is malformed
    ├── DeliveryError (RuntimeError)        an email or webhook was not delivered
    ├── ArchiveError (RuntimeError)         an archive does not match its manifest
    ├── NotebookError (RuntimeError)        a notebook cell failed
    └── StoreError (RuntimeError)           the database refused or is unusable
        ├── StoreVersionError               the store was made by another schema version
        └── IngestAbortedError              the database refused one batch of an ingest

Every class is defined here and re-exported as ``auditlens.<Name>``; feature modules
re-export the ones they raise under their old paths too (``auditlens.alerts.RuleError``,
``auditlens.chain.checkpoints.WitnessError``, ``auditlens.retention.ArchiveError`` …).

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
    "AmbiguousOrganizationError",
    "ArchiveError",
    "AuditLensError",
    "ConfigError",
    "ContextError",
    "DeliveryError",
    "DetectorError",
    "DuplicateConflict",
    "DuplicateEntryError",
    "EntryProblem",
    "ExportFormatError",
    "FilterError",
    "FindingNotFoundError",
    "FrameworkError",
    "IngestAbortedError",
    "IngestError",
    "NoteFormatError",
    "NotebookError",
    "ProofError",
    "QuerySyntaxError",
    "RuleError",
    "SigmaRuleError",
    "StoreError",
    "StoreVersionError",
    "TriageError",
    "ValidationError",
    "WitnessError",
    "YamlFileError",
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


@dataclass(frozen=True)
class DuplicateConflict:
    """One entry whose ``audit_id`` is already taken by different content.

    Attributes:
        index: position of the entry in the batch (0-based), or ``None`` when unknown.
        audit_id: the re-used id.
        differing: the fields whose values differ from the stored (or earlier) entry.
    """

    index: int | None
    audit_id: str
    differing: tuple[str, ...]


class DuplicateEntryError(AuditLensError, ValueError):
    """An ``audit_id`` already exists with different content; nothing was written.

    Attributes:
        audit_id, differing: the first conflict of the batch.
        conflicts: every conflict of the batch (found with one lookup), in input order.
    """

    def __init__(
        self,
        audit_id: str,
        differing: Sequence[str],
        conflicts: Sequence[DuplicateConflict] = (),
    ) -> None:
        self.audit_id = audit_id
        self.differing = list(differing)
        self.conflicts: list[DuplicateConflict] = list(conflicts) or [
            DuplicateConflict(None, audit_id, tuple(differing))
        ]
        more = len(self.conflicts) - 1
        super().__init__(
            f"audit_id {audit_id} already exists with different content "
            f"(fields differ: {', '.join(self.differing)})"
            + (f" (and {more} more entries like it)" if more > 0 else "")
            + "; nothing was appended. "
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


class IngestAbortedError(StoreError):
    """The database refused one batch of an ingest; that batch was rolled back and ingest stopped.

    Entries of the batches committed before it stay (re-running the ingest skips
    them as already stored); the rejected lines found so far were written to the
    rejects file.

    Attributes:
        source: the input's name.
        first_line, last_line: the line range of the refused batch.
        appended, duplicates, rejected: counts of what was done before it stopped.
        rejected_lines: ``(line, reason)`` of each line rejected before it stopped.
    """

    def __init__(
        self,
        source: str,
        first_line: int,
        last_line: int,
        reason: str,
        *,
        appended: int,
        duplicates: int,
        rejected: int,
        rejects_path: str | None,
        rejected_lines: Sequence[tuple[int, str]] = (),
    ) -> None:
        self.source = source
        self.first_line = first_line
        self.last_line = last_line
        self.appended = appended
        self.duplicates = duplicates
        self.rejected = rejected
        self.rejected_lines = list(rejected_lines)
        written = f" (written to {rejects_path})" if rejects_path and rejected else ""
        super().__init__(
            f"{source}:{first_line}-{last_line}: the database refused the batch of lines "
            f"{first_line}-{last_line}: {reason}. That batch was rolled back and ingest stopped "
            f"there: nothing from line {first_line} on was appended; {appended:,} entries of "
            f"earlier lines were appended and stay ({duplicates:,} already stored); "
            f"{rejected:,} rejected line(s) so far{written}. Fix the cause and ingest the file "
            "again: entries already stored are skipped."
        )


class ContextError(AuditLensError, ValueError):
    """An organization's context (time zone, hours, workdays, people) is malformed."""


class AmbiguousOrganizationError(FilterError):
    """A name or id (a webhook id, an application's name, a user's email …) matches entries
    in several organizations, and answering for all of them at once would mix tenants.

    Attributes:
        name: what was looked up.
        organizations: the matching organization ids, sorted.
        labels: ``Name (id)`` per organization, in the same order (the id alone when the
            trail records no name).

    Example:
        >>> err = AmbiguousOrganizationError("wh-1", ["o-1", "o-2"], ["Acme (o-1)", "o-2"])
        >>> str(err).split("; ")[0]
        "'wh-1' matches entries in 2 organizations: Acme (o-1), o-2"
    """

    def __init__(
        self, name: str, organizations: Sequence[str], labels: Sequence[str] | None = None
    ) -> None:
        self.name = name
        self.organizations = list(organizations)
        self.labels = list(labels) if labels is not None else list(organizations)
        super().__init__(
            f"{name!r} matches entries in {len(self.organizations)} organizations: "
            f"{', '.join(self.labels)}; pass organization_id=… (an id or a name above) "
            "to choose one"
        )


class DeliveryError(AuditLensError, RuntimeError):
    """One delivery attempt (email, Slack, webhook) failed; the message never holds secrets.

    Also available as ``auditlens.alerts.DeliveryError``.
    """


class TriageError(FilterError):
    """A triage request is malformed: an unknown disposition, a missing organization.

    Example:
        >>> issubclass(TriageError, ValueError)
        True
    """


class FindingNotFoundError(AuditLensError, ValueError):
    """No detector finding has this ``finding_id`` (in the organization's entries)."""


class DetectorError(FilterError):
    """A detector is unknown, or one of its parameters is malformed.

    Example:
        >>> issubclass(DetectorError, FilterError)
        True
    """


class ExportFormatError(FilterError):
    """An export format is unknown, or gzip was asked for a binary format."""


class YamlFileError(AuditLensError, ValueError):
    """A YAML file is invalid; the message names the file, line and field.

    Attributes:
        source: the file name.
        line: 1-based line of the offending value, or ``None``.
        field: dotted path of the offending field.
    """

    def __init__(self, source: str, line: int | None, field_name: str, message: str) -> None:
        self.source, self.line, self.field = source, line, field_name
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field_name}: {message}")


class RuleError(YamlFileError):
    """A rules file is invalid; the message names the file, line and field."""


class SigmaRuleError(YamlFileError):
    """A Sigma rule cannot be read, or uses what auditlens cannot run (a modifier, field or
    correlation); the message names the file, line, field and the rule (title and id)."""


class FrameworkError(YamlFileError):
    """A framework file is invalid; the message names the file, line and field."""


class WitnessError(AuditLensError, ValueError):
    """A witness refused to cosign: the new checkpoint is not consistent with what it saw."""


class ProofError(AuditLensError, ValueError):
    """A Merkle root or proof was asked for a tree size or leaf index the tree does not have.

    (The proof *verifiers* never raise: a bad proof makes them return False.)
    """


class NoteFormatError(AuditLensError, ValueError):
    """A signed note or checkpoint body is malformed (signature lines, size, root hash)."""


class ArchiveError(AuditLensError, RuntimeError):
    """An archive does not match its manifest (or the manifest is missing)."""


class NotebookError(AuditLensError, RuntimeError):
    """A notebook cell failed; the message names the cell and the executed notebook."""
