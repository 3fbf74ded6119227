"""GDPR Art. 15 — what the audit trail holds about one data subject, and who accessed it.

Three parts, each found by a query pushed into the database:

* entries where the subject is the **actor** (by email or user id);
* entries where the subject is the **resource** (invited, suspended, role changed …);
* **access to their data**: reviews of the audit log (``audit_log.exported`` /
  ``audit_log.viewed``) in the organizations they belong to — marked ``targeted``
  when the review's filters name them, otherwise a bulk export that covered them.

``SubjectAccess.export(store, path, format="pdf")`` writes the readable copy: titled for
the subject, their entries in time order (landscape, one row each), the accesses, and the
subject and period as its only filters. Every export is itself recorded in the trail.

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

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from auditlens.errors import FilterError
from auditlens.export.writers import export as export_entries
from auditlens.review import record_review
from auditlens.troubleshoot import describe_change, organization_names

if TYPE_CHECKING:
    from auditlens.store.store import Store

__all__ = ["SubjectAccess", "subject_access"]


@dataclass
class SubjectAccess:
    """The entries about one data subject, and the accesses to them."""

    subject: str
    as_actor: pl.DataFrame
    as_subject: pl.DataFrame
    accesses: pl.DataFrame
    extracted_at: datetime
    organization_names: dict[str, str] = field(default_factory=dict)

    @property
    def entries(self) -> pl.DataFrame:
        """Every entry by or about the subject, once each, oldest first, with ``relation``:
        ``actor`` (they acted), ``subject`` (done to them) or ``both``."""
        both = set(self.as_actor["audit_id"].to_list()) & set(self.as_subject["audit_id"].to_list())
        frame = pl.concat([self.as_actor, self.as_subject]).unique("audit_id", keep="first")
        relation = (
            pl.when(pl.col("audit_id").is_in(sorted(both)))
            .then(pl.lit("both"))
            .when(pl.col("audit_id").is_in(self.as_actor["audit_id"].to_list()))
            .then(pl.lit("actor"))
            .otherwise(pl.lit("subject"))
        )
        return frame.with_columns(relation.alias("relation")).sort(
            ["timestamp", "audit_id"], maintain_order=True
        )

    @property
    def period(self) -> tuple[datetime, datetime] | None:
        """The first and last entry by or about the subject (``None`` without entries)."""
        ts = pl.concat([self.as_actor["timestamp"], self.as_subject["timestamp"]])
        if ts.len() == 0:
            return None
        return ts.min(), ts.max()  # type: ignore[return-value]

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

    @property
    def title(self) -> str:
        """The PDF's title."""
        return f"Subject access — {self.subject}"

    def render_pdf(self) -> bytes:
        """The readable copy as PDF bytes: titled for the subject, the subject and the period
        as its filters, their entries oldest first, then the accesses to the log.

        Example:
            >>> import auditlens as al
            >>> sa = subject_access(al.open_store("sqlite://"), "nobody@company.com")
            >>> sa.render_pdf()[:5]
            b'%PDF-'
        """
        from auditlens.export.pdf import render_pdf  # lazy: only PDFs need jinja2 and weasyprint

        entries = self.entries
        rows = [
            {
                "time": f"{r['timestamp']:%Y-%m-%d %H:%M:%S}",
                "relation": r["relation"],
                "actor": r["actor_email"] or r["actor_user_id"] or f"({r['actor_type']})",
                "action": r["action"],
                "result": r["result"],
                "resource": _resource_text(r),
                "ip": r["ip_address"] or "",
                "details": _details_text(r["details"]),
            }
            for r in entries.iter_rows(named=True)
        ]
        accesses = [
            {
                "time": f"{a['timestamp']:%Y-%m-%d %H:%M:%S}",
                "actor": a["actor_email"] or a["actor_user_id"] or f"({a['actor_type']})",
                "action": a["action"],
                "targeted": "named" if a["targeted"] else "covered",
                "what": _review_text(a["details"]),
            }
            for a in self.accesses.iter_rows(named=True)
        ]
        period = self.period
        orgs = self.organizations
        per_org = entries.group_by("organization_id").len()
        n_of = dict(per_org.iter_rows())
        meta = {
            "Subject": self.subject,
            "Period": (
                f"{period[0]:%Y-%m-%d %H:%M} → {period[1]:%Y-%m-%d %H:%M} UTC "
                "(their first and last entry)"
                if period
                else "no entry names them"
            ),
            "Organizations": "; ".join(
                f"{self._org_label(o)}: {n_of.get(o, 0):,} entries" for o in orgs
            )
            or "-",
            "Entries": (
                f"{entries.height:,} ({self.as_actor.height:,} as actor, "
                f"{self.as_subject.height:,} as subject)"
            ),
            "Accesses to the log": (
                f"{self.accesses.height:,} ({self.counts['targeted_accesses']:,} naming them)"
            ),
            "Extracted": f"{self.extracted_at:%Y-%m-%d %H:%M:%S} UTC",
        }
        return render_pdf(
            rows,
            [],
            meta,
            self.title,
            template="subject_access.html",
            accesses=accesses,
            subject=self.subject,
            scope=", ".join(self._org_label(o) for o in orgs),
            description=f"GDPR Art. 15 subject access for {self.subject}",
        )

    def _org_label(self, org: str) -> str:
        name = self.organization_names.get(org, org)
        return org if name == org else f"{name} ({org})"

    def export(
        self, store: Store, path: str | Path, *, format: str = "json", record: bool = True
    ) -> Path:
        """Every entry about the subject (as actor or resource) in one file — the copy
        Art. 15(3) entitles them to (``format``: ``json``, ``jsonl``, ``csv``, ``parquet``,
        or ``pdf`` for the readable copy of :meth:`render_pdf`). The export itself is
        recorded in the trail (``record=False``: not)."""
        ids = pl.concat([self.as_actor["audit_id"], self.as_subject["audit_id"]]).unique()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if format == "pdf":
            return self._export_pdf(store, out, record)
        if ids.len() == 0:
            out.write_text("[]\n" if format == "json" else "", encoding="utf-8")
            return out
        export_entries(store, out, format=format, audit_id=ids.sort().to_list(), record=record)
        return out

    def _export_pdf(self, store: Store, out: Path, record: bool) -> Path:
        import hashlib

        pdf = self.render_pdf()
        out.write_bytes(pdf)
        if record:
            per_org = dict(self.entries.group_by("organization_id").len().iter_rows())
            record_review(
                store,
                "audit_log.exported",
                {o: int(per_org.get(o, 0)) for o in self.organizations},
                {
                    "format": "pdf",
                    "report": "subject_access",
                    "filters": {"subject": self.subject},
                    "sha256": hashlib.sha256(pdf).hexdigest(),
                },
                out.name,
            )
        return out


