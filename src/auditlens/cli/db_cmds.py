"""`auditlens db`: schema upgrades (`upgrade`), least-privilege PostgreSQL roles (`roles`)."""

from __future__ import annotations

from typing import Annotated

import typer

import auditlens as al
from auditlens.cli.app import app, handle_errors
from auditlens.cli.commands import Db
from auditlens.cli.output import result_line

db_app = typer.Typer(
    help="Database administration: schema upgrades, PostgreSQL roles.", no_args_is_help=True
)
app.add_typer(db_app, name="db")


@db_app.command("roles")
@handle_errors
def roles(
    db: Db = None,
    prefix: Annotated[
        str,
        typer.Option(
            help="Role name prefix: PREFIX_reader, PREFIX_appender, PREFIX_admin, PREFIX_retention."
        ),
    ] = "auditlens",
) -> None:
    """Create the reader/appender/admin/retention roles and per-organization row-level security.

    Run as the owner of the store's tables; running it again is safe. See docs/SECURITY.md.
    """
    from auditlens.store.roles import create_roles  # lazy: loads SQLAlchemy

    with al.open_store(db) as store:
        made = create_roles(store, prefix)
    result_line(
        f"schema {made.schema}: roles {made.reader}, {made.appender}, {made.admin}, "
        f"{made.retention}"
    )
    result_line("row-level security on audit_entries: reader/appender see one organization")


@db_app.command("upgrade")
@handle_errors
def upgrade(db: Db = None) -> None:
    """Upgrade a store made by an older auditlens to this version's layout, in place.

    Run it after upgrading the auditlens package (take a backup first; on PostgreSQL run it
    as the owner of the store's tables). All steps run in one transaction: if one fails,
    the store keeps the version it had. Running it again is safe.
    """
    from auditlens.store.migrate import upgrade as upgrade_store  # lazy: loads SQLAlchemy

    done = upgrade_store(db)
    if not done.applied:
        result_line(f"schema version {done.to_version}: already up to date")
        return
    for step in done.applied:
        result_line(f"applied {step}")
    result_line(f"schema version {done.from_version} → {done.to_version}")
