"""``auditlens import``: real trails (CloudTrail, Okta, GitHub, Google Workspace, sshd)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

import auditlens as al
from auditlens.cli.app import EXIT_PROBLEM, app, handle_errors
from auditlens.cli.commands import Db
from auditlens.cli.output import result_line
from auditlens.errors import IngestAbortedError
from auditlens.progress import progress_bar


@app.command("import")
@handle_errors
def import_(
    fmt: Annotated[
        str,
        typer.Argument(metavar="FORMAT", help="cloudtrail, okta, github, workspace or sshd."),
    ],
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Files or folders (.gz read as is).")
    ],
    db: Db = None,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Organization (id or name) for every entry; default: the source's own "
            "tenant (AWS account, GitHub org, Workspace customer). Required for okta "
            "(or --okta-org) and sshd.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Skip records before this date or time (e.g. 2024-03-01)."),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Write rejected records here (JSON Lines of native records)."),
    ] = None,
    year: Annotated[
        int | None,
        typer.Option(help="sshd: the year of each file's first line (syslog omits it)."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="sshd: the host's IANA time zone (syslog omits it; default UTC)."),
    ] = None,
    okta_org: Annotated[
        str | None,
        typer.Option(help="okta: your Okta domain; the organization is derived from it."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Entries per transaction.")] = 10_000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Processes reading files while this one appends (default 2, none on a "
            "single core; 0: none). The result is the same.",
        ),
    ] = None,
) -> None:
    """Import a source's own audit trail; re-importing the same records changes nothing.

    Each rejected record is reported as file:line: reason. Exit status 1 when any
    record was rejected. Mapping rules: docs/IMPORTERS.md.
    """
    from auditlens.importers import import_files, module  # lazy: CLI start-up stays light

    module(fmt)  # an unknown format fails before the store is opened
    options: dict[str, Any] = {}
    if fmt == "sshd":
        options["year"] = year
        options["timezone"] = timezone or "UTC"
    elif year is not None or timezone is not None:
        result_line(("--year and --timezone apply to sshd only; ignored", "yellow"), err=True)
    if fmt == "okta" and okta_org:
        options["okta_org"] = okta_org
    with al.open_store(db) as store, progress_bar(None, f"import {fmt}") as bar:
        try:
            report = import_files(
                store,
                fmt,
                paths,
                organization=org,
                since=since,
                rejects=rejects,
                batch_size=batch_size,
                progress=bar.advance,
                workers=workers,
                **options,
            )
        except IngestAbortedError as exc:  # the records rejected before it stopped
            for _, where_reason in exc.rejected_lines[:50]:  # "file:line: reason"
                result_line((where_reason, "red"), err=True)
            raise
    for r in report.rejected[:50]:
        result_line((f"{r.where}: {r.reason}", "red"), err=True)
    if len(report.rejected) > 50:
        result_line(f"… and {len(report.rejected) - 50} more rejected records", err=True)
    orgs = ", ".join(report.organizations) or "none"
    result_line(
        f"{fmt}: read {report.read:,} records from {report.files:,} file(s): appended "
        f"{report.appended:,}, {report.duplicates:,} already stored, "
        f"{len(report.rejected):,} rejected, {report.skipped:,} skipped; organization(s): {orgs}"
        + (f" (rejects written to {rejects})" if rejects and report.rejected else "")
    )
    if report.rejected:
        raise typer.Exit(EXIT_PROBLEM)
