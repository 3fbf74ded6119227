"""``AuditStore``: the store with its features one method away (what ``al.open_store`` returns).

The storage layer (:class:`auditlens.store.Store`) knows nothing of detectors, exports,
checkpoints or organization context; those features are built on it. This module sits
*above* them and imports only downwards, so the convenience methods
(``store.detect``, ``store.export``, ``store.checkpoint``, the proofs, the organization
context) create no import cycle and carry the features' real types.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> store.detect("all").height, store.count()
    (0, 0)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Unpack, overload

from auditlens import context as _context
from auditlens.chain.checkpoints import (
    CheckpointRecord,
    ConsistencyProof,
    InclusionProof,
    create_checkpoint,
    make_consistency_proof,
    make_inclusion_proof,
)
from auditlens.chain.notes import SigningKey, parse_checkpoint, parse_note
from auditlens.errors import FilterError
from auditlens.query.keywords import FilterKeywords
from auditlens.schema import DEFAULT_MAX_DETAILS_BYTES
from auditlens.store.store import Store, Where

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from auditlens.detect.allowlist import AllowlistSource
    from auditlens.export.writers import ExportResult

__all__ = ["AuditStore", "open_store"]


def open_store(
    url: str | None = None,
    *,
    strict_actions: bool = False,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
) -> AuditStore:
    """Open (and on first use create) an audit store.

    Args:
        url: SQLAlchemy URL or SQLite file path; default ``$AUDITLENS_URL``, else
            ``sqlite:///auditlens.db``. PostgreSQL: ``postgresql+psycopg://user@host/db``.
        strict_actions: refuse actions outside the catalogue.
        max_details_bytes: largest accepted ``details`` object, as compact JSON.

    Raises:
        StoreVersionError: the database holds a store of another schema version.
        ConfigError: the URL is malformed or names an unsupported database.

    Example:
        >>> with open_store("sqlite://") as store:
        ...     store.count()
        0
    """
    return AuditStore.open(url, strict_actions=strict_actions, max_details_bytes=max_details_bytes)


class AuditStore(Store):
    """An append-only store of audit entries with a per-organization hash chain, plus
    the features one method away: detectors, exports, checkpoints and proofs, and the
    organization context.

    Use :func:`open_store` to get one. Every method of :class:`~auditlens.store.Store`
    works as documented there; the methods here are thin, typed wrappers of the feature
    functions they name.
    """

    # -- detection -----------------------------------------------------------------
    @overload
    def detect(
        self,
        name_or_all: str = ...,
        where: Where = ...,
        *,
        config: Mapping[str, Any] | None = ...,
        context: bool = ...,
        allowlist: AllowlistSource | None = ...,
        sigma: str | Path | Sequence[str | Path] | None = ...,
        keep_suppressed: bool = ...,
        backend: Literal["polars"] = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pl.DataFrame: ...
    @overload
    def detect(
        self,
        name_or_all: str = ...,
        where: Where = ...,
        *,
        config: Mapping[str, Any] | None = ...,
        context: bool = ...,
        allowlist: AllowlistSource | None = ...,
        sigma: str | Path | Sequence[str | Path] | None = ...,
        keep_suppressed: bool = ...,
        backend: Literal["pandas"],
        **filters: Unpack[FilterKeywords],
    ) -> pd.DataFrame: ...
    def detect(
        self,
        name_or_all: str = "all",
        where: Where = None,
        *,
        config: Mapping[str, Any] | None = None,
        context: bool = True,
        allowlist: AllowlistSource | None = None,
        sigma: str | Path | Sequence[str | Path] | None = None,
        keep_suppressed: bool = False,
        backend: Literal["polars", "pandas"] = "polars",
        **filters: Unpack[FilterKeywords],
    ) -> pl.DataFrame | pd.DataFrame:
        """Run one detector (``config`` = its parameters) or all of them on matching entries.

        With ``context`` (the default) the organizations' stored context (time zones,
        business hours, workdays, people: :mod:`auditlens.context`) sets the parameters
        first; ``config`` overrides it. ``allowlist`` (a file or rules of known automation:
        :mod:`auditlens.detect.allowlist`) downgrades or suppresses the findings it explains.
        :func:`auditlens.detect.stored.detect_stored` does it.

        ``sigma`` (a Sigma rule file, a folder of them, or several) runs those rules instead
        of the built-in detectors (:func:`auditlens.sigma.detect`: selections pushed into SQL,
        correlations on the same sliding windows); ``where`` and the keyword filters narrow
        them, ``allowlist`` applies to their findings too.

        Example:
            >>> import auditlens as al
            >>> al.open_store("sqlite://").detect("off_hours", last="7d").height
            0
            >>> al.open_store("sqlite://").detect(sigma="rules/").height
            0
        """
        if sigma is not None:
            return self._detect_sigma(sigma, where, allowlist, keep_suppressed, backend, filters)
        from auditlens.detect.stored import detect_stored  # lazy: loads polars; search/tail do not

        return detect_stored(
            self,
            name_or_all,
            where,
            config=config,
            use_context=context,
            allowlist=allowlist,
            keep_suppressed=keep_suppressed,
            backend=backend,
            **filters,
        )

    def _detect_sigma(
        self,
        sigma: str | Path | Sequence[str | Path],
        where: Where,
        allowlist: AllowlistSource | None,
        keep_suppressed: bool,
        backend: Literal["polars", "pandas"],
        filters: FilterKeywords,
    ) -> pl.DataFrame | pd.DataFrame:
        from auditlens.detect import apply_allowlist  # lazy: the detectors load polars
        from auditlens.sigma import detect as sigma_detect  # lazy: pySigma is an optional extra

        rules: str | Path | Sequence[str | Path] = (
            [sigma] if isinstance(sigma, str | Path) else sigma
        )
        narrowed = self.filter(where, **filters)
        found = sigma_detect(self, rules, where=narrowed if narrowed.clauses else None)
        if allowlist is not None:
            entries = self.query(narrowed, backend="polars", order="asc")
            found = apply_allowlist(found, entries, allowlist, keep_suppressed=keep_suppressed)
        return found.to_pandas() if backend == "pandas" else found

    # -- organization context (kept as audit entries: auditlens.context) ---------------
    def set_org_profile(
        self,
        organization_id: str,
        *,
        name: str | None = None,
        timezone: str | None = None,
        hours: str | None = None,
        workdays: str | Iterable[str] | None = None,
        by: str | None = None,
    ) -> _context.OrgProfile:
        """Set an organization's name, time zone, business hours or workdays.

        Recorded as an ``organization.profile_changed`` entry; see
        :func:`auditlens.context.set_org_profile`.
        """
        return _context.set_org_profile(
            self,
            organization_id,
            name=name,
            timezone=timezone,
            hours=hours,
            workdays=workdays,
            by=by,
        )

    def org_profile(self, organization_id: str) -> _context.OrgProfile:
        """An organization's current context (defaults when never set)."""
        return _context.org_profile(self, organization_id)

    def set_people(
        self,
        organization_id: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        replace_all: bool = True,
        by: str | None = None,
    ) -> _context.PeopleChange:
        """Set an organization's people (email, timezone, name, role, manager)."""
        return _context.set_people(self, organization_id, rows, replace_all=replace_all, by=by)

    def people(self, organization_id: str) -> list[_context.Person]:
        """An organization's people, sorted by email."""
        return _context.people(self, organization_id)

    # -- output ----------------------------------------------------------------------
    def export(
        self,
        out: str | os.PathLike[str] | IO[bytes],
        where: Where = None,
        *,
        format: str = "csv",
        fields: Sequence[str] | str | None = None,
        gzip: bool | None = None,
        record: bool = True,
        manifest: bool = True,
        batch_size: int = 50_000,
        query: Where = None,
        **filters: Unpack[FilterKeywords],
    ) -> ExportResult:
        """Export matching entries to a file, ``"-"`` or a binary stream.

        ``where`` is a search string or :class:`~auditlens.query.Filter` (``query=`` is
        accepted as its older name); keyword filters and the options of
        :func:`auditlens.export.export` (``gzip``, ``record``, ``manifest``) pass through.

        Example:
            >>> import auditlens as al, io
            >>> buf = io.BytesIO()
            >>> al.open_store("sqlite://").export(buf, format="csv", fields="action,result").rows
            0
            >>> buf.getvalue()
            b'action,result\\n'
        """
        if query is not None:
            if where is not None:
                raise FilterError("pass where= or its older name query=, not both")
            where = query
        from auditlens.export.writers import export  # lazy: loads polars; search/tail do not

        return export(
            self,
            out,
            format=format,
            fields=fields,
            where=where,
            gzip=gzip,
            record=record,
            manifest=manifest,
            batch_size=batch_size,
            **filters,
        )

    # -- tamper evidence -----------------------------------------------------------
    def checkpoint(
        self, organization_id: str, signing_key: SigningKey, *, origin: str | None = None
    ) -> CheckpointRecord:
        """Sign and record the organization's current Merkle tree head.

        Returns a :class:`~auditlens.chain.checkpoints.CheckpointRecord` whose ``note``
        is a C2SP signed checkpoint. Meant to run from cron (``auditlens checkpoint``).
        """
        return create_checkpoint(self, organization_id, signing_key, origin=origin)

    def inclusion_proof(
        self, audit_id: str, checkpoint: CheckpointRecord | str | int | None = None
    ) -> InclusionProof:
        """Proof that an entry is in its organization's tree at a checkpoint (default: latest)."""
        return make_inclusion_proof(self, audit_id, checkpoint)

    def consistency_proof(
        self,
        old_checkpoint: CheckpointRecord | str | int,
        new_checkpoint: CheckpointRecord | str | int | None = None,
        *,
        organization_id: str | None = None,
    ) -> ConsistencyProof:
        """Proof that an older checkpoint's tree is a prefix of a newer one (default: now)."""
        org = organization_id
        if org is None and isinstance(old_checkpoint, CheckpointRecord):
            org = old_checkpoint.organization_id
        if org is None and isinstance(old_checkpoint, str):
            org = parse_checkpoint(parse_note(old_checkpoint).body).origin.rsplit("/", 1)[-1]
        if org is None:
            raise FilterError("pass organization_id with a tree size")
        return make_consistency_proof(self, org, old_checkpoint, new_checkpoint)
