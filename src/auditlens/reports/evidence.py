"""Evidence: what the store shows for one organization and period, as metrics, tables and charts.

A framework check names one evidence item (``EVIDENCE``) and a rule over its metrics.
Each item is a function of a :class:`ReportInput` — the period's entries, loaded once
as a polars frame by a query pushed into SQL — and returns :class:`Evidence`. Work
that several items share (detector findings, chain verification) is computed once,
on first use.

==================  ===========================================================================
evidence            metrics
==================  ===========================================================================
activity            entries, actors, failures, failure_rate
authentication      logins, failed_logins, failure_rate, accounts_targeted, source_ips
provisioning        invited, joined, suspended, removed, activity_after_suspension,
                    suspended_not_removed, max_hours_to_remove
role_changes        role_changes, admin_grants, self_changes, changers
privileged_actions  privileged_actions, privileged_actors, off_hours_privileged
findings            findings, high_findings, unhandled_findings, unhandled_high_findings
change_management   changes, changes_with_diff, changes_without_diff, deletions, bulk_deletions
log_integrity       integrity_problems, entries_verified, signed_checkpoints,
                    hours_since_checkpoint
retention           retention_days, archived_entries, coverage_gap_days
log_access          reviews, exports, views, reviewers
subject_access      requests, subjects
clock               future_entries, clock_skew_entries, max_skew_minutes
==================  ===========================================================================

Example:
    >>> sorted(EVIDENCE)[:3]
    ['activity', 'authentication', 'change_management']
    >>> "unhandled_findings" in EVIDENCE["findings"].metrics
    True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import func, select

from auditlens import detect, plots
from auditlens.chain.checkpoints import list_checkpoints
from auditlens.chain.notes import parse_note
from auditlens.context import org_profile, with_context
from auditlens.detect.escalation import CREATE_PATTERN, GRANT_PATTERN
from auditlens.detect.exfiltration import EXPORT_ACTIONS
from auditlens.responses import RESPONSE_WINDOW, match_responses
from auditlens.schema import ACTIONS
from auditlens.store.backend import retention_log
from auditlens.troubleshoot import describe_change

if TYPE_CHECKING:
    from auditlens.chain.verify import VerificationReport
    from auditlens.context import OrgProfile
    from auditlens.store.store import Store

__all__ = [
    "EVIDENCE",
    "Evidence",
    "EvidenceSpec",
    "EvidenceTable",
    "ReportInput",
    "load_input",
]

#: rows shown per evidence table; the total is always printed.
MAX_ROWS = 40
#: columns of a population file (CSV, in seq order): what each tested entry is.
POPULATION_COLUMNS = ("audit_id", "seq", "timestamp", "action", "actor")
#: columns of an exception: the entry, when (UTC and the organization's local time), who, what.
EXCEPTION_COLUMNS = ("audit_id", "seq", "timestamp", "local_time", "actor", "deviation")
#: characters shown per cell (before/after configurations can be long)
MAX_CELL = 240
_ADMIN_ROLES = ("admin", "owner", "administrator", "superadmin")
_FMT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class EvidenceTable:
    """A table of evidence: the first :data:`MAX_ROWS` rows and the total count."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    total: int

    @classmethod
    def of(
        cls, title: str, frame: pl.DataFrame, limit: int = MAX_ROWS, total: int | None = None
    ) -> EvidenceTable:
        """Render a frame's first rows as text cells (timestamps in UTC minutes).

        ``total`` is the number of rows the frame was taken from, when it is a head.
        """
        shown = frame.head(limit).with_columns(
            pl.col(pl.Datetime).dt.strftime(_FMT),
        )
        rows = [[_cell(v) for v in r] for r in shown.iter_rows()]
        return cls(title, list(frame.columns), rows, frame.height if total is None else total)


