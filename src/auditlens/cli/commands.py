"""The store commands: init, ingest, search, show, stats, tail, demo."""

from __future__ import annotations

import sys
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

import auditlens as al
from auditlens.cli.app import EXIT_PROBLEM, EXIT_USAGE, app, handle_errors
from auditlens.cli.output import (
    FORMATS,
    console,
    err_console,
    error_line,
    print_entries,
    print_table,
    render_entry,
    result_line,
)
from auditlens.config import redact_url, resolve_url
from auditlens.errors import IngestAbortedError
from auditlens.progress import progress_bar

if TYPE_CHECKING:
    from rich.table import Table

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="AUDITLENS_URL",
        help="Store URL or SQLite file (default: $AUDITLENS_URL, else ./auditlens.db).",
        show_default=False,
    ),
]
Format = Annotated[
    str, typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}.")
]
#: an optional search query narrowing what a command looks at ("" or nothing = everything)
Query = Annotated[
    str,
    typer.Argument(
        help="Search query, e.g. 'actor:jane@company.com action:webhook.* -result:success' "
        "('' or nothing for every entry)."
    ),
]
#: the search query selecting what an export takes out (required; '' = everything)
Selection = Annotated[str, typer.Argument(help="Search query selecting the entries ('' for all).")]


def _format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    if fmt not in allowed:
        error_line(f"--format must be one of {', '.join(allowed)}, got {fmt!r}")
        raise typer.Exit(EXIT_USAGE)
    return fmt


@app.command()
@handle_errors
def init(db: Db = None) -> None:
    """Create the store (tables, triggers, indexes) if it does not exist yet."""
    with al.open_store(db) as store:
        n = store.count()
    result_line(f"store ready: {redact_url(resolve_url(db))} ({n:,} entries)")


@app.command()
@handle_errors
def ingest(
    source: Annotated[
        str, typer.Argument(help="JSONL or JSON-array file, or - for standard input.")
    ],
    db: Db = None,
    strict: Annotated[bool, typer.Option(help="Append nothing if any line is invalid.")] = False,
    rejects: Annotated[Path | None, typer.Option(help="Write rejected lines to this file.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Entries per transaction.")] = 10_000,
) -> None:
    """Validate and append audit entries; report each bad line with its number.

    Exit status 1 when any line was rejected.
    """
    from auditlens.ingest import ingest as run_ingest  # lazy: CLI start-up stays light

    total = None
    if source != "-":
        total = _count_lines(Path(source))
    with (
        al.open_store(db) as store,
        progress_bar(total, "ingest") as bar,
    ):
        try:
            report = run_ingest(
                store,
                source,
                strict=strict,
                rejects=rejects,
                batch_size=batch_size,
                progress=bar.advance,
            )
        except IngestAbortedError as exc:  # show the lines rejected before it stopped
            _print_rejected(exc.source, exc.rejected_lines)
            raise
    _print_rejected(report.source, [(r.line, r.reason) for r in report.rejected])
    if strict and report.rejected and not report.appended:
        done = "appended nothing (--strict: any rejected line stops the whole file)"
    else:
        done = f"appended {report.appended:,}, {report.duplicates:,} already stored"
    result_line(
        f"read {report.read:,} entries: {done}, {len(report.rejected):,} rejected"
        + (f" (written to {rejects})" if rejects and report.rejected else "")
    )
    if report.rejected:
        raise typer.Exit(EXIT_PROBLEM)


def _print_rejected(source: str, rejected: list[tuple[int, str]]) -> None:
    for line, reason in rejected[:50]:
        result_line((f"{source}:{line}: {reason}", "red"), err=True)
    if len(rejected) > 50:
        err_console.print(f"… and {len(rejected) - 50} more rejected lines")


def _count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        return sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 20), b""))


