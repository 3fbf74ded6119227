"""Plans, retention and the archive: plan set, retention apply, archive list/restore."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

import auditlens as al
from auditlens.cli.app import app, handle_errors
from auditlens.cli.chain_cmds import Keys, _trusted
from auditlens.cli.commands import Db
from auditlens.cli.output import console, print_table, result_line
from auditlens.config import redact_url

plan_app = typer.Typer(help="Organization plans (they set retention).", no_args_is_help=True)
retention_app = typer.Typer(
    help="Apply retention: archive to Parquet, verify, then remove.", no_args_is_help=True
)
archive_app = typer.Typer(
    help="The Parquet archive of entries past retention.", no_args_is_help=True
)
app.add_typer(plan_app, name="plan")
app.add_typer(retention_app, name="retention")
app.add_typer(archive_app, name="archive")

Archive = Annotated[
    str | None,
    typer.Option(
        "--archive",
        help="Archive folder or s3://bucket/prefix (default: $AUDITLENS_ARCHIVE).",
    ),
]


def _archive_dir(where: str | None) -> str:
    where = where or os.environ.get("AUDITLENS_ARCHIVE") or None
    if where is None:
        raise al.ConfigError(
            "no archive location: pass --archive DIR|s3://bucket/prefix or set AUDITLENS_ARCHIVE"
        )
    return where


@plan_app.command("set")
@handle_errors
def plan_set(
    organization_id: Annotated[str, typer.Argument(help="Organization id.")],
    plan: Annotated[
        str, typer.Argument(help="free (7 d), starter (30 d), pro (365 d) or enterprise.")
    ],
    days: Annotated[
        int | None, typer.Option(help="Enterprise only: custom retention in days.")
    ] = None,
    db: Db = None,
) -> None:
    """Set an organization's plan."""
    from auditlens import retention  # lazy: loads polars and SQLAlchemy

    with al.open_store(db) as store:
        retention.set_plan(store, organization_id, plan, days)
    result_line(f"{organization_id}: plan {plan}" + (f" ({days} days)" if days else ""))


@retention_app.command("apply")
@handle_errors
def retention_apply(
    db: Db = None,
    archive: Archive = None,
    org: Annotated[str | None, typer.Option(help="Only this organization.")] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Show what would be archived; change nothing.")
    ] = False,
) -> None:
    """Archive entries past each plan's retention, verify the archive, then remove them."""
    from auditlens import retention  # lazy: loads polars and SQLAlchemy

    with al.open_store(db) as store:
        results = retention.apply_retention(
            store, _archive_dir(archive), organization_id=org, dry_run=dry_run
        )
    for r in results:
        if r.rows == 0:
            result_line(f"{r.organization_id} ({r.plan}): nothing past retention")
        else:
            verb = "would archive" if r.dry_run else "archived and removed"
            result_line(
                f"{r.organization_id} ({r.plan}, {r.retention_days} d): {verb} seq "
                f"{r.first_seq}..{r.through_seq} ({r.rows:,} entries)"
                + (f" → {r.manifest}" if r.manifest else "")
            )


@archive_app.command("list")
@handle_errors
def archive_list(db: Db = None) -> None:
    """Archived ranges recorded in the store."""
    from sqlalchemy import select  # lazy: keeps --help fast

    from auditlens.store.backend import retention_log

    r = retention_log.c
    with al.open_store(db) as store, store.connect() as conn:
        rows = conn.execute(
            select(r.organization_id, r.first_seq, r.through_seq, r.rows, r.manifest).order_by(
                r.organization_id, r.first_seq
            )
        ).all()
    from rich.table import Table  # lazy: keeps --help fast
    from rich.text import Text

    t = Table(header_style="bold")
    for col in ("organization", "seq", "entries", "manifest"):
        t.add_column(col)
    for org, first, through, n, manifest in rows:
        t.add_row(Text(org), f"{first}..{through}", f"{n:,}", Text(manifest))
    print_table(t)


@archive_app.command("restore")
@handle_errors
def archive_restore(
    org: Annotated[str, typer.Option(help="Organization id.")],
    out: Annotated[
        Path | None, typer.Option(help="Parquet file to write the verified entries to.")
    ] = None,
    into: Annotated[
        str | None,
        typer.Option(help="A new store (URL or SQLite file) to load them into, for querying."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="From this date (inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="Until this date (inclusive).")] = None,
    key: Keys = None,
    allow_unanchored: Annotated[
        bool,
        typer.Option(
            "--allow-unanchored",
            help="Restore even when no signed checkpoint covers the range (with a warning).",
        ),
    ] = False,
    db: Db = None,
) -> None:
    """Read archived entries back, verified against their manifests, retention_log and the
    signed checkpoints, into a Parquet file and/or a queryable side store (enterprise plan)."""
    if out is None and into is None:
        raise al.ConfigError("say where to restore to: --out FILE.parquet and/or --into STORE")
    from auditlens import retention  # lazy: loads polars and SQLAlchemy

    with al.open_store(db) as store:
        res = retention.restore_archive(
            store,
            org,
            start=start,
            end=end,
            into=into,
            keys=_trusted(key),
            allow_unanchored=allow_unanchored,
        )
    n = res.entries.height
    if out is not None:
        res.entries.write_parquet(out)
        result_line(f"restored {n:,} verified entries of {org} to {out}")
    if into is not None:
        result_line(
            f"restored {n:,} verified entries of {org} into {redact_url(into)}; "
            f"query them with --db {redact_url(into)}"
        )
    if not n:
        return
    span = f"seq {res.first_seq}..{res.last_seq}"
    if res.anchored:
        result_line(
            f"{span} covered by the signed checkpoint of tree size {res.checkpoint_size} "
            f"(signed by {', '.join(res.signed_by)})"
        )
        if res.keys_source != "given":
            console.print(
                "[yellow]note:[/] checkpoint signatures were checked against the keys "
                "recorded in the store; pass --key with a key you hold to rule out a "
                "replaced key."
            )
    else:
        result_line(
            ("WARNING:", "bold red"),
            f" no signed checkpoint covers {span} of {org}: these entries match their "
            "manifests and retention_log, but whoever can write both the archive and the "
            "database could have rewritten them all together.",
            err=True,
        )
