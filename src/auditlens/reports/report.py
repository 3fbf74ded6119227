"""A compliance report: a framework's requirements assessed on one organization's period.

:func:`build_report` loads the period once, computes each evidence item the framework
names (once, however many requirements use it), grades every check and records the
provenance auditors ask for ("information produced by the entity"): the source, the
parameters, the period, the extraction time, row counts and a hash of the input.

Example:
    >>> import auditlens as al
    >>> from auditlens.reports import build_report
    >>> store = al.open_store("sqlite://")
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> _ = store.append([{"action": "auth.failed", "result": "failure", "organization_id": org,
    ...     "actor": {"email": "jane@company.com", "type": "user"},
    ...     "timestamp": "2025-01-20T10:30:00Z"}])
    >>> report = build_report(store, "soc2", org, "2025-01-01", "2025-01-31", charts=False)
    >>> report.provenance["rows"], report.status_of("CC6.1")
    (1, 'attention')
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditlens.errors import FilterError
from auditlens.reports.evidence import Evidence, ReportInput, compute, load_input
from auditlens.reports.frameworks import Check, Framework, Requirement, load_framework

if TYPE_CHECKING:
    from auditlens.store.store import AuditStore

__all__ = [
    "STATUSES",
    "CheckResult",
    "Report",
    "RequirementResult",
    "build_report",
    "collect_evidence",
    "period",
]

#: requirement statuses, worst first.
STATUSES = ("fail", "attention", "unavailable", "pass", "manual")
_RANK = {s: i for i, s in enumerate(STATUSES)}


@dataclass(frozen=True)
class CheckResult:
    """How one check graded its evidence."""

    check: Check
    status: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RequirementResult:
    """A requirement, its status and the checks behind it."""

    requirement: Requirement
    status: str
    checks: tuple[CheckResult, ...]


@dataclass
class Report:
    """The assessed framework, its evidence and its provenance."""

    framework: Framework
    organization_id: str
    organization_name: str
    start: datetime
    end: datetime
    requirements: list[RequirementResult]
    evidence: dict[str, Evidence]
    provenance: dict[str, Any]
    inp: ReportInput = field(repr=False)

    def status_of(self, requirement_id: str) -> str:
        """The status of one requirement."""
        for r in self.requirements:
            if r.requirement.id == requirement_id:
                return r.status
        raise KeyError(requirement_id)

    def table(self) -> Any:
        """The executive summary as a pandas DataFrame: requirement, title, type, status, why."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "requirement": r.requirement.id,
                    "title": r.requirement.name,
                    "type": r.requirement.type,
                    "status": r.status,
                    "why": "; ".join(
                        f"{c.check.evidence}: {reason}" for c in r.checks for reason in c.reasons
                    ),
                }
                for r in self.requirements
            ]
        )

    def figures(self) -> list[Any]:
        """Every chart of the report (plotly figures), in evidence order."""
        return [fig for ev in self.evidence.values() for fig in ev.charts]

    @property
    def summary(self) -> dict[str, int]:
        """Requirements per status."""
        counts = Counter(r.status for r in self.requirements)
        return {s: counts.get(s, 0) for s in STATUSES}

    def to_json(self) -> dict[str, Any]:
        """Everything but the charts, JSON-ready (the notebooks' results file)."""
        return {
            "framework": self.framework.framework,
            "framework_name": self.framework.name,
            "framework_version": self.framework.version,
            "organization_id": self.organization_id,
            "organization_name": self.organization_name,
            "period": {"start": _iso(self.start), "end": _iso(self.end)},
            "summary": self.summary,
            "provenance": self.provenance,
            "requirements": [
                {
                    "id": r.requirement.id,
                    "name": r.requirement.name,
                    "type": r.requirement.type,
                    "status": r.status,
                    "checks": [
                        {
                            "evidence": c.check.evidence,
                            "status": c.status,
                            "reasons": list(c.reasons),
                            "metrics": self.evidence[c.check.evidence].metrics,
                        }
                        for c in r.checks
                    ],
                }
                for r in self.requirements
            ],
            "evidence": {name: ev.to_json() for name, ev in self.evidence.items()},
        }

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path``."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_json(), indent=2, default=str), encoding="utf-8")
        return out

    def to_html(self, path: str | Path | None = None, *, interactive: bool = True) -> str:
        """The report as one self-contained HTML page (plotly.js inlined; works offline)."""
        from auditlens.reports.render import render_html

        html = render_html(self, interactive=interactive)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(html, encoding="utf-8")
        return html

    def to_pdf(self, path: str | Path) -> Path:
        """The paged PDF report (weasyprint; charts as SVG through kaleido)."""
        from auditlens.reports.render import render_pdf

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(render_pdf(self))
        return out


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def period(
    store: AuditStore, organization_id: str, start: Any = None, end: Any = None
) -> tuple[datetime, datetime]:
    """``[start, end)`` as UTC datetimes; a date-only ``end`` includes that whole day.

    Without ``start``/``end``, the organization's first/last entry bounds the period.
    """
    from auditlens.query.filters import parse_when

    lo = parse_when(start, field="start") if start is not None else None
    hi = parse_when(end, end_of_day=True, field="end") + 1 if end is not None else None
    if lo is None or hi is None:
        from sqlalchemy import func, select

        from auditlens.store.tables import entries

        c = entries.c
        with store.engine.connect() as conn:  # one organization's bounds, from the index
            first, last = conn.execute(
                select(func.min(c.ts), func.max(c.ts)).where(c.organization_id == organization_id)
            ).one()
        if first is None:
            raise FilterError(f"organization {organization_id} has no entries in this store")
        lo = int(first) if lo is None else lo
        hi = int(last) + 1 if hi is None else hi
    if hi <= lo:
        raise FilterError(f"the period ends before it starts ({start} … {end})")
    return (
        datetime.fromtimestamp(lo / 1000, UTC),
        datetime.fromtimestamp(hi / 1000, UTC),
    )


