"""Responses to detector findings: which findings were handled, by which entry, and why.

A finding is **handled** by the first of these recorded in its organization:

* an explicit **triage** — an ``audit_log.finding_triaged`` entry naming the finding
  (:func:`triage`, ``auditlens findings triage``); its disposition is
  ``false_positive``, ``resolved`` or ``accepted_risk``. When a finding was triaged more
  than once, the latest triage counts, and a triage wins over an inferred response;
* else a **privilege reduction of the subject** by someone else, from the finding's
  ``window_start`` to ``window_end`` + ``window`` (7 days by default): ``user.suspended``
  (disposition ``suspended``), ``user.removed`` (``removed``), ``user.role_changed`` to a
  lower role (``role_lowered``; owner > admin > member > viewer, read from
  ``details.before.role`` / ``details.after.role``), ``auth.sessions_revoked``
  (``sessions_revoked``) and ``auth.mfa_reset`` (``mfa_reset``), each with result
  ``success``. The response's resource id or name must be the subject (an email or a
  user id, compared case-insensitively); the subject acting on themselves does not count.

A promotion, a password reset the subject did themselves, or any other role change is not
a response. Findings about an IP address or an organization have no user to restrict, so
only a triage handles them.

Everything is polars joins over the findings and the candidate response entries (no
per-row Python).

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> with_responses(store, store.detect("all")).columns[-6:]
    ['status', 'handled_by', 'handled_at', 'responder', 'disposition', 'why']
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from auditlens.detect.findings import FINDING_SCHEMA, human, parse_window
from auditlens.detect.stored import detect_stored
from auditlens.errors import FindingNotFoundError, TriageError
from auditlens.review import reviewer

if TYPE_CHECKING:
    from auditlens.store.store import AppendedEntry, Store

__all__ = [
    "DISPOSITIONS",
    "REDUCTIONS",
    "RESPONSE_COLUMNS",
    "RESPONSE_WINDOW",
    "ROLE_ORDER",
    "TRIAGE_ACTION",
    "match_responses",
    "triage",
    "with_responses",
]

#: the dispositions a triage may record.
DISPOSITIONS = ("false_positive", "resolved", "accepted_risk")
#: the action recording a triage.
TRIAGE_ACTION = "audit_log.finding_triaged"
#: privilege-reducing actions → the disposition they give a finding about their target.
REDUCTIONS: dict[str, str] = {
    "user.suspended": "suspended",
    "user.removed": "removed",
    "user.role_changed": "role_lowered",
    "auth.sessions_revoked": "sessions_revoked",
    "auth.mfa_reset": "mfa_reset",
}
#: role rank: a role change counts as a response only from a higher to a lower rank.
ROLE_ORDER: dict[str, int] = {"owner": 4, "admin": 3, "member": 2, "viewer": 1}
#: how long after a finding's window a privilege reduction still counts as its response.
RESPONSE_WINDOW = timedelta(days=7)
#: the columns :func:`match_responses` adds to a findings frame.
RESPONSE_COLUMNS: dict[str, Any] = {
    "status": pl.Utf8,
    "handled_by": pl.Utf8,
    "handled_at": pl.Datetime("ms", "UTC"),
    "responder": pl.Utf8,
    "disposition": pl.Utf8,
    "why": pl.Utf8,
}
_ENTRY_COLUMNS = (
    "audit_id",
    "timestamp",
    "action",
    "result",
    "organization_id",
    "actor_email",
    "actor_user_id",
    "resource_type",
    "resource_id",
    "resource_name",
    "details",
)
_TS = "%Y-%m-%d %H:%M UTC"


def _polars(frame: Any, what: str) -> tuple[pl.DataFrame, bool]:
    if isinstance(frame, pl.DataFrame):
        return frame, False
    if type(frame).__module__.split(".")[0] == "pandas":
        return pl.from_pandas(frame), True
    raise TriageError(f"{what} must be a pandas or polars DataFrame, got {type(frame).__name__}")


def _entries(entries: pl.DataFrame) -> pl.DataFrame:
    needed = ("audit_id", "timestamp", "action", "organization_id")
    missing = [c for c in needed if c not in entries.columns]
    if missing:
        raise TriageError(
            f"the entries frame lacks column(s) {', '.join(missing)}; "
            "use store.query(...) to load entries"
        )
    cols = [
        pl.col(c).cast(pl.Utf8) if c in entries.columns else pl.lit(None, pl.Utf8).alias(c)
        for c in _ENTRY_COLUMNS
        if c != "timestamp"
    ]
    return entries.select(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")), *cols)


def _lower(col: str) -> pl.Expr:
    return pl.col(col).str.to_lowercase()


def _role(path: str) -> pl.Expr:
    role = pl.col("details").str.json_path_match(path).str.strip_chars().str.to_lowercase()
    return role.replace_strict(ROLE_ORDER, default=None, return_dtype=pl.Int64)


def _not_by_subject() -> pl.Expr:
    """The response's actor is not the finding's subject (nulls never match)."""
    return ~(
        (_lower("actor_email") == pl.col("_subject")).fill_null(False)
        | (_lower("actor_user_id") == pl.col("_subject")).fill_null(False)
    )


def _triages(base: pl.DataFrame, ents: pl.DataFrame) -> pl.DataFrame:
    tri = ents.filter(
        (pl.col("action") == TRIAGE_ACTION) & (pl.col("resource_type") == "finding")
    ).select(
        "organization_id",
        pl.col("resource_id").alias("finding_id"),
        "timestamp",
        "audit_id",
        "actor_email",
        "actor_user_id",
        pl.col("details").str.json_path_match("$.disposition").alias("disposition"),
        pl.col("details").str.json_path_match("$.note").alias("note"),
    )
    tri = tri.filter(pl.col("disposition").is_in(DISPOSITIONS))
    return (
        base.select("_row", "organization_id", "finding_id", "_subject")
        .join(tri, on=["organization_id", "finding_id"])
        .filter(_not_by_subject())
        .sort(["timestamp", "audit_id"])
        .group_by("_row")
        .agg(pl.all().last())
        .select(
            "_row",
            pl.col("audit_id").alias("_t_id"),
            pl.col("timestamp").alias("_t_at"),
            pl.coalesce("actor_email", "actor_user_id", pl.lit("the system")).alias("_t_by"),
            pl.col("disposition").alias("_t_disp"),
            pl.col("note").fill_null("").alias("_t_note"),
        )
    )


def _reductions(base: pl.DataFrame, ents: pl.DataFrame, span: timedelta) -> pl.DataFrame:
    red = (
        ents.filter(pl.col("action").is_in(list(REDUCTIONS)) & (pl.col("result") == "success"))
        .with_columns(_role("$.before.role").alias("_from"), _role("$.after.role").alias("_to"))
        .filter((pl.col("action") != "user.role_changed") | (pl.col("_from") > pl.col("_to")))
        # acting on oneself is not a response by someone else
        .filter(
            ~(
                (_lower("actor_email") == _lower("resource_name")).fill_null(False)
                | (pl.col("actor_user_id") == pl.col("resource_id")).fill_null(False)
            )
        )
    )
    # one row per (response, target): the resource's name and its id both name the user
    targets = pl.concat(
        [
            red.with_columns(_lower("resource_name").alias("_target")),
            red.with_columns(_lower("resource_id").alias("_target")),
        ]
    ).filter(pl.col("_target").is_not_null())
    actors = base.filter(pl.col("subject_type") == "actor").select(
        "_row", "organization_id", "_subject", "window_start", "window_end"
    )
    return (
        actors.join(
            targets,
            left_on=["organization_id", "_subject"],
            right_on=["organization_id", "_target"],
        )
        .filter(
            (pl.col("timestamp") >= pl.col("window_start"))
            & (pl.col("timestamp") <= pl.col("window_end") + span)
            & _not_by_subject()
        )
        .sort(["timestamp", "audit_id"])
        .group_by("_row")
        .agg(pl.all().first())
        .select(
            "_row",
            pl.col("audit_id").alias("_r_id"),
            pl.col("timestamp").alias("_r_at"),
            pl.coalesce("actor_email", "actor_user_id", pl.lit("the system")).alias("_r_by"),
            pl.col("action").replace_strict(REDUCTIONS, return_dtype=pl.Utf8).alias("_r_disp"),
            pl.col("action").alias("_r_action"),
            pl.col("details")
            .str.json_path_match("$.before.role")
            .fill_null("?")
            .alias("_r_before"),
            pl.col("details").str.json_path_match("$.after.role").fill_null("?").alias("_r_after"),
        )
    )


def match_responses(
    findings: Any, entries: Any, *, window: str | timedelta = RESPONSE_WINDOW
) -> Any:
    """Findings with their response, found among ``entries`` (pandas or polars, as given).

    Adds ``status`` (``open`` | ``handled``), ``handled_by`` (the response entry's
    ``audit_id``), ``handled_at``, ``responder`` (who), ``disposition`` (the triage's
    disposition, or ``suspended`` / ``removed`` / ``role_lowered`` / ``sessions_revoked`` /
    ``mfa_reset``) and ``why`` (a sentence that states the window). ``entries`` must hold
    the responses (``store.query(...)``); :func:`with_responses` loads them for you.

    Example:
        >>> from datetime import UTC, datetime
        >>> from auditlens.detect.findings import empty_findings
        >>> t = datetime(2025, 1, 6, 9, tzinfo=UTC)
        >>> found = empty_findings().vstack(pl.DataFrame({
        ...     "finding_id": ["f1"], "detector": ["brute_force_success"],
        ...     "severity": ["critical"], "organization_id": ["o"], "subject_type": ["actor"],
        ...     "subject": ["jane@x.io"], "window_start": [t], "window_end": [t], "count": [6],
        ...     "audit_ids": [["e1"]], "summary": ["…"], "details": ["{}"]},
        ...     schema=empty_findings().schema))
        >>> entries = pl.DataFrame({"audit_id": ["r1"], "timestamp": [t],
        ...     "action": ["user.suspended"], "result": ["success"], "organization_id": ["o"],
        ...     "actor_email": ["admin@x.io"], "resource_name": ["jane@x.io"]})
        >>> match_responses(found, entries).select("status", "handled_by", "disposition").row(0)
        ('handled', 'r1', 'suspended')
    """
    frame, to_pandas = _polars(findings, "findings")
    ents, _ = _polars(entries, "entries")
    span = parse_window(window, "window")
    missing = [c for c in FINDING_SCHEMA if c not in frame.columns]
    if missing:
        raise TriageError(f"the findings frame lacks column(s) {', '.join(missing)}")
    ents = _entries(ents)
    base = frame.with_row_index("_row").with_columns(_lower("subject").alias("_subject"))
    within = human(span)
    tri = _triages(base, ents)
    red = _reductions(base, ents, span)
    verb = (
        pl.when(pl.col("_r_disp") == "role_lowered")
        .then(pl.format("had their role lowered from {} to {}", "_r_before", "_r_after"))
        .when(pl.col("_r_disp") == "sessions_revoked")
        .then(pl.lit("had their sessions revoked"))
        .when(pl.col("_r_disp") == "mfa_reset")
        .then(pl.lit("had their MFA reset"))
        .otherwise(pl.format("was {}", "_r_disp"))
    )
    triaged = pl.col("_t_id").is_not_null()
    reduced = pl.col("_r_id").is_not_null()
    note = pl.when(pl.col("_t_note") != "").then(pl.format(": {}", "_t_note")).otherwise(pl.lit(""))
    out = (
        base.join(tri, on="_row", how="left")
        .join(red, on="_row", how="left")
        .with_columns(
            pl.when(triaged | reduced)
            .then(pl.lit("handled"))
            .otherwise(pl.lit("open"))
            .alias("status"),
            pl.when(triaged).then("_t_id").otherwise("_r_id").alias("handled_by"),
            pl.when(triaged).then("_t_at").otherwise("_r_at").alias("handled_at"),
            pl.when(triaged).then("_t_by").otherwise("_r_by").alias("responder"),
            pl.when(triaged).then("_t_disp").otherwise("_r_disp").alias("disposition"),
            pl.when(triaged)
            .then(
                pl.format(
                    "triaged as {} by {} on {}{}",
                    "_t_disp",
                    "_t_by",
                    pl.col("_t_at").dt.strftime(_TS),
                    note,
                )
            )
            .when(reduced)
            .then(
                pl.format(
                    "{} {} by {} on {} ({}), within {} of the finding",
                    "subject",
                    verb,
                    "_r_by",
                    pl.col("_r_at").dt.strftime(_TS),
                    "_r_action",
                    pl.lit(within),
                )
            )
            .when(pl.col("subject_type") == "actor")
            .then(
                pl.format(
                    "no suspension, removal, role lowering, session revocation or MFA reset "
                    "of {} by someone else within {} of the finding, and no triage",
                    "subject",
                    pl.lit(within),
                )
            )
            .otherwise(
                pl.format(
                    "a finding about an {} is handled only by a triage; none recorded",
                    "subject_type",
                )
            )
            .alias("why"),
        )
        .sort("_row")
        .select(*frame.columns, *RESPONSE_COLUMNS)
        .cast(RESPONSE_COLUMNS)  # type: ignore[arg-type]
    )
    return out.to_pandas() if to_pandas else out


def with_responses(
    store: Store, findings: Any, *, window: str | timedelta = RESPONSE_WINDOW
) -> Any:
    """:func:`match_responses` with the candidate responses loaded from the store.

    One query: the response and triage actions of the findings' organizations, from the
    earliest finding on.

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> with_responses(store, store.detect("all")).height
        0
    """
    frame, _ = _polars(findings, "findings")
    parse_window(window, "window")
    actions = [*REDUCTIONS, TRIAGE_ACTION]
    if frame.is_empty():
        entries = pl.DataFrame(schema=dict.fromkeys(_ENTRY_COLUMNS, pl.Utf8))
    else:
        entries = store.query(
            organization_id=sorted(frame["organization_id"].unique().to_list()),
            actions=actions,
            start=cast("datetime", frame["window_start"].min()),
            backend="polars",
            order="asc",
        )
    return match_responses(findings, entries, window=window)


def triage(
    store: Store,
    finding_id: str,
    disposition: str,
    *,
    note: str,
    by: str | None = None,
    organization_id: str | None = None,
    findings: Any = None,
    **filters: Any,
) -> AppendedEntry:
    """Record a human decision about a finding as an ``audit_log.finding_triaged`` entry.

    The finding must exist: it is looked up in ``findings`` when given (a frame from
    ``store.detect``), else the detectors run over ``organization_id``'s entries (with its
    stored context; ``filters`` such as ``last="30d"`` narrow them, as ``findings list
    --since`` does). ``disposition`` is ``false_positive``, ``resolved`` or
    ``accepted_risk``; ``note`` says why (required: an auditor will ask). ``by`` is who
    decided (an email; default ``$AUDITLENS_ACTOR``). Triaging again records a new entry
    and the latest one counts.

    Raises:
        TriageError: unknown disposition, empty note, no organization and no findings.
        FindingNotFoundError: no finding has this id.

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> triage(store, "0123abcd", "ignore", note="x", organization_id="o")
        Traceback (most recent call last):
        ...
        auditlens.errors.TriageError: disposition must be one of false_positive, resolved, accepted_risk; got 'ignore'
    """  # noqa: E501

    if disposition not in DISPOSITIONS:
        raise TriageError(
            f"disposition must be one of {', '.join(DISPOSITIONS)}; got {disposition!r}"
        )
    if not note or not note.strip():
        raise TriageError("a triage needs a note saying why (note=…, --note …)")
    actor: dict[str, Any]
    if by is not None:
        email = by.strip().lower()
        if "@" not in email or any(c.isspace() for c in email):
            raise TriageError(f"by: {by!r} is not an email address")
        actor = {"email": email, "type": "user"}
    else:
        actor = reviewer()
    if findings is None:
        if organization_id is None:
            raise TriageError(
                "pass organization_id=… (the detectors run over its entries) or findings=…"
            )
        findings = detect_stored(store, "all", organization_id=organization_id, **filters)
    frame, _ = _polars(findings, "findings")
    hit = frame.filter(pl.col("finding_id") == finding_id)
    if organization_id is not None:
        hit = hit.filter(pl.col("organization_id") == organization_id)
    if hit.is_empty():
        where = f" in organization {organization_id}" if organization_id else ""
        raise FindingNotFoundError(
            f"no finding {finding_id!r}{where}; list them with `auditlens findings list --org ORG`"
        )
    f = hit.row(0, named=True)
    entry = {
        "actor": actor,
        "action": TRIAGE_ACTION,
        "organization_id": f["organization_id"],
        "result": "success",
        "resource": {"type": "finding", "id": finding_id, "name": f["summary"]},
        "details": {
            "disposition": disposition,
            "note": note.strip(),
            "detector": f["detector"],
            "severity": f["severity"],
            "subject_type": f["subject_type"],
            "subject": f["subject"],
            "window_start": f["window_start"].isoformat(),
        },
    }
    return store.append(entry)[0]