def _cell(value: Any) -> str:
    """A table cell as a person reads it: yes/no for a flag, cut at :data:`MAX_CELL`."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


@dataclass
class Evidence:
    """What one evidence item found."""

    name: str
    title: str
    summary: str
    metrics: dict[str, float | int | None]
    tables: list[EvidenceTable] = field(default_factory=list)
    #: plotly figures (kept as objects; the renderer turns them into SVG or HTML)
    charts: list[Any] = field(default_factory=list)
    #: set when the evidence could not be computed; the report says so instead of guessing
    unavailable: str | None = None
    #: the test performed, in one plain sentence
    test: str = ""
    #: the entries tested (columns :data:`POPULATION_COLUMNS`, seq order); None: not entry-based
    population: pl.DataFrame | None = None
    #: the ``auditlens search`` query (without the organization and period terms) of the population
    population_query: str = ""
    #: metric → the entries that make it count (columns :data:`EXCEPTION_COLUMNS`, and
    #: ``value`` when the metric is a maximum or a rate rather than a count)
    exceptions: dict[str, pl.DataFrame] = field(default_factory=dict)

    def population_csv(self) -> bytes:
        """The population file: CSV with a header, rows in seq order, UTC ISO timestamps.

        Its SHA-256 is what the results JSON carries, so a reader recomputes it from the file.
        """
        pop = self.population if self.population is not None else _empty_population()
        frame = pop.sort("seq").with_columns(
            pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        )
        return frame.select(POPULATION_COLUMNS).write_csv().encode("utf-8")

    def population_sha256(self) -> str:
        """SHA-256 of :meth:`population_csv`."""
        return hashlib.sha256(self.population_csv()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """Metrics and tables (not charts) as JSON-ready data."""
        return {
            "name": self.name,
            "title": self.title,
            "summary": self.summary,
            "test": self.test,
            "metrics": self.metrics,
            "unavailable": self.unavailable,
            "tables": [t.__dict__ for t in self.tables],
        }


def _empty_population() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "audit_id": pl.Utf8,
            "seq": pl.Int64,
            "timestamp": pl.Datetime("ms", "UTC"),
            "action": pl.Utf8,
            "actor": pl.Utf8,
        }
    )


@dataclass
class ReportInput:
    """One organization's entries for a period, and what is derived from them once."""

    store: Store
    organization_id: str
    start: datetime
    end: datetime
    frame: pl.DataFrame
    extracted_at: datetime
    charts: bool = True
    #: detector parameters given by the caller; they override the stored context
    detectors: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def profile(self) -> OrgProfile:
        """The organization's stored context (name, time zone, hours, workdays), or defaults."""

        return org_profile(self.store, self.organization_id)

    @cached_property
    def detector_config(self) -> dict[str, Any]:
        """The detectors' parameters: the stored context, overridden by :attr:`detectors`."""

        return with_context(self.store, self.detectors, "all", [self.organization_id])

    @cached_property
    def findings(self) -> pl.DataFrame:
        """Every detector's findings over the period (with the organization's context)."""

        found: pl.DataFrame = detect.run_all(self.frame, self.detector_config)
        return found

    @property
    def scope_query(self) -> str:
        """The search terms that select this organization's period."""
        last = self.end.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        first = self.start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return f"org:{self.organization_id} created:>={first} created:<{last}"

    def population(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Entries as population rows (:data:`POPULATION_COLUMNS`), in seq order."""
        return rows.select("audit_id", "seq", "timestamp", "action", _who()).sort("seq")

    def exceptions(
        self, rows: pl.DataFrame, deviation: pl.Expr, value: pl.Expr | None = None
    ) -> pl.DataFrame:
        """Entries as exceptions (:data:`EXCEPTION_COLUMNS`; ``value`` to compare with a rule)."""
        if rows.height == 0:  # (polars' format on an empty frame is not reliable)
            schema: dict[str, Any] = dict.fromkeys(EXCEPTION_COLUMNS, pl.Utf8)
            schema["seq"] = pl.Int64
            schema["timestamp"] = pl.Datetime("ms", "UTC")
            if value is not None:
                schema["value"] = pl.Float64
            return pl.DataFrame(schema=schema)
        tz = self.profile.timezone
        cols = [
            "audit_id",
            "seq",
            "timestamp",
            pl.col("timestamp")
            .dt.convert_time_zone(tz)
            .dt.strftime("%Y-%m-%d %H:%M %Z")
            .alias("local_time"),
            _who(),
            deviation.alias("deviation"),
        ]
        if value is not None:
            cols.append(value.cast(pl.Float64).alias("value"))
        return rows.select(cols).sort("seq")

    @cached_property
    def verification(self) -> VerificationReport:
        """The organization's chain verification (every stored entry, not only the period)."""
        from auditlens.chain.verify import verify  # lazy: only the integrity evidence verifies

        return verify(self.store, self.organization_id)

    @cached_property
    def input_sha256(self) -> str:
        """SHA-256 over the period's entry hashes in chain order.

        Each entry hash commits to the entry and to the whole chain before it, so this
        one value identifies exactly which entries the report was computed from.
        """
        digest = hashlib.sha256()
        for h in self.frame.sort("seq")["entry_hash"].to_list():
            digest.update(h.encode("ascii") + b"\n")
        return digest.hexdigest()

    def actions(self, *names: str) -> pl.DataFrame:
        """The period's entries with one of these actions (or ``category.*`` prefixes)."""
        exact = [n for n in names if not n.endswith(".*")]
        prefixes = [n[:-1] for n in names if n.endswith(".*")]
        cond = pl.col("action").is_in(exact)
        for p in prefixes:
            cond = cond | pl.col("action").str.starts_with(p)
        return self.frame.filter(cond)

    # -- what the report itself reads (an input over a lake answers these without the frame)
    def compute(self, spec: EvidenceSpec) -> Evidence:
        """One evidence item over this input (:func:`compute` catches its failure)."""
        return spec.compute(self)

    @property
    def rows(self) -> int:
        """How many entries the period holds."""
        return self.frame.height

    def seq_range(self) -> list[int] | None:
        """The first and last seq of the period (None: no entries)."""
        f = self.frame
        return [int(f["seq"].min()), int(f["seq"].max())] if f.height else None  # type: ignore[arg-type]

    def timestamps(self) -> pl.Series:
        """Every entry's time, sorted (what the completeness statement reads)."""
        return self.frame["timestamp"].sort()

    def provenance(self) -> dict[str, Any]:
        """What this input adds to the report's provenance (nothing: the store is the source)."""
        return {}

    def organization_names(self) -> pl.Series:
        """The names the organization's own entries give it, in time order."""
        return self.frame.filter(
            (pl.col("resource_type") == "organization") & pl.col("resource_name").is_not_null()
        )["resource_name"]


def load_input(
    store: Store,
    organization_id: str,
    start: datetime,
    end: datetime,
    *,
    charts: bool = True,
    detectors: dict[str, Any] | None = None,
) -> ReportInput:
    """Load the period ``[start, end)`` of one organization (the query runs in the database)."""
    extracted = datetime.now(UTC)
    last = end - timedelta(milliseconds=1)
    frame = store.query(
        organization_id=organization_id, start=start, end=last, backend="polars", order="asc"
    )
    return ReportInput(
        store, organization_id, start, end, frame, extracted, charts, dict(detectors or {})
    )


@dataclass(frozen=True)
class EvidenceSpec:
    """A registered evidence item: its function and the metrics it reports."""

    name: str
    title: str
    metrics: tuple[str, ...]
    compute: Callable[[ReportInput], Evidence]


EVIDENCE: dict[str, EvidenceSpec] = {}


def _evidence(
    name: str, title: str, metrics: tuple[str, ...]
) -> Callable[[Callable[[ReportInput], Evidence]], Callable[[ReportInput], Evidence]]:
    def register(fn: Callable[[ReportInput], Evidence]) -> Callable[[ReportInput], Evidence]:
        EVIDENCE[name] = EvidenceSpec(name, title, metrics, fn)
        return fn

    return register


def _who() -> pl.Expr:
    return pl.coalesce("actor_email", "actor_user_id", pl.lit("(system)")).alias("actor")


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _format(template: str, *args: pl.Expr) -> pl.Expr:
    """``pl.format`` through ``concat_str`` (pl.format panics on some filtered frames)."""
    pieces = template.split("{}")
    parts: list[pl.Expr] = []
    for i, text in enumerate(pieces):
        if text:
            parts.append(pl.lit(text))
        if i < len(args):
            parts.append(args[i].cast(pl.Utf8).fill_null(""))
    return pl.concat_str(parts)


def _details_field(path: str) -> pl.Expr:
    return pl.col("details").str.json_path_match(path)


# -- activity ---------------------------------------------------------------------
@_evidence("activity", "Activity overview", ("entries", "actors", "failures", "failure_rate"))
def activity(inp: ReportInput) -> Evidence:
    """Totals by category and result, and activity over time."""
    f = inp.frame
    failures = f.filter(pl.col("result") == "failure").height
    by_cat = (
        f.group_by("category")
        .agg(
            pl.len().alias("entries"),
            (pl.col("result") == "failure").sum().alias("failures"),
            pl.col("actor_email").n_unique().alias("actors"),
        )
        .sort(["entries", "category"], descending=[True, False])
    )
    actors = f.select(_who()).n_unique()
    ev = Evidence(
        "activity",
        "Activity overview",
        f"{f.height:,} entries by {actors:,} actors; {failures:,} failed.",
        {
            "entries": f.height,
            "actors": actors,
            "failures": failures,
            "failure_rate": _rate(failures, f.height),
        },
        [EvidenceTable.of("Entries by category", by_cat)],
        test="Every entry of the organization in the period was counted by category and result.",
        population=inp.population(f),
        exceptions={
            "failures": inp.exceptions(
                f.filter(pl.col("result") == "failure"), _format("{} failed", pl.col("action"))
            )
        },
    )
    if inp.charts and f.height:
        ev.charts += [plots.activity_by_category(f), plots.top_actors(f)]
    return ev


# -- authentication ---------------------------------------------------------------
@_evidence(
    "authentication",
    "Authentication",
    ("logins", "failed_logins", "failure_rate", "accounts_targeted", "source_ips"),
)
def authentication(inp: ReportInput) -> Evidence:
    """Sign-ins and failed sign-ins: who was targeted, from where."""
    logins = inp.actions("auth.login").height
    failed = inp.actions("auth.failed")
    targets = (
        failed.group_by(_who())
        .agg(
            pl.len().alias("failed"),
            pl.col("ip_address").n_unique().alias("source_ips"),
            pl.col("timestamp").min().alias("first"),
            pl.col("timestamp").max().alias("last"),
        )
        .sort(["failed", "actor"], descending=[True, False])
    )
    attempts = logins + failed.height
    ev = Evidence(
        "authentication",
        "Authentication",
        f"{logins:,} sign-ins and {failed.height:,} failed attempts "
        f"against {targets.height:,} accounts.",
        {
            "logins": logins,
            "failed_logins": failed.height,
            "failure_rate": _rate(failed.height, attempts),
            "accounts_targeted": targets.height,
            "source_ips": failed["ip_address"].n_unique(),
        },
        [EvidenceTable.of("Failed sign-ins by account", targets)],
        test="Every sign-in and failed sign-in of the period was counted by account and source.",
        population=inp.population(inp.actions("auth.login", "auth.failed")),
        population_query="action:auth.login,auth.failed",
        exceptions=dict.fromkeys(
            ("failed_logins", "failure_rate", "accounts_targeted"),
            inp.exceptions(
                failed,
                _format(
                    "failed sign-in from {}", pl.col("ip_address").fill_null("an unknown address")
                ),
            ),
        ),
    )
    if inp.charts and failed.height:
        ev.charts.append(plots.failed_logins(failed))
    return ev


# -- provisioning -----------------------------------------------------------------
@_evidence(
    "provisioning",
    "Provisioning and deprovisioning",
    (
        "invited",
        "joined",
        "suspended",
        "removed",
        "activity_after_suspension",
        "suspended_not_removed",
        "max_hours_to_remove",
    ),
)
def provisioning(inp: ReportInput) -> Evidence:
    """Invitations, joins, suspensions and removals; access used after a suspension."""
    f = inp.frame
    counts = {a: inp.actions(f"user.{a}").height for a in ("invited", "joined", "suspended")}
    removed = inp.actions("user.removed")
    susp = inp.actions("user.suspended").select(
        "audit_id",
        pl.col("resource_id").alias("user_id"),
        pl.col("resource_name").alias("user"),
        pl.col("timestamp").alias("suspended_at"),
        _who().alias("suspended_by"),
    )
    rem = removed.group_by(pl.col("resource_id").alias("user_id")).agg(
        pl.col("timestamp").min().alias("removed_at")
    )
    acts = f.filter(pl.col("result") == "success").select(
        pl.col("actor_user_id").alias("user_id"), "timestamp"
    )
    acted_after = (
        f.filter(pl.col("result") == "success")
        .join(
            susp.select("user_id", "suspended_at"),
            left_on="actor_user_id",
            right_on="user_id",
            how="inner",
        )
        .filter(pl.col("timestamp") > pl.col("suspended_at"))
    )
    after = (
        susp.join(acts, on="user_id", how="inner")
        .filter(pl.col("timestamp") > pl.col("suspended_at"))
        .group_by("user_id")
        .agg(pl.len().alias("actions_after"))
    )
    table = (
        susp.join(rem, on="user_id", how="left")
        .join(after, on="user_id", how="left")
        .with_columns(
            pl.col("actions_after").fill_null(0),
            ((pl.col("removed_at") - pl.col("suspended_at")).dt.total_minutes() / 60)
            .round(1)
            .alias("hours_to_remove"),
        )
        .sort("suspended_at")
    )
    after_total = int(table["actions_after"].sum()) if table.height else 0
    not_removed = table.filter(pl.col("removed_at").is_null()).height
    hours = table["hours_to_remove"].drop_nulls()
    max_hours = float(hours.max()) if hours.len() else 0.0  # type: ignore[arg-type]
    lifecycle = inp.actions("user.invited", "user.joined", "user.removed").select(
        "audit_id",
        "seq",
        "timestamp",
        "action",
        pl.col("resource_name").alias("user"),
        _who().alias("by"),
        "result",
    )
    susp_rows = inp.actions("user.suspended").join(
        table.select("audit_id", "removed_at", "hours_to_remove"), on="audit_id", how="left"
    )
    exceptions = {
        "activity_after_suspension": inp.exceptions(
            acted_after,
            _format(
                "{} by a user suspended at {}",
                pl.col("action"),
                pl.col("suspended_at").dt.strftime(_FMT),
            ),
        ),
        "suspended_not_removed": inp.exceptions(
            susp_rows.filter(pl.col("removed_at").is_null()),
            _format("{} suspended and not removed", pl.col("resource_name")),
        ),
        "max_hours_to_remove": inp.exceptions(
            susp_rows.filter(pl.col("hours_to_remove").is_not_null()),
            _format(
                "{} removed {} h after suspension",
                pl.col("resource_name"),
                pl.col("hours_to_remove"),
            ),
            pl.col("hours_to_remove"),
        ),
    }
    return Evidence(
        "provisioning",
        "Provisioning and deprovisioning",
        f"{counts['invited']} invited, {counts['joined']} joined, {counts['suspended']} suspended, "
        f"{removed.height} removed; {after_total} successful action(s) by users after their "
        "suspension.",
        {
            **counts,
            "removed": removed.height,
            "activity_after_suspension": after_total,
            "suspended_not_removed": not_removed,
            "max_hours_to_remove": max_hours,
        },
        [
            EvidenceTable.of("Suspensions and what followed", table.drop("user_id")),
            EvidenceTable.of("Invitations, joins and removals", lifecycle),
        ],
        test="Each suspension and removal of the period was traced to later activity by the "
        "user and to the removal that followed it.",
        population=inp.population(inp.actions("user.suspended", "user.removed")),
        population_query="action:user.suspended,user.removed",
        exceptions=exceptions,
    )


# -- role changes -----------------------------------------------------------------
@_evidence(
    "role_changes", "Role changes", ("role_changes", "admin_grants", "self_changes", "changers")
)
def role_changes(inp: ReportInput) -> Evidence:
    """Every role change with who made it, before and after."""
    rc = inp.actions("user.role_changed").select(
        "audit_id",
        "seq",
        "timestamp",
        _who().alias("changed_by"),
        pl.col("resource_name").alias("user"),
        _details_field("$.before.role").alias("before"),
        _details_field("$.after.role").alias("after"),
        (pl.col("actor_user_id") == pl.col("resource_id")).fill_null(False).alias("self"),
        "result",
    )
    is_grant = pl.col("after").str.to_lowercase().is_in(_ADMIN_ROLES) & ~pl.col("before").fill_null(
        ""
    ).str.to_lowercase().is_in(_ADMIN_ROLES)
    grants = rc.filter(is_grant).height
    selfc = rc.filter(pl.col("self")).height
    raw = inp.actions("user.role_changed").with_columns(
        _details_field("$.before.role").alias("before"),
        _details_field("$.after.role").alias("after"),
        (pl.col("actor_user_id") == pl.col("resource_id")).fill_null(False).alias("self"),
    )
    change = _format(
        "{} changed {} from {} to {}",
        _who(),
        pl.col("resource_name").fill_null("?"),
        pl.col("before").fill_null("?"),
        pl.col("after").fill_null("?"),
    )
    changers = rc["changed_by"].n_unique()
    return Evidence(
        "role_changes",
        "Role changes",
        f"{rc.height} role change(s) by {changers} people; {grants} grant(s) of an admin role, "
        f"{selfc} change(s) of one's own role.",
        {
            "role_changes": rc.height,
            "admin_grants": grants,
            "self_changes": selfc,
            "changers": changers,
        },
        [EvidenceTable.of("Role changes", rc)],
        test="Every role change of the period was inspected for grants of an admin role and "
        "for people changing their own role.",
        population=inp.population(raw),
        population_query="action:user.role_changed",
        exceptions={
            "self_changes": inp.exceptions(
                raw.filter(pl.col("self")), change + pl.lit(" (own role)")
            ),
            "admin_grants": inp.exceptions(raw.filter(is_grant), change),
        },
    )


# -- privileged actions -----------------------------------------------------------
_SENSITIVE = tuple(name for name, info in ACTIONS.items() if info.sensitive)


def privileged_frame(inp: ReportInput) -> pl.DataFrame:
    """The period's privileged actions: those the catalogue marks sensitive, less the
    audit log's own (shared by the evidence and the report's hour-of-week chart)."""
    return inp.actions(*_SENSITIVE).filter(~pl.col("action").str.starts_with("audit_log."))


@_evidence(
    "privileged_actions",
    "Privileged actions",
    ("privileged_actions", "privileged_actors", "off_hours_privileged"),
)
def privileged_actions(inp: ReportInput) -> Evidence:
    """Sensitive actions (the catalogue marks them) by actor, and those done off hours."""
    priv = privileged_frame(inp)
    by_actor = (
        priv.group_by(_who())
        .agg(
            pl.len().alias("actions"), pl.col("action").unique().sort().str.join(", ").alias("what")
        )
        .sort(["actions", "actor"], descending=[True, False])
    )
    off = inp.findings.filter(pl.col("detector") == "off_hours")
    off_ids = set(off["audit_ids"].explode().drop_nulls().to_list()) if off.height else set()
    off_priv = priv.filter(pl.col("audit_id").is_in(list(off_ids))) if off_ids else priv.clear()
    return Evidence(
        "privileged_actions",
        "Privileged actions",
        f"{priv.height:,} privileged action(s) by {by_actor.height} actor(s); "
        f"{off_priv.height} outside the actor's working hours.",
        {
            "privileged_actions": priv.height,
            "privileged_actors": by_actor.height,
            "off_hours_privileged": off_priv.height,
        },
        [
            EvidenceTable.of("Privileged actions by actor", by_actor),
            EvidenceTable.of(
                "Privileged actions outside working hours",
                off_priv.select(
                    "audit_id", "seq", "timestamp", _who(), "action", "resource_name", "result"
                ),
            ),
        ],
        test="Every action the catalogue marks sensitive was listed by actor and compared "
        "with the actor's working hours.",
        population=inp.population(priv),
        population_query="action:"
        + ",".join(a for a in _SENSITIVE if not a.startswith("audit_log.")),
        exceptions={
            "off_hours_privileged": inp.exceptions(
                off_priv, _format("{} outside working hours", pl.col("action"))
            )
        },
    )


# -- findings ---------------------------------------------------------------------
def _handled(inp: ReportInput, found: pl.DataFrame) -> pl.DataFrame:
    """Findings with their response among the period's entries (:mod:`auditlens.responses`):
    ``status``, ``handled_by``, ``disposition``, ``why``, and ``response`` (the disposition,
    null while open)."""

    out: pl.DataFrame = match_responses(found, inp.frame)
    return out.with_columns(pl.col("disposition").alias("response"))


@_evidence(
    "findings",
    "Detector findings and their handling",
    ("findings", "high_findings", "unhandled_findings", "unhandled_high_findings"),
)
def findings(inp: ReportInput) -> Evidence:
    """Every detector finding, with the response recorded (or not) within seven days."""

    found = _handled(inp, inp.findings)
    high = pl.col("severity").is_in(["high", "critical"])
    open_ = pl.col("response").is_null()
    by_kind = (
        found.group_by("detector")
        .agg(
            pl.len().alias("findings"),
            high.sum().alias("high_or_critical"),
            open_.sum().alias("no_response"),
        )
        .sort("detector")
    )
    serious = found.filter(high).sort("window_start")
    first = found.with_columns(pl.col("audit_ids").list.first().alias("audit_id"))
    keyed = first.join(inp.frame.drop("timestamp"), on="audit_id", how="inner").with_columns(
        pl.col("window_start").alias("timestamp")
    )
    what = _format(
        "{} finding ({}): {}; response: {}",
        pl.col("detector"),
        pl.col("severity"),
        pl.col("summary"),
        pl.col("response").fill_null("none recorded"),
    )
    metrics: dict[str, float | int | None] = {
        "findings": found.height,
        "high_findings": found.filter(high).height,
        "unhandled_findings": found.filter(open_).height,
        "unhandled_high_findings": found.filter(high & open_).height,
    }
    return Evidence(
        "findings",
        "Detector findings and their handling",
        f"{metrics['findings']} finding(s), {metrics['high_findings']} high or critical; "
        f"{metrics['unhandled_high_findings']} high/critical with no recorded response "
        f"(a suspension, removal, role lowering, session revocation or MFA reset of the "
        f"subject by someone else within {RESPONSE_WINDOW.days} days, or a triage).",
        metrics,
        [
            EvidenceTable.of("Findings by detector", by_kind),
            EvidenceTable.of(
                "High and critical findings",
                serious.select(
                    pl.col("window_start").alias("when"),
                    "detector",
                    "severity",
                    "subject",
                    "summary",
                    pl.col("response").fill_null("none recorded"),
                ),
            ),
        ],
        test="Every detector was run over the period's entries (with the organization's time "
        "zone and hours) and each finding was traced to a response on its subject.",
        population=inp.population(inp.frame),
        exceptions={
            "findings": inp.exceptions(keyed, what),
            "high_findings": inp.exceptions(keyed.filter(high), what),
            "unhandled_findings": inp.exceptions(keyed.filter(open_), what),
            "unhandled_high_findings": inp.exceptions(keyed.filter(high & open_), what),
        },
    )


# -- privilege escalation, defence evasion, exports -------------------------------
def _finding_entries(inp: ReportInput, detector: str) -> pl.DataFrame:
    """The period's entries that are evidence of ``detector``'s findings, each once, with
    the finding's summary (``_summary``) and ``details.reason`` (``_reason``)."""
    found = inp.findings.filter(pl.col("detector") == detector).select(
        pl.col("summary").alias("_summary"),
        pl.col("details").str.json_path_match("$.reason").alias("_reason"),
        pl.col("audit_ids").alias("audit_id"),
    )
    ev = found.explode("audit_id").unique("audit_id", keep="first")
    return inp.frame.join(ev, on="audit_id", how="inner").sort("seq")


def _findings_table(inp: ReportInput, detector: str, title: str) -> EvidenceTable:
    found = inp.findings.filter(pl.col("detector") == detector).sort("window_start")
    return EvidenceTable.of(
        title,
        found.select(pl.col("window_start").alias("when"), "severity", "subject", "summary"),
    )


@_evidence(
    "escalation",
    "Privilege escalation",
    ("escalations", "self_grants", "new_principal_admins"),
)
def escalation(inp: ReportInput) -> Evidence:
    """Self-grants and accounts made admin just after their creation (the
    ``privilege_escalation`` detector), over every grant and account creation."""
    pop = inp.frame.filter(
        pl.col("action").str.contains(GRANT_PATTERN) | pl.col("action").str.contains(CREATE_PATTERN)
    )
    ev = _finding_entries(inp, "privilege_escalation")
    found = inp.findings.filter(pl.col("detector") == "privilege_escalation")
    reason = found["details"].str.json_path_match("$.reason")
    metrics: dict[str, float | int | None] = {
        "escalations": found.height,
        "self_grants": int((reason == "self_grant").sum()),
        "new_principal_admins": int((reason == "new_principal_admin").sum()),
    }
    return Evidence(
        "escalation",
        "Privilege escalation",
        f"{metrics['escalations']} escalation finding(s): {metrics['self_grants']} self-grant(s), "
        f"{metrics['new_principal_admins']} account(s) made admin soon after their creation.",
        metrics,
        [_findings_table(inp, "privilege_escalation", "Privilege escalation findings")],
        test="Every grant of a role, permission or group and every account creation of the "
        "period was checked for people granting themselves privileges and for new accounts "
        "given an admin role soon after their creation (default: within an hour).",
        population=inp.population(pop),
        population_query="action:user.role_changed,application.member_added,user.invited,"
        "user.joined",
        exceptions={
            "escalations": inp.exceptions(ev, pl.col("_summary")),
            "self_grants": inp.exceptions(
                ev.filter(pl.col("_reason") == "self_grant"), pl.col("_summary")
            ),
            "new_principal_admins": inp.exceptions(
                ev.filter(pl.col("_reason") == "new_principal_admin"), pl.col("_summary")
            ),
        },
    )


@_evidence(
    "defence_evasion",
    "Logging, MFA and alerting switched off",
    ("evasion_findings", "logging_disabled", "mfa_disabled", "alerting_disabled"),
)
def defence_evasion(inp: ReportInput) -> Evidence:
    """Audit/log settings changed, MFA switched off, alert destinations disabled (the
    ``defence_evasion`` detector)."""
    ev = _finding_entries(inp, "defence_evasion")
    found = inp.findings.filter(pl.col("detector") == "defence_evasion")
    reason = found["details"].str.json_path_match("$.reason")
    kinds = ("logging_disabled", "mfa_disabled", "alerting_disabled")
    metrics: dict[str, float | int | None] = {"evasion_findings": found.height}
    metrics.update({k: int((reason == k).sum()) for k in kinds})
    exceptions = {"evasion_findings": inp.exceptions(ev, pl.col("_summary"))}
    exceptions.update(
        {k: inp.exceptions(ev.filter(pl.col("_reason") == k), pl.col("_summary")) for k in kinds}
    )
    return Evidence(
        "defence_evasion",
        "Logging, MFA and alerting switched off",
        f"{found.height} finding(s): {metrics['logging_disabled']} of logging or audit settings "
        f"changed, {metrics['mfa_disabled']} of MFA switched off, "
        f"{metrics['alerting_disabled']} of alert destinations disabled.",
        metrics,
        [_findings_table(inp, "defence_evasion", "Defence evasion findings")],
        test="Every entry of the period was checked for audit or log settings changed, "
        "multi-factor authentication switched off and alert destinations disabled or deleted.",
        population=inp.population(inp.frame),
        exceptions=exceptions,
    )


@_evidence("data_exports", "Data exports", ("exports", "exported_rows", "mass_exports"))
def data_exports(inp: ReportInput) -> Evidence:
    """Exports and downloads, and the bursts the ``mass_export`` detector found."""
    exp = inp.frame.filter(
        pl.col("action").str.contains(EXPORT_ACTIONS) & (pl.col("result") == "success")
    ).with_columns(_details_field("$.rows").cast(pl.Int64, strict=False).fill_null(0).alias("rows"))
    ev = _finding_entries(inp, "mass_export")
    found = inp.findings.filter(pl.col("detector") == "mass_export")
    by_actor = (
        exp.group_by(_who())
        .agg(pl.len().alias("exports"), pl.col("rows").sum().alias("rows"))
        .sort(["rows", "actor"], descending=[True, False])
    )
    metrics: dict[str, float | int | None] = {
        "exports": exp.height,
        "exported_rows": int(exp["rows"].sum()),
        "mass_exports": found.height,
    }
    return Evidence(
        "data_exports",
        "Data exports",
        f"{exp.height} export(s) of {metrics['exported_rows']:,} row(s) by {by_actor.height} "
        f"actor(s); {found.height} mass-export finding(s).",
        metrics,
        [
            EvidenceTable.of("Exports by actor", by_actor),
            _findings_table(inp, "mass_export", "Mass exports"),
        ],
        test="Every export or download of the period was summed per actor and checked by the "
        "mass_export detector (default: more than 10,000 rows or 20 exports in any hour).",
        population=inp.population(exp),
        population_query="action:audit_log.exported",
        exceptions={"mass_exports": inp.exceptions(ev, pl.col("_summary"))},
    )


# -- change management ------------------------------------------------------------
_CHANGES = ("webhook.*", "application.*", "organization.settings_updated")


@_evidence(
    "change_management",
    "Change management",
    ("changes", "changes_with_diff", "changes_without_diff", "deletions", "bulk_deletions"),
)
def change_management(inp: ReportInput) -> Evidence:
    """Configuration changes to webhooks, applications and settings, with before/after."""
    ch = inp.actions(*_CHANGES).filter(pl.col("action") != "webhook.tested")
    updates = ch.filter(pl.col("action").str.ends_with("updated"))
    has_diff = _details_field("$.before").is_not_null() | _details_field("$.after").is_not_null()
    with_diff = updates.filter(has_diff).height
    deletions = ch.filter(pl.col("action").str.ends_with(".deleted")).height
    bulk_found = inp.findings.filter(pl.col("detector") == "bulk_deletions")
    bulk = bulk_found.height
    bulk_rows = (
        bulk_found.with_columns(pl.col("audit_ids").list.first().alias("audit_id"))
        .join(inp.frame.drop("timestamp"), on="audit_id", how="inner")
        .with_columns(pl.col("window_start").alias("timestamp"))
    )

    # what changed, as "path: old → new", for the rows the report shows (a per-row reading
    # of the JSON, so only for those rows)
    shown = updates.head(MAX_ROWS).select(
        "audit_id",
        "seq",
        "timestamp",
        _who(),
        "action",
        "resource_name",
        pl.col("details").map_elements(describe_change, return_dtype=pl.Utf8).alias("changes"),
    )
    by_action = ch.group_by("action").agg(pl.len().alias("entries")).sort("action")
    return Evidence(
        "change_management",
        "Change management",
        f"{ch.height:,} change(s): {updates.height:,} updates ({with_diff:,} with before/after), "
        f"{deletions} deletion(s), {bulk} bulk-deletion finding(s).",
        {
            "changes": ch.height,
            "changes_with_diff": with_diff,
            "changes_without_diff": updates.height - with_diff,
            "deletions": deletions,
            "bulk_deletions": bulk,
        },
        [
            EvidenceTable.of("Changes by action", by_action),
            EvidenceTable.of("Updates", shown, total=updates.height),
        ],
        test="Every configuration change of the period was inspected for a recorded "
        "before/after and for deletions.",
        population=inp.population(ch),
        population_query="action:webhook.*,application.*,organization.settings_updated "
        "-action:webhook.tested",
        exceptions={
            "changes_without_diff": inp.exceptions(
                updates.filter(~has_diff),
                _format("{} of {} without before/after", pl.col("action"), pl.col("resource_name")),
            ),
            "deletions": inp.exceptions(
                ch.filter(pl.col("action").str.ends_with(".deleted")),
                _format("{} {}", pl.col("action"), pl.col("resource_name")),
            ),
            "bulk_deletions": inp.exceptions(bulk_rows, pl.col("summary")),
        },
    )


# -- log integrity ----------------------------------------------------------------
@_evidence(
    "log_integrity",
    "Log integrity",
    ("integrity_problems", "entries_verified", "signed_checkpoints", "hours_since_checkpoint"),
)
def log_integrity(inp: ReportInput) -> Evidence:
    """The hash chain re-verified, and the latest signed checkpoint."""

    report = inp.verification
    problems = report.problems
    stored = list_checkpoints(inp.store, inp.organization_id)  # by tree size, then id
    latest = stored[-1] if stored else None
    count = len(stored)
    hours: float | None = None
    rows: list[list[str]] = []
    if latest is not None:
        made = datetime.fromtimestamp(latest.created_ms / 1000, UTC)
        hours = round((inp.extracted_at - made).total_seconds() / 3600, 1)
        rows = [
            ["tree size", str(latest.tree_size)],
            ["root hash", latest.root_hash],
            ["signed at", made.strftime(_FMT)],
            ["signed by", ", ".join(name for name, _, _ in parse_note(latest.note).signatures)],
        ]
    verdict = "verified" if report.ok else f"FAILED with {len(problems)} problem(s)"
    summary = f"Hash chain {verdict} over {report.checked:,} entries; " + (
        f"latest signed checkpoint covers {latest.tree_size:,} entries ({hours} h old)."
        if latest is not None
        else "no signed checkpoint exists yet (`auditlens checkpoint`)."
    )
    tables = [EvidenceTable("Latest signed checkpoint", ["field", "value"], rows, len(rows))]
    if problems:
        tables.append(
            EvidenceTable.of(
                "Integrity problems",
                pl.DataFrame(
                    {
                        "seq": [p.seq for p in problems],
                        "kind": [p.kind for p in problems],
                        "detail": [p.detail for p in problems],
                    }
                ),
            )
        )
    bad = pl.DataFrame(
        {"seq": [p.seq for p in problems], "problem": [f"{p.kind}: {p.detail}" for p in problems]},
        schema={"seq": pl.Int64, "problem": pl.Utf8},
    )
    return Evidence(
        "log_integrity",
        "Log integrity",
        summary,
        {
            "integrity_problems": len(problems),
            "entries_verified": report.checked,
            "signed_checkpoints": count,
            "hours_since_checkpoint": hours,
        },
        tables,
        test="The organization's hash chain was recomputed entry by entry and compared with "
        "its latest signed checkpoint.",
        population=inp.population(inp.frame),
        exceptions={
            "integrity_problems": inp.exceptions(
                inp.frame.join(bad, on="seq", how="inner"), pl.col("problem")
            )
        },
    )


# -- retention --------------------------------------------------------------------
@_evidence(
    "retention", "Retention coverage", ("retention_days", "archived_entries", "coverage_gap_days")
)
def retention(inp: ReportInput) -> Evidence:
    """Whether the whole period is still held, live or in the verified archive."""

    from auditlens.retention import plan_of  # lazy: only the retention evidence needs it

    with inp.store.connect() as conn:
        archived = conn.execute(
            select(func.coalesce(func.sum(retention_log.c.rows), 0)).where(
                retention_log.c.organization_id == inp.organization_id
            )
        ).scalar_one()
    name, days = plan_of(inp.store, inp.organization_id) or (None, None)
    gap = 0.0
    if days is not None and not int(archived):
        kept_from = inp.extracted_at - timedelta(days=days)
        gap = max(0.0, round((kept_from - inp.start).total_seconds() / 86_400, 1))
    rows = [
        ["plan", name or "none (nothing is ever removed)"],
        ["retention", f"{days} days" if days is not None else "unlimited"],
        ["archived entries", f"{int(archived):,}"],
        ["period start", inp.start.strftime(_FMT)],
    ]
    return Evidence(
        "retention",
        "Retention coverage",
        (
            f"{gap} day(s) at the start of the period fall outside the retention of the "
            f"{name} plan and are not archived."
            if gap
            else "The whole period is held (live or in the verified archive)."
        ),
        {
            "retention_days": days if days is not None else -1,
            "archived_entries": int(archived),
            "coverage_gap_days": gap,
        },
        [EvidenceTable("Retention", ["field", "value"], rows, len(rows))],
        test="The retention plan and the archive were compared with the period's start.",
    )


# -- log access -------------------------------------------------------------------
@_evidence("log_access", "Who reviewed the log", ("reviews", "exports", "views", "reviewers"))
def log_access(inp: ReportInput) -> Evidence:
    """Exports, searches, retention runs and restores of the audit log itself."""
    everything = inp.actions("audit_log.*")
    # a review is a person's: runs by "(system)" (scheduled jobs, this report) review nothing
    rev = everything.filter(pl.col("actor_type") != "system")
    table = everything.select(
        "audit_id",
        "seq",
        "timestamp",
        _who(),
        "action",
        _details_field("$.rows").alias("rows"),
        pl.coalesce(_details_field("$.query"), _details_field("$.report")).alias("what"),
    )
    reviewers = rev["actor_email"].drop_nulls().n_unique()
    exports = rev.filter(pl.col("action") == "audit_log.exported").height
    views = rev.filter(pl.col("action") == "audit_log.viewed").height
    return Evidence(
        "log_access",
        "Who reviewed the log",
        f"{rev.height} review(s) of the log by {reviewers} person(s): {exports} export(s), "
        f"{views} search(es); {everything.height - rev.height} run(s) by the system are not "
        "reviews.",
        {"reviews": rev.height, "exports": exports, "views": views, "reviewers": reviewers},
        [EvidenceTable.of("Uses of the audit log", table)],
        test="Every export and search of the audit log by a person (not the system) in the "
        "period was listed.",
        population=inp.population(rev),
        population_query="action:audit_log.* -actor_type:system",
    )


# -- subject access ---------------------------------------------------------------
@_evidence("subject_access", "Subject-access requests", ("requests", "subjects"))
def subject_access(inp: ReportInput) -> Evidence:
    """Subject-access requests handled by a person: exports naming one data subject."""
    exports = inp.actions("audit_log.exported").with_columns(
        _details_field("$.report").alias("report"),
        _details_field("$.filters.subject").alias("subject"),
    )
    handled = exports.filter(
        (pl.col("report") == "subject_access")
        & pl.col("subject").is_not_null()
        & (pl.col("actor_type") != "system")
        & pl.col("actor_email").is_not_null()
    )
    subjects = handled["subject"].n_unique()
    return Evidence(
        "subject_access",
        "Subject-access requests",
        f"{handled.height} subject-access request(s) handled by a person for {subjects} "
        "named subject(s).",
        {"requests": handled.height, "subjects": subjects},
        [
            EvidenceTable.of(
                "Subject-access requests handled",
                handled.select(
                    "audit_id", "seq", "timestamp", _who().alias("handled_by"), "subject"
                ),
            )
        ],
        test="Every export of a data subject's entries made by a person in the period was "
        "listed with the subject it named.",
        population=inp.population(handled),
        population_query='action:audit_log.exported -actor_type:system "subject_access"',
    )


# -- clock ------------------------------------------------------------------------
_SKEW = timedelta(minutes=5)


@_evidence(
    "clock", "Timestamps and clocks", ("future_entries", "clock_skew_entries", "max_skew_minutes")
)
def clock(inp: ReportInput) -> Evidence:
    """Entries dated in the future, and entries whose time runs backwards along the chain."""
    f = inp.frame.sort("seq")
    future_rows = f.filter(pl.col("timestamp") > inp.extracted_at + _SKEW)
    future = future_rows.height
    back = f.select(
        "audit_id",
        "seq",
        "timestamp",
        "action",
        "actor_email",
        "actor_user_id",
        ((pl.col("timestamp").cum_max().shift(1) - pl.col("timestamp")).dt.total_seconds() / 60)
        .fill_null(0)
        .alias("minutes_back"),
    )
    skewed = back.filter(pl.col("minutes_back") > _SKEW.total_seconds() / 60)
    worst = float(skewed["minutes_back"].max()) if skewed.height else 0.0  # type: ignore[arg-type]
    return Evidence(
        "clock",
        "Timestamps and clocks",
        f"{future} entr(ies) dated in the future; {skewed.height} entr(ies) recorded more than "
        f"{int(_SKEW.total_seconds() // 60)} minutes earlier than an entry before them in the "
        "chain (clock skew between sources).",
        {
            "future_entries": future,
            "clock_skew_entries": skewed.height,
            "max_skew_minutes": round(worst, 1),
        },
        [
            EvidenceTable.of(
                "Entries out of time order",
                skewed.select("audit_id", "seq", "timestamp", "minutes_back"),
            )
        ],
        test="Every entry's time was compared with the extraction time and with the entries "
        "before it in the chain.",
        population=inp.population(f),
        exceptions={
            "future_entries": inp.exceptions(future_rows, pl.lit("dated in the future")),
            "clock_skew_entries": inp.exceptions(
                skewed,
                _format(
                    "{} minutes earlier than an entry before it", pl.col("minutes_back").round(1)
                ),
            ),
            "max_skew_minutes": inp.exceptions(
                skewed,
                _format(
                    "{} minutes earlier than an entry before it", pl.col("minutes_back").round(1)
                ),
                pl.col("minutes_back"),
            ),
        },
    )


def compute(inp: ReportInput, name: str) -> Evidence:
    """One evidence item; a failure becomes an ``unavailable`` item, never a guess."""
    spec = EVIDENCE[name]
    try:
        return inp.compute(spec)
    except Exception as exc:  # report what could not be computed rather than stop
        return Evidence(
            name,
            spec.title,
            f"Not available: {type(exc).__name__}: {exc}",
            dict.fromkeys(spec.metrics),
            unavailable=f"{type(exc).__name__}: {exc}",
        )


def dump(value: Any) -> str:
    """JSON text for results files (datetimes as ISO)."""
    return json.dumps(value, default=str, indent=2, sort_keys=False)
