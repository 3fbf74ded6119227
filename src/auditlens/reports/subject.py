"""GDPR Art. 15 — what the audit trail holds about one data subject, and who accessed it.

Three parts, each found by a query pushed into the database:

* entries where the subject is the **actor** (by email or user id);
* entries where the subject is the **resource** (invited, suspended, role changed …);
* **access to their data**: reviews of the audit log (``audit_log.exported`` /
  ``audit_log.viewed``) in the organizations they belong to — marked ``targeted``
  when the review's filters name them, otherwise a bulk export that covered them.

Example:
    >>> import auditlens as al
    >>> from auditlens.reports.subject import subject_access
    >>> store = al.open_store("sqlite://")
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> _ = store.append([{"action": "auth.login", "result": "success", "organization_id": org,
    ...     "actor": {"email": "jane@company.com", "type": "user"}}])
    >>> sa = subject_access(store, "jane@company.com")
    >>> sa.counts
    {'as_actor': 1, 'as_subject': 0, 'accesses': 0, 'targeted_accesses': 0, 'organizations': 1}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from auditlens.errors import FilterError

if TYPE_CHECKING:
    from auditlens.store.store import AuditStore

__all__ = ["SubjectAccess", "subject_access"]


@dataclass
class SubjectAccess:
    """The entries about one data subject, and the accesses to them."""

    subject: str
    as_actor: pl.DataFrame
    as_subject: pl.DataFrame
    accesses: pl.DataFrame
    extracted_at: datetime

    @property
    def organizations(self) -> list[str]:
        """Organizations in which the subject appears."""
        orgs = pl.concat([self.as_actor["organization_id"], self.as_subject["organization_id"]])
        return sorted(orgs.unique().to_list())

    @property
    def counts(self) -> dict[str, int]:
        """How many entries of each kind."""
        return {
            "as_actor": self.as_actor.height,
            "as_subject": self.as_subject.height,
            "accesses": self.accesses.height,
            "targeted_accesses": int(self.accesses["targeted"].sum())
            if self.accesses.height
            else 0,
            "organizations": len(self.organizations),
        }

    def to_json(self) -> dict[str, Any]:
        """Counts and the accesses (who, when, what), JSON-ready."""
        return {
            "subject": self.subject,
            "extracted_at": self.extracted_at.isoformat(),
            "counts": self.counts,
            "organizations": self.organizations,
            "accesses": self.accesses.select(
                pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
                "actor_email",
                "action",
                "targeted",
                "details",
            ).to_dicts(),
        }

    def export(self, store: AuditStore, path: str | Path, *, format: str = "json") -> Path:
        """Every entry about the subject (as actor or resource) in one file — the copy
        Art. 15(3) entitles them to. The export itself is recorded in the trail."""
        ids = pl.concat([self.as_actor["audit_id"], self.as_subject["audit_id"]]).unique()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if ids.len() == 0:
            out.write_text("[]\n" if format == "json" else "", encoding="utf-8")
            return out
        store.export(out, format=format, audit_id=ids.sort().to_list())
        return out


def subject_access(
    store: AuditStore, subject: str, *, organization_id: str | None = None
) -> SubjectAccess:
    """Everything the trail holds about ``subject`` (an email or user id)."""
    subject = subject.strip()
    if not subject:
        raise FilterError("name the data subject by email or user id")
    extra: dict[str, Any] = {"organization_id": organization_id} if organization_id else {}
    extracted = datetime.now(UTC)
    as_actor = store.query(actor=subject, backend="polars", order="asc", **extra)
    as_subject = store.query(resource=subject, backend="polars", order="asc", **extra)
    orgs = sorted(
        set(as_actor["organization_id"].to_list()) | set(as_subject["organization_id"].to_list())
    )
    ids = {subject.lower()}
    ids |= {u.lower() for u in as_actor["actor_user_id"].drop_nulls().to_list()}
    ids |= {e.lower() for e in as_actor["actor_email"].drop_nulls().to_list()}
    if orgs:
        reviews = store.query(
            actions=["audit_log.exported", "audit_log.viewed"],
            organization_id=orgs,
            backend="polars",
            order="asc",
        )
    else:
        reviews = as_actor.clear()
    lowered = pl.col("details").fill_null("").str.to_lowercase()
    targeted = pl.any_horizontal([lowered.str.contains(i, literal=True) for i in sorted(ids)])
    accesses = reviews.with_columns(targeted.alias("targeted"))
    return SubjectAccess(subject, as_actor, as_subject, accesses, extracted)
