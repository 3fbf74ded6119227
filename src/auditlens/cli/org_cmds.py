"""Organization context: ``org set``, ``org list``, ``people import``, ``people list``.

Every change is an audit entry of the organization (``organization.profile_changed``,
``organization.person_set``/``person_removed``), so the context detectors and reports
rely on is itself evidenced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import auditlens as al
from auditlens.cli.app import app, handle_errors
from auditlens.cli.commands import Db
from auditlens.cli.output import print_table, result_line

org_app = typer.Typer(
    help="Organization context: name, time zone, business hours, workdays.", no_args_is_help=True
)
people_app = typer.Typer(
    help="People of an organization (their time zones override the organization's).",
    no_args_is_help=True,
)
app.add_typer(org_app, name="org")
app.add_typer(people_app, name="people")

OrgId = Annotated[str, typer.Argument(help="The organization's id.")]
By = Annotated[
    str | None,
    typer.Option("--by", help="Who makes the change (an email; default $AUDITLENS_ACTOR)."),
]


@org_app.command("set")
@handle_errors
def org_set(
    organization_id: OrgId,
    db: Db = None,
    name: Annotated[str | None, typer.Option(help="The organization's name.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone, e.g. Asia/Tokyo.")] = None,
    hours: Annotated[
        str | None, typer.Option(help="Business hours, e.g. 09:00-18:00 (local time).")
    ] = None,
    workdays: Annotated[
        str | None, typer.Option(help="Workdays, e.g. mon-fri, sun-thu or mon,wed,fri.")
    ] = None,
    by: By = None,
) -> None:
    """Set an organization's name, time zone, business hours or workdays."""
    with al.open_store(db) as store:
        before = store.org_profile(organization_id)
        p = store.set_org_profile(
            organization_id, name=name, timezone=timezone, hours=hours, workdays=workdays, by=by
        )
    changed = "unchanged" if p.audit_id == before.audit_id else f"recorded as entry {p.audit_id}"
    result_line(
        f"{p.organization_id}: {p.name or '(no name)'}, {p.timezone}, {p.hours}, "
        f"{','.join(p.workdays)} — {changed}"
    )


@org_app.command("list")
@handle_errors
def org_list(
    db: Db = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Every organization: id, name, time zone, hours, plan, entries, first/last entry."""
    import json

    from auditlens.context import (  # lazy: CLI start-up stays light
        OrgProfile,
        org_profiles,
    )
    from auditlens.retention import plan_of  # lazy: CLI start-up stays light
    from auditlens.schema import format_timestamp  # lazy: CLI start-up stays light

    with al.open_store(db) as store:
        profiles = org_profiles(store)
        rows = []
        for o in store.organizations():
            p = profiles.get(o["organization_id"]) or OrgProfile(o["organization_id"])
            plan = plan_of(store, o["organization_id"])
            rows.append(
                {
                    "organization_id": o["organization_id"],
                    "name": p.name,
                    "timezone": p.timezone,
                    "hours": p.hours,
                    "workdays": list(p.workdays),
                    "context": "default" if p.is_default else "set",
                    "plan": plan[0] if plan else None,
                    "entries": o["entries"],
                    "first_entry": format_timestamp(o["first_ts"]),
                    "last_entry": format_timestamp(o["last_ts"]),
                }
            )
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table  # lazy: keeps --help fast

    t = Table(header_style="bold")
    for col in ("organization", "name", "time zone", "hours", "plan", "entries", "first", "last"):
        t.add_column(col, justify="right" if col == "entries" else "left")
    for r in rows:
        t.add_row(
            r["organization_id"],
            r["name"] or "—",
            r["timezone"] + (" (default)" if r["context"] == "default" else ""),
            f"{r['hours']} {_days(r['workdays'])}",
            r["plan"] or "—",
            f"{r['entries']:,}",
            (r["first_entry"] or "—")[:16],
            (r["last_entry"] or "—")[:16],
        )
    print_table(t)


def _days(days: list[str]) -> str:
    from auditlens.context import DAYS  # lazy: CLI start-up stays light

    idx = [DAYS.index(d) for d in days]
    if idx and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{days[0]}-{days[-1]}" if len(days) > 1 else days[0]
    return ",".join(days)


@people_app.command("import")
@handle_errors
def people_import(
    path: Annotated[Path, typer.Argument(help="CSV (email,timezone,name,role,manager) or JSON.")],
    org: Annotated[str, typer.Option("--org", help="The organization's id.")],
    db: Db = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="Keep people not in the file (default: replace).")
    ] = False,
    by: By = None,
) -> None:
    """Set an organization's people from a file; every change is an audit entry."""
    from auditlens.context import read_people_file  # lazy: CLI start-up stays light

    rows = read_people_file(path)  # validated whole before anything is written
    with al.open_store(db) as store:
        change = store.set_people(org, rows, replace_all=not merge, by=by)
    result_line(
        f"{org}: {change.added} added, {change.changed} changed, {change.removed} removed, "
        f"{change.unchanged} unchanged (from {path})"
    )


@people_app.command("list")
@handle_errors
def people_list(
    org: Annotated[str, typer.Option("--org", help="The organization's id.")],
    db: Db = None,
) -> None:
    """An organization's people and their time zones."""
    with al.open_store(db) as store:
        people = store.people(org)
        zone = store.org_profile(org).timezone
    from rich.table import Table  # lazy: keeps --help fast

    t = Table(header_style="bold")
    for col in ("email", "name", "time zone", "role", "manager"):
        t.add_column(col)
    for p in people:
        t.add_row(
            p.email,
            p.name or "—",
            p.timezone or f"{zone} (organization)",
            p.role or "—",
            p.manager or "—",
        )
    print_table(t)