@app.command()
@handle_errors
def search(
    query: Query = "",
    db: Db = None,
    limit: Annotated[int, typer.Option(min=1, help="Most entries to show.")] = 50,
    fmt: Format = "table",
    order: Annotated[str, typer.Option(help="desc (newest first) or asc.")] = "desc",
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Record this search in the audit trail.")
    ] = True,
) -> None:
    """Find entries with the search syntax (recorded as audit_log.viewed unless --no-record).

    Qualifiers: actor: action: result: created: last: resource: type: name: ip: org: app:
    category: actor_type: id: text:. Same qualifier twice = OR, different = AND, - negates,
    bare words search text; an email means that actor, an action name that action.
    """
    _format(fmt)
    with al.open_store(db) as store:
        entries = store.entries(query or None, limit=limit, order=order)  # type: ignore[arg-type]
        if record:
            from collections import Counter

            from auditlens.review import record_review  # lazy: CLI start-up stays light

            counts = Counter(e["organization_id"] for e in entries)
            record_review(
                store,
                "audit_log.viewed",
                counts,
                {"query": query, "limit": limit, "via": "auditlens search"},
                "search",
            )
    print_entries(entries, fmt, title=f"{len(entries)} entries" if fmt == "table" else None)


@app.command()
@handle_errors
def show(
    audit_id: Annotated[str, typer.Argument(help="The entry's audit_id.")],
    db: Db = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Show one entry with every field and its chain position. Exit 1 if not found."""
    _format(fmt, ("table", "json"))
    with al.open_store(db) as store:
        entry = store.get(audit_id)
    if entry is None:
        result_line(f"no entry with audit_id {audit_id}", err=True)
        raise typer.Exit(EXIT_PROBLEM)
    if fmt == "json":
        sys.stdout.write(orjson.dumps(entry, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        result_line(render_entry(entry))


@app.command()
@handle_errors
def stats(
    query: Query = "",
    db: Db = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    days: Annotated[
        int, typer.Option(help="Days to list in the per-day table (most recent).")
    ] = 14,
) -> None:
    """Counts by category, result and day."""
    _format(fmt, ("table", "json"))
    with al.open_store(db) as store:
        st = store.stats(query or None)
    if fmt == "json":
        sys.stdout.write(orjson.dumps(st.__dict__, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    result_line((f"{st.total:,}", "bold"), f" entries from {st.first or '-'} to {st.last or '-'}")
    tables = (
        _counts("category", st.by_category),
        _counts("result", st.by_result),
        _counts("day (UTC)", st.by_day[-days:]),
    )
    if console.width < 80:  # one under the other: side by side they would not fit
        for t in tables:
            print_table(t)
        return
    from rich.table import Table  # lazy: keeps --help fast

    grid = Table.grid(padding=(0, 4))
    grid.add_row(*tables)
    console.print(grid)


def _counts(title: str, rows: list[tuple[str, int]]) -> Table:
    from rich.table import Table  # lazy: keeps --help fast
    from rich.text import Text  # lazy: rich only when output is rendered

    t = Table(title=None, header_style="bold", pad_edge=False)
    t.add_column(title)
    t.add_column("entries", justify="right")
    for k, n in rows:
        t.add_row(Text(str(k)), f"{n:,}")
    return t


@app.command()
@handle_errors
def tail(
    query: Query = "",
    db: Db = None,
    since: Annotated[
        str | None, typer.Option(help="Catch up first: a duration like 1h, or 'beginning'.")
    ] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 1.0,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or jsonl.")] = "table",
    count: Annotated[int | None, typer.Option(help="Stop after this many entries.")] = None,
) -> None:
    """Follow new entries as they are appended (Ctrl-C to stop)."""
    _format(fmt, ("table", "jsonl"))
    stop = threading.Event()
    with al.open_store(db) as store:
        _follow(store, query, since, interval, fmt, count, stop)


def _follow(
    store: al.AuditStore,
    query: str,
    since: str | None,
    interval: float,
    fmt: str,
    count: int | None,
    stop: threading.Event,
) -> None:
    try:
        for entry in store.stream(
            query or None, since=since, poll_interval=interval, stop=stop, max_events=count
        ):
            if fmt == "jsonl":
                sys.stdout.write(orjson.dumps(entry).decode() + "\n")
                sys.stdout.flush()
            else:
                print_entries([entry], "table")
    except KeyboardInterrupt:
        stop.set()


@app.command()
@handle_errors
def demo(
    db: Db = None,
    orgs: Annotated[int, typer.Option(min=1, help="Organizations to generate.")] = 3,
    days: Annotated[int, typer.Option(min=7, help="Days of history.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed (same seed and end → same data).")] = 7,
    end: Annotated[
        str | None, typer.Option(help="Last day, exclusive (YYYY-MM-DD; default today).")
    ] = None,
    incidents: Annotated[Path, typer.Option(help="Where to write the ground truth.")] = Path(
        "incidents.json"
    ),
    jsonl: Annotated[
        Path | None, typer.Option(help="Also write the entries as JSONL here.")
    ] = None,
) -> None:
    """Build a realistic demo store with injected incidents and their ground truth."""
    from auditlens.demo import generate  # lazy: CLI start-up stays light

    end_day = date.fromisoformat(end) if end else None
    data = generate(orgs=orgs, days=days, seed=seed, end=end_day)
    with al.open_store(db) as store, progress_bar(len(data.entries), "demo") as bar:
        for i in range(0, len(data.entries), 10_000):
            chunk = data.entries[i : i + 10_000]
            store.append(chunk)
            bar.advance(len(chunk))
    incidents.parent.mkdir(parents=True, exist_ok=True)
    incidents.write_bytes(
        orjson.dumps(
            {"seed": seed, "incidents": data.incidents},
            option=orjson.OPT_INDENT_2,
        )
    )
    if jsonl is not None:
        with jsonl.open("wb") as fh:
            for e in data.entries:
                fh.write(orjson.dumps(e) + b"\n")
    result_line(
        f"demo store {redact_url(resolve_url(db))}: {len(data.entries):,} entries, "
        f"{len(data.organizations)} organizations, {len(data.incidents)} injected incidents "
        f"(ground truth in {incidents})"
    )


@app.command("export")
@handle_errors
def export_cmd(
    query: Selection,
    out: Annotated[str, typer.Option(help="File to write, or - for standard output.")],
    db: Db = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="csv, json, jsonl, parquet, pdf or ocsf.")
    ] = "csv",
    fields: Annotated[
        str | None, typer.Option(help="Comma-separated fields, e.g. timestamp,actor.email,action.")
    ] = None,
    gzip: Annotated[
        bool | None,
        typer.Option("--gzip/--no-gzip", help="Compress (default: when OUT ends in .gz)."),
    ] = None,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Record the export in the audit trail.")
    ] = True,
    parquet: Annotated[
        bool,
        typer.Option(
            "--parquet", help="With --format ocsf: a folder OUT of Parquet files, one per class."
        ),
    ] = False,
) -> None:
    """Export matching entries (streamed), with a manifest beside the file.

    --format ocsf writes OCSF 1.5 events as JSON Lines; with --parquet (or an OUT ending
    in .parquet) a folder with one Parquet file per OCSF class.
    """
    from auditlens.export import export  # lazy: CLI start-up stays light
    from auditlens.export.ocsf import export_ocsf_parquet  # lazy: CLI start-up stays light

    if parquet and fmt != "ocsf":
        error_line("--parquet applies to --format ocsf (use --format parquet for entries)")
        raise typer.Exit(EXIT_USAGE)
    with al.open_store(db) as store:
        if parquet:
            res = export_ocsf_parquet(store, out, where=query or None, record=record)
        else:
            res = export(
                store, out, format=fmt, fields=fields, where=query or None, gzip=gzip, record=record
            )
    if res.path is not None:
        result_line(
            f"wrote {res.rows:,} entries to {res.path} ({res.bytes:,} bytes, sha256 {res.sha256})",
            err=True,
        )
        result_line(f"{res.rows:,} entries exported; manifest {res.manifest}")
