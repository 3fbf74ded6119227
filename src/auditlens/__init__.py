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

from auditlens import export, plots, reports, troubleshoot
from auditlens.chain.notes import SigningKey, VerifierKey, load_signing_key, load_verifier
from auditlens.chain.verify import VerificationReport, verify
from auditlens.compat import query_audit_trail, stream_audit_events
from auditlens.errors import (
    AuditLensError,
    ConfigError,
    DuplicateEntryError,
    FilterError,
    IngestError,
    QuerySyntaxError,
    StoreError,
    StoreVersionError,
    ValidationError,
)
from auditlens.explorer import explore
from auditlens.frames import COLUMNS, expand_details
from auditlens.query import Filter, parse_search
from auditlens.reports import build_report
from auditlens.resources import open_store_or_sample
from auditlens.schema import ACTIONS, CATEGORIES, ActorType, Result
from auditlens.store import AppendedEntry, AuditStore, Page, Stats, open_store

__version__ = "0.1.0"

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "COLUMNS",
    "ActorType",
    "AppendedEntry",
    "AuditLensError",
    "AuditStore",
    "ConfigError",
    "DuplicateEntryError",
    "Filter",
    "FilterError",
    "IngestError",
    "Page",
    "QuerySyntaxError",
    "Result",
    "SigningKey",
    "Stats",
    "StoreError",
    "StoreVersionError",
    "ValidationError",
    "VerificationReport",
    "VerifierKey",
    "__version__",
    "build_report",
    "expand_details",
    "explore",
    "export",
    "load_signing_key",
    "load_verifier",
    "open_store",
    "open_store_or_sample",
    "parse_search",
    "plots",
    "query_audit_trail",
    "reports",
    "stream_audit_events",
    "troubleshoot",
    "verify",
]
