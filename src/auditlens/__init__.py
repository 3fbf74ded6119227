"""auditlens — who did what, when, from where, and with what result.

An append-only, hash-chained audit store (SQLite or PostgreSQL) with filters and
search pushed down into SQL, results as pandas or polars dataframes.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> _ = store.append({"actor": {"email": "jane@company.com", "type": "user"},
    ...                   "action": "webhook.created", "result": "success",
    ...     "resource": {"type": "webhook", "id": "wh-1", "name": "Production Webhook"},
    ...                   "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"})
    >>> store.search('jane@company.com "Production Webhook"', backend="polars")["action"].to_list()
    ['webhook.created']
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:  # the real types for mypy and IDEs; at run time they load on first use
    from auditlens import (
        alerts,
        context,
        detect,
        export,
        importers,
        ingest,
        plots,
        reports,
        retention,
        troubleshoot,
    )
    from auditlens.chain.notes import SigningKey, VerifierKey, load_signing_key, load_verifier
    from auditlens.chain.verify import VerificationReport, verify
    from auditlens.compat import query_audit_trail, stream_audit_events
    from auditlens.explorer import explore
    from auditlens.facade import AuditStore, open_store
    from auditlens.frames import COLUMNS, expand_details
    from auditlens.lake import Lake, open_lake, sync_lake, verify_lake
    from auditlens.query import Filter, parse_search
    from auditlens.reports import build_report
    from auditlens.resources import open_store_or_sample
    from auditlens.responses import triage
    from auditlens.schema import ACTIONS, CATEGORIES, ActorType, Result
    from auditlens.store.store import AppendedEntry, Page, Stats

# the errors are light (no third-party imports) and wanted by every caller: loaded now
from auditlens.errors import (
    AmbiguousOrganizationError,
    ArchiveError,
    AuditLensError,
    ConfigError,
    ContextError,
    DeliveryError,
    DetectorError,
    DuplicateEntryError,
    ExportFormatError,
    FilterError,
    FindingNotFoundError,
    FrameworkError,
    IngestAbortedError,
    IngestError,
    NotebookError,
    NoteFormatError,
    ProofError,
    QuerySyntaxError,
    RuleError,
    SigmaRuleError,
    StoreError,
    StoreVersionError,
    TriageError,
    ValidationError,
    WitnessError,
    YamlFileError,
)

__version__ = "0.1.0"

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "COLUMNS",
    "ActorType",
    "AmbiguousOrganizationError",
    "AppendedEntry",
    "ArchiveError",
    "AuditLensError",
    "AuditStore",
    "ConfigError",
    "ContextError",
    "DeliveryError",
    "DetectorError",
    "DuplicateEntryError",
    "ExportFormatError",
    "Filter",
    "FilterError",
    "FindingNotFoundError",
    "FrameworkError",
    "IngestAbortedError",
    "IngestError",
    "Lake",
    "NoteFormatError",
    "NotebookError",
    "Page",
    "ProofError",
    "QuerySyntaxError",
    "Result",
    "RuleError",
    "SigmaRuleError",
    "SigningKey",
    "Stats",
    "StoreError",
    "StoreVersionError",
    "TriageError",
    "ValidationError",
    "VerificationReport",
    "VerifierKey",
    "WitnessError",
    "YamlFileError",
    "__version__",
    "alerts",
    "build_report",
    "context",
    "detect",
    "expand_details",
    "explore",
    "export",
    "importers",
    "ingest",
    "load_signing_key",
    "load_verifier",
    "open_lake",
    "open_store",
    "open_store_or_sample",
    "parse_search",
    "plots",
    "query_audit_trail",
    "reports",
    "retention",
    "stream_audit_events",
    "sync_lake",
    "triage",
    "troubleshoot",
    "verify",
    "verify_lake",
]

#: public name → the module that defines it (``""``: the name is itself a submodule).
#: Importing ``auditlens`` stays cheap (no polars, SQLAlchemy, pyarrow or pandas) so the
#: ``auditlens`` command starts fast; each name is imported on first access (PEP 562).
_LAZY: dict[str, str] = {
    "ACTIONS": "auditlens.schema",
    "CATEGORIES": "auditlens.schema",
    "COLUMNS": "auditlens.frames",
    "ActorType": "auditlens.schema",
    "AppendedEntry": "auditlens.store.store",
    "AuditStore": "auditlens.facade",
    "Filter": "auditlens.query",
    "Page": "auditlens.store.store",
    "Result": "auditlens.schema",
    "SigningKey": "auditlens.chain.notes",
    "Stats": "auditlens.store.store",
    "VerificationReport": "auditlens.chain.verify",
    "VerifierKey": "auditlens.chain.notes",
    "Lake": "auditlens.lake",
    "alerts": "",
    "build_report": "auditlens.reports",
    "context": "",
    "detect": "",
    "expand_details": "auditlens.frames",
    "explore": "auditlens.explorer",
    "export": "",
    "importers": "",
    "ingest": "",
    "load_signing_key": "auditlens.chain.notes",
    "load_verifier": "auditlens.chain.notes",
    "open_lake": "auditlens.lake",
    "open_store": "auditlens.facade",
    "open_store_or_sample": "auditlens.resources",
    "parse_search": "auditlens.query",
    "plots": "",
    "query_audit_trail": "auditlens.compat",
    "reports": "",
    "retention": "",
    "stream_audit_events": "auditlens.compat",
    "sync_lake": "auditlens.lake",
    "triage": "auditlens.responses",
    "troubleshoot": "",
    "verify": "auditlens.chain.verify",
    "verify_lake": "auditlens.lake",
}


def __getattr__(name: str) -> object:
    """Import a public name on first use (PEP 562) and keep it as a module attribute."""
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'auditlens' has no attribute {name!r}") from None
    if module:
        value: object = getattr(_importlib.import_module(module), name)
    else:
        value = _importlib.import_module(f"auditlens.{name}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's attributes, lazy public names included."""
    return sorted(set(globals()) | set(__all__))
