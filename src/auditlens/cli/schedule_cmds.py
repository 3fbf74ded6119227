"""Scheduled exports: schedule add, list, remove, run-due (the last one from cron)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import auditlens as al
from auditlens.cli.app import EXIT_PROBLEM, app, handle_errors
from auditlens.cli.commands import Db
from auditlens.cli.output import print_table, result_line

schedule_app = typer.Typer(
    help="Scheduled exports (pro and enterprise plans).", no_args_is_help=True
)
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("add")
@handle_errors
def schedule_add(
    name: Annotated[
        str,
        typer.Argument(
            help="A name for the schedule (part of the file names): letters, digits, "
            "'.', '_' and '-', starting with a letter or digit, at most 100."
        ),
    ],
    org: Annotated[str, typer.Option(help="Organization id (on the pro or enterprise plan).")],
    every: Annotated[str, typer.Option(help="daily, weekly or monthly.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="file:///folder/, mailto:a@x.io,b@x.io, s3://bucket/prefix/ or "
            "sftp://user@host:port/folder/.",
        ),
    ],
    query: Annotated[str | None, typer.Option(help="Search query restricting the entries.")] = None,
    at: Annotated[str, typer.Option(help="Run time after the period ends (local).")] = "02:00",
    timezone: Annotated[str, typer.Option(help="IANA time zone of the periods.")] = "UTC",
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="csv, json, jsonl, parquet or pdf.")
    ] = "csv",
    fields: Annotated[str | None, typer.Option(help="Comma-separated fields.")] = None,
    report: Annotated[
        str | None,
        typer.Option(help="Deliver this compliance report (soc2, iso27001, gdpr or a YAML path)."),
    ] = None,
    db: Db = None,
) -> None:
    """Export the previous complete period on a schedule (or deliver a compliance report)."""
    from auditlens.export import schedules  # lazy: loads polars and SQLAlchemy

    with al.open_store(db) as store:
        schedules.add_schedule(
            store,
            name,
            organization_id=org,
            every=every,
            destination=to,
            at=at,
            timezone=timezone,
            query=query,
            format=fmt,
            fields=fields,
            report=report,
        )
    what = f"{report} report" if report else "export"
    result_line(f"schedule {name}: {what} {every} at {at} {timezone} → {to}")


@schedule_app.command("list")
@handle_errors
def schedule_list(
    db: Db = None, runs: Annotated[int, typer.Option(help="Recent runs to show.")] = 10
) -> None:
    """Schedules and their recent runs (period, status, rows, bytes, checksum, error)."""
    from auditlens.export import schedules  # lazy: loads polars and SQLAlchemy

    with al.open_store(db) as store:
        items = schedules.list_schedules(store)
        history = schedules.list_runs(store)
    from rich.table import Table  # lazy: keeps --help fast
    from rich.text import Text  # lazy: rich only when output is rendered

    t = Table(header_style="bold", title="schedules")
    for col in ("name", "organization", "every", "query", "format", "to"):
        t.add_column(col)
    for s in items:
        t.add_row(
            Text(s.name),
            Text(s.organization_id),
            f"{s.every} {s.at} {s.timezone}",
            Text(s.query or ""),
            f"{Path(s.report).name} report (pdf)" if s.report else s.format,
            Text(s.destination),
        )
    print_table(t)
    r = Table(header_style="bold", title="recent runs")
    for col in ("schedule", "period", "status", "attempts", "rows", "bytes", "sha256 / error"):
        r.add_column(col)
    for run in history[:runs]:
        r.add_row(
            Text(run.schedule),
            f"{run.period_start:%Y-%m-%d}",
            run.status,
            str(run.attempts),
            "" if run.rows is None else f"{run.rows:,}",
            "" if run.bytes is None else f"{run.bytes:,}",
            Text((run.sha256 or "")[:16] if run.status == "succeeded" else (run.error or "")),
        )
    print_table(r)


@schedule_app.command("remove")
@handle_errors
def schedule_remove(name: Annotated[str, typer.Argument()], db: Db = None) -> None:
    """Remove a schedule (its run history stays)."""
    from auditlens.export import schedules  # lazy: loads polars and SQLAlchemy

    with al.open_store(db) as store:
        found = schedules.remove_schedule(store, name)
    if not found:
        result_line(f"no schedule named {name}")
        raise typer.Exit(EXIT_PROBLEM)
    result_line(f"removed {name}")


@schedule_app.command("run-due")
@handle_errors
def schedule_run_due(db: Db = None) -> None:
    """Run whatever is due (call from cron every few minutes). Exit 1 if a run failed."""
    from auditlens.export import schedules  # lazy: loads polars and SQLAlchemy

    with al.open_store(db) as store:
        made = schedules.run_due(store)
    for run in made:
        result_line(
            f"{run.schedule} {run.period_start:%Y-%m-%d}: {run.status}"
            + (
                f", {run.rows:,} rows → {run.location}"
                if run.status == "succeeded"
                else f" ({run.error})"
            )
        )
    if any(r.status == "failed" for r in made):
        raise typer.Exit(EXIT_PROBLEM)