def _input(
    store: AuditStore, organization_id: str | None, start: Any, end: Any, charts: bool
) -> ReportInput:
    """The period's entries of one organization (default: the store's first)."""
    if organization_id is None:
        orgs = store.organizations()
        if not orgs:
            raise FilterError("the store holds no entries")
        organization_id = orgs[0]["organization_id"]
    lo, hi = period(store, organization_id, start, end)
    return load_input(store, organization_id, lo, hi, charts=charts)


def _compute_all(inp: ReportInput, names: list[str], progress: bool) -> dict[str, Evidence]:
    if not progress:
        return {name: compute(inp, name) for name in names}
    from tqdm.auto import tqdm

    out: dict[str, Evidence] = {}
    with tqdm(names, desc="evidence", unit="item") as bar:
        for name in bar:
            bar.set_postfix_str(name)
            out[name] = compute(inp, name)
    return out


def _grade(check: Check, ev: Evidence) -> CheckResult:
    if ev.unavailable:
        return CheckResult(check, "unavailable", (ev.unavailable,))
    for status, rules in (("fail", check.fail_if), ("attention", check.attention_if)):
        held = [c for c in rules if c.holds(ev.metrics)]
        if held:
            return CheckResult(
                check,
                status,
                tuple(f"{c} (is {ev.metrics[c.metric]})" for c in held),
            )
    return CheckResult(check, "pass", ())


def _org_name(inp: ReportInput) -> str:
    """The organization's name as its own entries give it (resource type organization)."""
    import polars as pl

    names = inp.frame.filter(
        (pl.col("resource_type") == "organization") & pl.col("resource_name").is_not_null()
    )["resource_name"]
    return str(names[-1]) if names.len() else inp.organization_id


def build_report(
    store: AuditStore,
    framework: str | Path | Framework,
    organization_id: str | None = None,
    start: Any = None,
    end: Any = None,
    *,
    charts: bool = True,
    record: bool = True,
    progress: bool = False,
) -> Report:
    """Assess ``framework`` (``soc2``, ``iso27001``, ``gdpr``, a YAML path or a
    :class:`Framework`) on one organization over ``[start, end]``.

    Args:
        organization_id: defaults to the store's only (or first) organization.
        start, end: dates or ISO times; default: the organization's whole history.
        charts: build plotly charts (needs plotly).
        record: append an ``audit_log.exported`` entry saying who produced the report.
        progress: show a progress bar over the evidence items (tqdm: a widget in notebooks).
    """
    from auditlens import __version__
    from auditlens.config import redact_url

    fw = framework if isinstance(framework, Framework) else load_framework(framework)
    inp = _input(store, organization_id, start, end, charts)
    organization_id, lo, hi = inp.organization_id, inp.start, inp.end
    names = list(dict.fromkeys(c.evidence for r in fw.requirements for c in r.checks))
    evidence = _compute_all(inp, names, progress)
    results = []
    for req in fw.requirements:
        checks = tuple(_grade(c, evidence[c.evidence]) for c in req.checks)
        status = min((c.status for c in checks), key=_RANK.__getitem__) if checks else "manual"
        results.append(RequirementResult(req, status, checks))
    frame = inp.frame
    source_text = Path(fw.source).read_bytes() if fw.source and Path(fw.source).is_file() else b""
    provenance: dict[str, Any] = {
        "source": redact_url(store.engine.url.render_as_string(hide_password=False)),
        "backend": store.dialect,
        "parameters": {
            "framework": fw.framework,
            "organization_id": organization_id,
            "start": _iso(lo),
            "end": _iso(hi - timedelta(milliseconds=1)),
        },
        "extracted_at": _iso(inp.extracted_at),
        "rows": frame.height,
        "seq_range": [int(frame["seq"].min()), int(frame["seq"].max())]  # type: ignore[arg-type]
        if frame.height
        else None,
        "input_sha256": inp.input_sha256,
        "framework_file": fw.source,
        "framework_sha256": hashlib.sha256(source_text).hexdigest() if source_text else None,
        "auditlens_version": __version__,
    }
    report = Report(fw, organization_id, _org_name(inp), lo, hi, results, evidence, provenance, inp)
    if record:
        from auditlens.review import record_review

        record_review(
            store,
            "audit_log.exported",
            {organization_id: frame.height},
            {
                "report": fw.framework,
                "start": provenance["parameters"]["start"],
                "end": provenance["parameters"]["end"],
                "input_sha256": inp.input_sha256,
            },
            f"{fw.framework} compliance report",
        )
    return report


def collect_evidence(
    store: AuditStore,
    organization_id: str | None = None,
    start: Any = None,
    end: Any = None,
    names: list[str] | None = None,
    *,
    charts: bool = True,
    progress: bool = False,
) -> dict[str, Evidence]:
    """Evidence items (default: all of them) for one organization and period, without a
    framework — what the weekly security review shows.

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> _ = store.append([{"action": "auth.login", "result": "success",
        ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11",
        ...     "actor": {"email": "jane@company.com", "type": "user"}}])
        >>> ev = collect_evidence(store, names=["authentication"], charts=False)
        >>> ev["authentication"].metrics["logins"]
        1
    """
    from auditlens.reports.evidence import EVIDENCE

    inp = _input(store, organization_id, start, end, charts)
    unknown = [n for n in names or [] if n not in EVIDENCE]
    if unknown:
        raise FilterError(f"unknown evidence {', '.join(unknown)}; known: {', '.join(EVIDENCE)}")
    return _compute_all(inp, names or list(EVIDENCE), progress)
