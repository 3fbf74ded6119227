"""`auditlens db roles`: least-privilege roles and row-level security on PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import typer

import auditlens as al
from auditlens.cli.app import app, handle_errors
from auditlens.cli.commands import Db
from auditlens.cli.output import result_line

db_app = typer.Typer(help="Database administration (PostgreSQL roles).", no_args_is_help=True)
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