def _resource_text(row: dict[str, Any]) -> str:
    kind, rid, name = row["resource_type"], row["resource_id"], row["resource_name"]
    if not (rid or name):
        return ""
    label = name if not rid or name == rid else (f"{name} ({rid})" if name else rid)
    return f"{kind}: {label}" if kind else str(label)


def _flat(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        if not value:
            return []
        return [p for k, v in value.items() for p in _flat(v, f"{prefix}{k}.")]
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list) else str(value)
    return [f"{prefix[:-1] or 'value'}: {text}"]


def _details_text(details: str | None) -> str:
    """``details`` as ``path: value; …`` (before/after as ``path: old → new``)."""

    change = describe_change(details)
    if change:
        return change
    try:
        data = json.loads(details or "{}")
    except ValueError:
        return details or ""
    return "; ".join(_flat(data))


def _review_text(details: str | None) -> str:
    """What a review looked at, briefly: format, query, filters (long values cut), rows."""
    try:
        d = json.loads(details or "{}")
    except ValueError:
        return (details or "")[:200]
    if not isinstance(d, dict):
        return str(d)[:200]
    parts = [f"format {d['format']}"] if d.get("format") else []
    if d.get("query"):
        parts.append(f"query {str(d['query'])[:120]}")
    filters = d.get("filters") or {}
    if isinstance(filters, dict):
        for k, v in filters.items():
            text = str(v)
            parts.append(f"{k}={text[:80]}…" if len(text) > 80 else f"{k}={text}")
    if d.get("rows") is not None:
        parts.append(f"{d['rows']:,} rows" if isinstance(d["rows"], int) else f"rows {d['rows']}")
    return "; ".join(parts)


def subject_access(
    store: Store, subject: str, *, organization_id: str | None = None
) -> SubjectAccess:
    """Everything the trail holds about ``subject`` (an email or user id)."""
    subject = subject.strip()
    if not subject:
        raise FilterError("name the data subject by email or user id")
    extra: dict[str, Any] = {"organization_id": organization_id} if organization_id else {}
    extracted = datetime.now(UTC)
    as_actor = store.query(actor=subject, backend="polars", order="asc", **extra)
    # as a resource: by the name given and by every id or email they act under
    aliases = {subject} | set(as_actor["actor_user_id"].drop_nulls().to_list())
    aliases |= set(as_actor["actor_email"].drop_nulls().to_list())
    as_subject = store.query(resource=sorted(aliases), backend="polars", order="asc", **extra)
    orgs = sorted(
        set(as_actor["organization_id"].to_list()) | set(as_subject["organization_id"].to_list())
    )
    ids = {a.lower() for a in aliases}
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

    names = organization_names(store, orgs)
    return SubjectAccess(subject, as_actor, as_subject, accesses, extracted, names)
