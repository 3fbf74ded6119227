"""``auditlens lake sync``: the trail as a Hive-partitioned Parquet lake (``docs/SCALE.md``).

``auditlens verify --lake PATH`` (in :mod:`auditlens.cli.chain_cmds`) checks it.
"""

from __future__ import annotations

from typing import Annotated

import typer

import auditlens as al
from auditlens.cli.app import app, handle_errors
from auditlens.cli.commands import Db
from auditlens.cli.output import result_line
from auditlens.progress import progress_bar

lake_app = typer.Typer(
    help="The trail as Parquet (organization_id=…/date=…/) for polars, Trino, Athena, Spark.",
    no_args_is_help=True,
)
app.add_typer(lake_app, name="lake")


@lake_app.command("sync")
@handle_errors
def sync_cmd(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The lake's folder (created if missing), or s3://bucket/prefix (endpoint, "
            "region and credentials from the environment: AUDITLENS_S3_ENDPOINT_URL or "
            "AWS_ENDPOINT_URL, AWS_*).",
        ),
    ],
    db: Db = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this organization (id).")] = None,
    target_mib: Annotated[
        int, typer.Option("--target-mib", help="Target size of a Parquet file, in MiB.", min=1)
    ] = 128,
    partition: Annotated[
        str | None,
        typer.Option(
            "--partition",
            help="Time partition of a new lake: date, month, or auto (the default: date when the "
            "trail averages 500+ entries per organization-day, else month); a lake keeps its own.",
        ),
    ] = None,
) -> None:
    """Append the entries the lake does not hold yet (incremental, compacted, with a manifest)."""
    with al.open_store(db) as store:
        total = store.count(organization_id=org) if org else store.count()
        with progress_bar(total, "lake sync") as bar:
            result = al.sync_lake(
                store,
                to,
                organization_id=org,
                target_file_bytes=target_mib << 20,
                partition=partition,
                progress=bar.advance,
            )
    if result.sync is None:
        result_line(f"{to}: up to date, nothing to sync")
        return
    rate = result.rows / result.seconds if result.seconds else 0.0
    result_line(
        f"sync {result.sync}: {result.rows:,} entries from {len(result.organizations)} "
        f"organization(s) in {result.seconds:.1f} s ({rate:,.0f}/s), {result.partition} "
        "partitions; "
        f"{result.files_written} file(s) written, {result.files_replaced} compacted"
    )
    for org_id, (first, last) in sorted(result.organizations.items()):
        result_line(f"  {org_id}: seq {first}..{last}")
