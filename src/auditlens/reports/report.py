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
    >>> empty = build_report(store, "soc2", org, "2024-01-01", "2024-01-31", charts=False)
    >>> sorted({c.status for r in empty.requirements for c in r.checks})
    ['insufficient_evidence']
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import func, select

from auditlens import __version__, plots
from auditlens.chain.checkpoints import list_checkpoints, recorded_keys
from auditlens.chain.notes import VerifierKey, load_verifier, parse_note
from auditlens.config import redact_url
from auditlens.context import describe
from auditlens.errors import ConfigError, FilterError
from auditlens.progress import progress_bar
from auditlens.query.filters import parse_when
from auditlens.reports.evidence import (
    EVIDENCE,
    EXCEPTION_COLUMNS,
    Evidence,
    ReportInput,
    compute,
    load_input,
    privileged_frame,
)
from auditlens.reports.frameworks import Check, Framework, Requirement, load_framework
from auditlens.review import record_review
from auditlens.store.backend import entries

if TYPE_CHECKING:
    import pandas as pd

    from auditlens.store.store import Store

__all__ = [
    "STATUSES",
    "CheckResult",
    "Report",
    "RequirementResult",
    "build_report",
    "collect_evidence",
    "period",
]

#: requirement statuses, worst first. ``supports``: a partial requirement whose automated
#: checks found nothing — the evidence supports it and the reviewer completes it.
STATUSES = (
    "fail",
    "attention",
    "insufficient_evidence",
    "unavailable",
    "pass",
    "supports",
    "manual",
)
#: how the report reads each status
STATUS_LABELS = {
    "fail": "fail",
    "attention": "attention",
    "insufficient_evidence": "insufficient evidence",
    "unavailable": "unavailable",
    "pass": "pass",
    "supports": "evidence supports — the reviewer completes",
    "manual": "manual — the reviewer completes",
}
_RANK = {s: i for i, s in enumerate(STATUSES)}
#: a stretch without entries longer than this is listed as a gap (hours)
GAP_HOURS = 72.0
#: the evidence items whose empty population makes the requirement manual, not insufficient
_EMPTY_MEANS_MANUAL = {"subject_access"}


