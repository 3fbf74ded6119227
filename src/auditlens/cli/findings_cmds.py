"""``auditlens findings list`` and ``auditlens findings triage``: findings and their responses.

A finding is handled by a privilege reduction of its subject by someone else (suspension,
removal, role lowered, sessions revoked, MFA reset) within the response window, or by a
triage entry (``audit_log.finding_triaged``); see :mod:`auditlens.responses`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

import auditlens as al
from auditlens.cli.app import app, handle_errors
from auditlens.cli.commands import Db, Query
from auditlens.cli.output import console, print_table, result_line

findings_app = typer.Typer(
    help="Detector findings, whether they were handled, and triage.", no_args_is_help=True
)
app.add_typer(findings_app, name="findings")

Org = Annotated[str, typer.Option("--org", help="The organization's id.")]
Since = Annotated[
    str | None,
    typer.Option(help="Only entries of the last …, e.g. 30d (default: all of the organization's)."),
]
_FIELDS = (
    "finding_id",
    "detector",
    "severity",
    "organization_id",
    "subject_type",
    "subject",
    "window_start",
    "window_end",
    "count",
    "summary",
    "status",
    "handled_by",
    "handled_at",
    "responder",
    "disposition",
    "why",
    "audit_ids",
)


def _detect(store: Any, org: str, query: str, since: str | None) -> Any:
    filters: dict[str, Any] = {"organization_id": org}
    if since:
        filters["last"] = since
    return store.detect("all", query or None, **filters)


@findings_app.command("list")
@handle_errors
def findings_list(
    org: Org,
    query: Query = "",
    db: Db = None,
    since: Since = None,
    window: Annotated[
        str, typer.Option(help="How long after a finding a privilege reduction still counts.")
    ] = "7d",
    status: Annotated[str, typer.Option(help="open, handled or all.")] = "all",
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Every finding of an organization: open or handled, by which entry, and why."""
    import json

    from auditlens.responses import with_responses  # lazy: CLI start-up stays light

    if fmt not in ("table", "json"):
        raise al.FilterError(f"--format must be table or json, got {fmt!r}")
    if status not in ("open", "handled", "all"):
        raise al.FilterError(f"--status must be open, handled or all, got {status!r}")
    with al.open_store(db) as store:
        found = with_responses(store, _detect(store, org, query, since), window=window)
    found = found.sort(["window_start", "detector", "subject"])
    if status != "all":
        found = found.filter(found["status"] == status)
    rows = found.select(_FIELDS).to_dicts()
    for r in rows:
        for key in ("window_start", "window_end", "handled_at"):
            r[key] = r[key].isoformat() if r[key] is not None else None
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table  # lazy: rich only when output is rendered
    from rich.text import Text  # lazy: rich only when output is rendered

    n_open = sum(r["status"] == "open" for r in rows)
    result_line(
        f"{len(rows)} finding(s) in {org}: {n_open} open, {len(rows) - n_open} handled "
        f"(privilege reductions count within {window} of a finding; triage at any time)"
    )
    if not rows:
        return
    style = {"open": "bold red", "handled": "green"}
    for r in rows:
        r["when"] = r["window_start"][:16].replace("T", " ")
        r["state"] = r["status"] + (f" ({r['disposition']})" if r["disposition"] else "")
        r["reason"] = r["why"] + (f" (entry {r['handled_by']})" if r["handled_by"] else "")
    t = Table(header_style="bold")
    for col in ("finding", "when (UTC)", "detector", "severity", "subject", "status", "why"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            *(  # text from the log, never read as markup
                Text(str(r[k])) for k in ("finding_id", "when", "detector", "severity", "subject")
            ),
            Text(r["state"], style=style[r["status"]]),
            Text(r["reason"]),
        )
    unbounded = console.options.update(max_width=100_000)
    if console.measure(t, options=unbounded).minimum <= console.width:
        print_table(t)
        return
    # too narrow for the table without splitting ids: one block per finding
    for r in rows:
        result_line((r["state"], style[r["status"]]), f"  {r['finding_id']}  {r['when']} UTC")
        result_line(f"  {r['severity']} {r['detector']}: {r['subject']}")
        result_line(f"  why: {r['reason']}")


@findings_app.command("triage")
@handle_errors
def findings_triage(
    finding_id: Annotated[str, typer.Argument(help="The finding's id (from `findings list`).")],
    org: Org,
    disposition: Annotated[str, typer.Option(help="false_positive, resolved or accepted_risk.")],
    note: Annotated[str, typer.Option(help="Why: what was checked or decided.")],
    db: Db = None,
    since: Since = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who decides (an email; default $AUDITLENS_ACTOR)."),
    ] = None,
) -> None:
    """Record a decision about a finding (an audit_log.finding_triaged entry)."""

    filters: dict[str, Any] = {"last": since} if since else {}
    with al.open_store(db) as store:
        done = al.triage(
            store, finding_id, disposition, note=note, by=by, organization_id=org, **filters
        )
    result_line(f"finding {finding_id} triaged as {disposition}: entry {done.audit_id}")