@dataclass(frozen=True)
class CheckResult:
    """How one check graded its evidence: status, the why (sentences), the exceptions."""

    check: Check
    status: str
    reasons: tuple[str, ...]
    #: the entries that deviate (columns of ``evidence.EXCEPTION_COLUMNS``), seq order
    exceptions: Any = None
    conclusion: str = ""


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
    #: days without entries, gaps, whether the period had ended (see :func:`completeness`)
    completeness: dict[str, Any] = field(default_factory=dict)
    #: checkpoints signed in the period, the verifying keys and where they came from
    integrity: dict[str, Any] = field(default_factory=dict)
    #: where :meth:`save_json` wrote the results (the PDF names it for rows it leaves out)
    results_path: Path | None = None
    _overview: list[Any] | None = field(default=None, repr=False)

    def population_file(self, evidence: str) -> Path | None:
        """Where :meth:`save_json` writes (wrote) one evidence item's population CSV."""
        if self.results_path is None:
            return None
        return self.results_path.with_name(f"{self.results_path.stem}.populations") / (
            f"{evidence}.csv"
        )

    def status_of(self, requirement_id: str) -> str:
        """The status of one requirement."""
        for r in self.requirements:
            if r.requirement.id == requirement_id:
                return r.status
        raise KeyError(requirement_id)

    def table(self) -> pd.DataFrame:
        """The executive summary as a pandas DataFrame: requirement, title, type, status, why."""
        import pandas as pd  # lazy: pandas only for pandas output

        return pd.DataFrame(
            [
                {
                    "requirement": r.requirement.id,
                    "title": r.requirement.name,
                    "type": r.requirement.type,
                    "status": r.status,
                    "why": " ".join(reason for c in r.checks for reason in c.reasons),
                }
                for r in self.requirements
            ]
        )

    def overview_figures(self) -> list[Any]:
        """The report's four charts over the whole period, its x axes from the period's
        start to its end: entries per day (days without entries marked), failed sign-ins,
        findings by severity, privileged actions by hour of week in the organization's
        time zone. Aggregated from the report's input frame (no further query); empty when
        the report was built with ``charts=False``."""
        if not self.inp.charts:
            return []
        if self._overview is None:
            self._overview = _overview_figures(self.inp)
        return self._overview

    def figures(self) -> list[Any]:
        """Every chart of the report (plotly figures): :meth:`overview_figures`, then the
        evidence charts that do not repeat one of them, in evidence order."""
        overview = self.overview_figures()
        return overview + self.evidence_figures(shown=overview)

    def evidence_figures(self, shown: list[Any] | None = None) -> list[Any]:
        """The evidence charts, less those titled like one of ``shown``."""
        titles = {_title(f) for f in shown or []}
        return [
            fig for ev in self.evidence.values() for fig in ev.charts if _title(fig) not in titles
        ]

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
            "completeness": self.completeness,
            "integrity": self.integrity,
            "requirements": [
                {
                    "id": r.requirement.id,
                    "name": r.requirement.name,
                    "type": r.requirement.type,
                    "status": r.status,
                    "status_label": STATUS_LABELS[r.status],
                    "checks": [self._check_json(c) for c in r.checks],
                }
                for r in self.requirements
            ],
            "evidence": {name: ev.to_json() for name, ev in self.evidence.items()},
        }

    def _check_json(self, c: CheckResult) -> dict[str, Any]:
        ev = self.evidence[c.check.evidence]
        out: dict[str, Any] = {
            "evidence": c.check.evidence,
            "test": ev.test,
            "status": c.status,
            "conclusion": c.conclusion,
            "reasons": list(c.reasons),
            "rules": {
                "fail_if": [str(x) for x in c.check.fail_if],
                "attention_if": [str(x) for x in c.check.attention_if],
            },
            "metrics": ev.metrics,
            "population": self.population_json(c.check.evidence),
            "exceptions": _rows_json(c.exceptions),
        }
        return out

    def population_json(self, evidence: str) -> dict[str, Any] | None:
        """query, count, first_seq, last_seq, sha256 (and file) of an evidence item's population."""
        ev = self.evidence[evidence]
        if ev.population is None:
            return None
        pop = ev.population
        query = " ".join(x for x in (self.inp.scope_query, ev.population_query) if x)
        file = self.population_file(evidence)
        return {
            "query": query,
            "count": pop.height,
            "first_seq": int(pop["seq"].min()) if pop.height else None,  # type: ignore[arg-type]
            "last_seq": int(pop["seq"].max()) if pop.height else None,  # type: ignore[arg-type]
            "sha256": ev.population_sha256(),
            "file": None if file is None else f"{file.parent.name}/{file.name}",
        }

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` and each population file beside it
        (``<stem>.populations/<evidence>.csv``: audit_id, seq, timestamp, action, actor in
        seq order; the JSON carries each file's SHA-256)."""
        out = Path(path).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        self.results_path = out
        for name, ev in self.evidence.items():
            if ev.population is not None:
                target = self.population_file(name)
                assert target is not None
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(ev.population_csv())
        out.write_text(json.dumps(self.to_json(), indent=2, default=str), encoding="utf-8")
        return out

    def to_html(self, path: str | Path | None = None, *, interactive: bool = True) -> str:
        """The report as one self-contained HTML page (plotly.js inlined; works offline)."""
        from auditlens.reports.render import (
            render_html,
        )  # lazy: jinja2/weasyprint only when rendering

        html = render_html(self, interactive=interactive)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(html, encoding="utf-8")
        return html

    def to_pdf(self, path: str | Path) -> Path:
        """The paged PDF report (weasyprint; charts as SVG through kaleido)."""
        from auditlens.reports.render import (
            render_pdf,
        )  # lazy: jinja2/weasyprint only when rendering

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(render_pdf(self))
        return out


def _title(fig: Any) -> str:
    text = fig.layout.title.text
    return str(text) if text else ""


def _overview_figures(inp: ReportInput) -> list[Any]:
    """See :meth:`Report.overview_figures`."""

    tz = inp.profile.timezone
    return [
        plots.entries_per_day(
            inp.frame, inp.start, inp.end, title="Entries per day (days without entries marked)"
        ),
        plots.failed_logins(
            inp.frame.filter(pl.col("action") == "auth.failed"),
            title="Failed sign-ins",
            start=inp.start,
            end=inp.end,
        ),
        plots.findings_by_severity(
            inp.findings, inp.start, inp.end, title="Findings over time by severity"
        ),
        plots.hour_of_week_dots(
            privileged_frame(inp),
            title=f"Privileged actions by hour of week ({tz})",
            timezone=tz,
        ),
    ]


def _rows_json(frame: Any) -> list[dict[str, Any]]:
    if frame is None or frame.height == 0:
        return []

    rows: list[dict[str, Any]] = frame.with_columns(
        pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    ).to_dicts()
    return rows


def named_period(name: str, now: datetime | None = None) -> tuple[str, str]:
    """``last-month`` (the last complete calendar month, UTC) or ``YYYY-MM`` as first/last day.

    Example:
        >>> named_period("last-month", datetime(2025, 3, 14, tzinfo=UTC))
        ('2025-02-01', '2025-02-28')
        >>> named_period("2024-02")
        ('2024-02-01', '2024-02-29')
    """
    import calendar

    now = now or datetime.now(UTC)
    if name == "last-month":
        year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    else:
        try:
            year, month = (int(x) for x in name.split("-"))
            if not 1 <= month <= 12:
                raise ValueError(name)
        except ValueError:
            raise FilterError(
                f"unknown period {name!r}; use last-month or YYYY-MM (or --start/--end)"
            ) from None
    last = calendar.monthrange(year, month)[1]
    return f"{year:04d}-{month:02d}-01", f"{year:04d}-{month:02d}-{last:02d}"


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def period(
    store: Store, organization_id: str, start: Any = None, end: Any = None
) -> tuple[datetime, datetime]:
    """``[start, end)`` as UTC datetimes; a date-only ``end`` includes that whole day.

    Without ``start``/``end``, the organization's first/last entry bounds the period.
    """

    lo = parse_when(start, field="start") if start is not None else None
    hi = parse_when(end, end_of_day=True, field="end") + 1 if end is not None else None
    if lo is None or hi is None:
        c = entries.c
        with store.connect() as conn:  # one organization's bounds, from the index
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
    store: Store,
    organization_id: str | None,
    start: Any,
    end: Any,
    charts: bool,
    detectors: dict[str, Any] | None = None,
    source: _Source | None = None,
) -> ReportInput:
    """The period's entries of one organization (default: the store's first)."""
    if organization_id is None:
        orgs = store.organizations()
        if not orgs:
            raise FilterError("the store holds no entries")
        organization_id = orgs[0]["organization_id"]
    lo, hi = period(store, organization_id, start, end)
    if source is not None:
        from auditlens.reports.spark import load_lake_input  # lazy: Spark only when asked

        return load_lake_input(
            store,
            source.lake,
            organization_id,
            lo,
            hi,
            session=source.session,
            charts=charts,
            detectors=detectors,
        )
    return load_input(store, organization_id, lo, hi, charts=charts, detectors=detectors)


@dataclass
class _Source:
    """Where ``engine="spark"`` reads the entries: the lake, with this session."""

    lake: str | os.PathLike[str]
    session: Any
    owned: bool  #: made for this report: stopped when it is done

    @classmethod
    def of(cls, engine: str, lake: str | os.PathLike[str] | None, spark: Any) -> _Source | None:
        """None for ``engine="polars"``; else the lake and the session (see
        :func:`auditlens.reports.spark.spark_session`)."""
        if engine == "polars":
            if lake is not None or spark is not None:
                raise ConfigError("lake= and spark= go with engine='spark'")
            return None
        if engine != "spark":
            raise ConfigError(f"engine must be 'polars' or 'spark', got {engine!r}")
        if lake is None:
            raise ConfigError(
                "engine='spark' reads the entries from a lake: give lake= (a folder "
                "`auditlens lake sync` keeps current)"
            )
        from auditlens.reports.spark import spark_session  # lazy: Spark only when asked

        session, owned = spark_session(spark)
        return cls(lake, session, owned)

    def done(self, inp: ReportInput) -> None:
        """Collect what the report reads after the session is gone (its charts)."""
        release = getattr(inp, "release", None)
        if release is not None:
            release()


def _compute_all(inp: ReportInput, names: list[str], progress: bool) -> dict[str, Evidence]:
    if not progress:
        return {name: compute(inp, name) for name in names}
    out: dict[str, Evidence] = {}
    with progress_bar(len(names), "evidence", show=True) as bar:
        for name in names:
            bar.describe(name)
            out[name] = compute(inp, name)
            bar.advance()
    return out


def _sentence(metric: str, value: Any) -> str:
    words = metric.replace("_", " ")
    return f"no {words}" if value in (0, 0.0) else f"{words}: {value}"


def _exceptions(ev: Evidence, held: list[Any]) -> Any:
    """The entries behind the rules that held, once each, in seq order."""

    parts = []
    for cond in held:
        rows = ev.exceptions.get(cond.metric)
        if rows is None:
            continue
        if "value" in rows.columns:  # a maximum: the rows past the rule's value
            v = pl.col("value")
            keep = {
                ">": v > cond.value,
                ">=": v >= cond.value,
                "<": v < cond.value,
                "<=": v <= cond.value,
                "==": v == cond.value,
                "!=": v != cond.value,
            }[cond.op]
            rows = rows.filter(keep)
        parts.append(rows.select(EXCEPTION_COLUMNS))
    if not parts:
        return None
    return pl.concat(parts).unique("audit_id", keep="first").sort("seq")


def _grade(
    check: Check, ev: Evidence, kind: str, insufficient: list[str], empty: bool
) -> CheckResult:
    """Grade one check. ``insufficient``: why the period cannot support a pass;
    ``empty``: the period holds no entries at all (nothing can be tested)."""
    if ev.unavailable:
        return CheckResult(check, "unavailable", (ev.unavailable,), None, "not computed")
    if kind == "manual":
        return CheckResult(
            check, "manual", (), None, "evidence listed for the reviewer; not graded"
        )
    if empty:
        return CheckResult(
            check,
            "insufficient_evidence",
            ("The period holds no entries of the organization: nothing was tested.",),
            None,
            "insufficient_evidence",
        )
    for status, rules in (("fail", check.fail_if), ("attention", check.attention_if)):
        held = [c for c in rules if c.holds(ev.metrics)]
        if held:
            exc = _exceptions(ev, held)
            n = 0 if exc is None else exc.height
            reasons = tuple(
                _sentence(c.metric, ev.metrics[c.metric]).capitalize() + "." for c in held
            )
            conclusion = f"{n} exception(s)" if n else "deviation noted (no single entry)"
            return CheckResult(check, status, reasons, exc, conclusion)
    if ev.population is not None and ev.population.height == 0:
        if ev.name in _EMPTY_MEANS_MANUAL:
            return CheckResult(
                check,
                "manual",
                (f"{ev.title}: none recorded in the period; the reviewer obtains the evidence.",),
                None,
                "no population; the reviewer completes",
            )
        return CheckResult(
            check,
            "insufficient_evidence",
            (f"Nothing to test: the population ({ev.title.lower()}) is empty.",),
            None,
            "insufficient_evidence",
        )
    if insufficient:
        return CheckResult(
            check, "insufficient_evidence", tuple(insufficient), None, "insufficient_evidence"
        )
    return CheckResult(check, "pass", (), None, "no exceptions noted")


def _requirement_status(kind: str, checks: tuple[CheckResult, ...]) -> str:
    if kind == "manual" or not checks:
        return "manual"
    worst = min((c.status for c in checks), key=_RANK.__getitem__)
    if _RANK[worst] < _RANK["pass"]:
        return worst
    if any(c.status == "manual" for c in checks):
        return "manual"
    return "supports" if kind == "partial" else "pass"


def _org_name(inp: ReportInput) -> str:
    """The organization's name as its own entries give it (resource type organization)."""

    names = inp.organization_names()
    return str(names[-1]) if names.len() else inp.organization_id


def completeness(inp: ReportInput, gap_hours: float = GAP_HOURS) -> dict[str, Any]:
    """Days (UTC) without entries and stretches longer than ``gap_hours`` without entries,
    up to the end of the period or now, whichever is earlier. Missing entries are a warning
    sign: an ingest that stopped, or entries removed before they were chained."""

    stop = min(inp.end, inp.extracted_at)
    ts = inp.timestamps()
    bounds = pl.concat(
        [
            pl.Series("timestamp", [inp.start], dtype=ts.dtype),
            ts,
            pl.Series("timestamp", [stop], dtype=ts.dtype),
        ]
    )
    steps = pl.DataFrame({"from": bounds.head(-1), "to": bounds.tail(-1)}).with_columns(
        ((pl.col("to") - pl.col("from")).dt.total_seconds() / 3600).round(1).alias("hours")
    )
    gaps = steps.filter(pl.col("hours") > gap_hours)
    days = pl.date_range(inp.start.date(), (stop - timedelta(milliseconds=1)).date(), eager=True)
    seen = ts.dt.date().unique()
    missing = days.filter(~days.is_in(seen.implode())) if stop > inp.start else days.clear()
    return {
        "gap_hours": gap_hours,
        "period_ended": inp.end <= inp.extracted_at,
        "days_without_entries": [d.isoformat() for d in missing.to_list()],
        "gaps": [
            {"from": _iso(a), "to": _iso(b), "hours": h}
            for a, b, h in gaps.select("from", "to", "hours").iter_rows()
        ],
    }


def integrity_statement(inp: ReportInput, keys: list[Any] | None = None) -> dict[str, Any]:
    """Checkpoints signed in the period, every verifying key (fingerprint, where it came
    from) and how many of the organization's entries no checkpoint covers yet."""

    given = [k if isinstance(k, VerifierKey) else load_verifier(k) for k in keys or []]
    known: dict[str, tuple[VerifierKey, str]] = {}
    for key, role in recorded_keys(inp.store):
        source = (
            "witness (recorded in the store)"
            if role == "witness"
            else (
                "the store itself (recorded when it signed; not an independent key — verify "
                "with a key you hold: --key)"
            )
        )
        known[key.key_id.hex()] = (key, source)
    for key in given:
        known[key.key_id.hex()] = (key, "--key file given by the reader")
    stored = list_checkpoints(inp.store, inp.organization_id)
    lo, hi = inp.start.timestamp() * 1000, inp.end.timestamp() * 1000
    in_period = []
    signers: dict[str, dict[str, Any]] = {}
    for cp in stored:
        sigs = parse_note(cp.note).signatures
        for name, kid, _ in sigs:
            key_src = known.get(kid.hex())
            signers.setdefault(
                kid.hex(),
                {
                    "name": name,
                    "key_id": kid.hex(),
                    "fingerprint": hashlib.sha256(key_src[0].public).hexdigest()
                    if key_src
                    else None,
                    "source": key_src[1] if key_src else "unknown: no key for it is held",
                },
            )
        if lo <= cp.created_ms < hi:
            in_period.append(
                {
                    "tree_size": cp.tree_size,
                    "root_hash": cp.root_hash,
                    "signed_at": _iso(datetime.fromtimestamp(cp.created_ms / 1000, UTC)),
                    "signed_by": [name for name, _, _ in sigs],
                }
            )
    covered = max((cp.tree_size for cp in stored), default=0)
    total = inp.verification.checked
    return {
        "checkpoints_in_period": in_period,
        "keys": list(signers.values()),
        "covered_entries": covered,
        "entries_not_covered": max(0, total - covered),
    }


def build_report(
    store: Store,
    framework: str | Path | Framework,
    organization_id: str | None = None,
    start: Any = None,
    end: Any = None,
    *,
    charts: bool = True,
    record: bool = True,
    progress: bool = False,
    detectors: dict[str, Any] | None = None,
    allow_open_period: bool = False,
    keys: list[Any] | None = None,
    gap_hours: float = GAP_HOURS,
    engine: str = "polars",
    lake: str | os.PathLike[str] | None = None,
    spark: Any = None,
) -> Report:
    """Assess ``framework`` (``soc2``, ``iso27001``, ``gdpr``, a YAML path or a
    :class:`Framework`) on one organization over ``[start, end]``.

    Args:
        organization_id: defaults to the store's only (or first) organization.
        start, end: dates or ISO times; default: the organization's whole history.
        charts: build plotly charts (needs plotly).
        record: append an ``audit_log.exported`` entry saying who produced the report.
        progress: show a progress bar over the evidence items (tqdm: a widget in notebooks).
        detectors: detector parameters (``{"off_hours": {"hours": "07:00-19:00"}}``); they
            override the organization's stored context (time zone, hours, workdays, people).
        allow_open_period: accept a period that ends after now; its checks cannot pass
            (``insufficient_evidence``) and the report says "period not ended".
        keys: verifier keys (:class:`~auditlens.chain.notes.VerifierKey` or ``.vkey`` paths)
            you hold; without them the keys recorded in the store are named as the source.
        gap_hours: stretches without entries longer than this are listed as gaps.
        engine: ``"polars"`` (the period loaded from the store) or ``"spark"``: the
            period's entries read from ``lake`` by Spark, the same report JSON
            (:mod:`auditlens.reports.spark`; provenance adds ``engine``).
        lake: the lake folder (``auditlens lake sync --to``) for ``engine="spark"``.
        spark: the session for ``engine="spark"``: a session object, ``"sc://host:port"``,
            ``"local"`` or ``"duckdb"`` (default: local PySpark if installed, else DuckDB).

    Raises:
        FilterError: the period ends after now (without ``allow_open_period``).
        ConfigError: a bad ``engine``/``lake``/``spark`` combination.
        ArchiveError: ``engine="spark"`` and the lake is behind the store.
    """

    fw = framework if isinstance(framework, Framework) else load_framework(framework)
    source = _Source.of(engine, lake, spark)
    try:
        inp = _input(store, organization_id, start, end, charts, detectors, source)
        report = _assess(store, fw, inp, progress, allow_open_period, keys, gap_hours)
        if source is not None:
            source.done(inp)
            report.provenance.update(inp.provenance())
    finally:
        if source is not None and source.owned:
            source.session.stop()
    if record:
        record_review(
            store,
            "audit_log.exported",
            {report.organization_id: inp.rows},
            {
                "report": fw.framework,
                "start": report.provenance["parameters"]["start"],
                "end": report.provenance["parameters"]["end"],
                "input_sha256": inp.input_sha256,
            },
            f"{fw.framework} compliance report",
        )
    return report


def _assess(
    store: Store,
    fw: Framework,
    inp: ReportInput,
    progress: bool,
    allow_open_period: bool,
    keys: list[Any] | None,
    gap_hours: float,
) -> Report:
    """Grade ``fw`` on the loaded input (see :func:`build_report`)."""
    organization_id, lo, hi = inp.organization_id, inp.start, inp.end
    ended = hi <= inp.extracted_at
    if not ended and not allow_open_period:
        raise FilterError(
            f"the period ends {_iso(hi)}, after now ({_iso(inp.extracted_at)}): it has not "
            "ended, so its evidence is incomplete; pick an ended period (e.g. last-month) or "
            "pass allow_open_period=True (--allow-open-period)"
        )
    names = list(dict.fromkeys(c.evidence for r in fw.requirements for c in r.checks))
    evidence = _compute_all(inp, names, progress)
    gaps = completeness(inp, gap_hours)
    insufficient = []
    if not ended:
        insufficient.append("The period has not ended: entries may still arrive.")
    if gaps["gaps"]:
        insufficient.append(
            f"The trail has {len(gaps['gaps'])} gap(s) longer than {gap_hours:g} h without "
            "entries (see the completeness statement)."
        )
    empty = inp.rows == 0
    results = []
    for req in fw.requirements:
        checks = tuple(
            _grade(c, evidence[c.evidence], req.type, insufficient, empty) for c in req.checks
        )
        results.append(RequirementResult(req, _requirement_status(req.type, checks), checks))
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
        "rows": inp.rows,
        "seq_range": inp.seq_range(),
        "input_sha256": inp.input_sha256,
        "framework_file": fw.source,
        "framework_sha256": hashlib.sha256(source_text).hexdigest() if source_text else None,
        "auditlens_version": __version__,
        "period_ended": ended,
        "context": describe(inp.profile),
        "detectors": inp.detector_config,
    }
    name = inp.profile.name or _org_name(inp)
    report = Report(
        fw,
        organization_id,
        name,
        lo,
        hi,
        results,
        evidence,
        provenance,
        inp,
        gaps,
        integrity_statement(inp, keys),
    )
    return report


def collect_evidence(
    store: Store,
    organization_id: str | None = None,
    start: Any = None,
    end: Any = None,
    names: list[str] | None = None,
    *,
    charts: bool = True,
    progress: bool = False,
    engine: str = "polars",
    lake: str | os.PathLike[str] | None = None,
    spark: Any = None,
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

    unknown = [n for n in names or [] if n not in EVIDENCE]
    if unknown:
        raise FilterError(f"unknown evidence {', '.join(unknown)}; known: {', '.join(EVIDENCE)}")
    source = _Source.of(engine, lake, spark)
    try:
        inp = _input(store, organization_id, start, end, charts, None, source)
        return _compute_all(inp, names or list(EVIDENCE), progress)
    finally:
        if source is not None and source.owned:
            source.session.stop()
