"""Rendering entries for the terminal and for scripts (table, json, jsonl, csv)."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

__all__ = ["FORMATS", "console", "err_console", "print_entries", "progress_bar", "render_entry"]

FORMATS = ("table", "json", "jsonl", "csv")
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one message, one line

_CSV_FIELDS = (
    "timestamp",
    "audit_id",
    "organization_id",
    "actor.email",
    "actor.user_id",
    "actor.type",
    "action",
    "resource.type",
    "resource.id",
    "resource.name",
    "result",
    "ip_address",
    "user_agent",
    "application_id",
    "details",
    "seq",
    "entry_hash",
)
_RESULT_STYLE = {"success": "green", "failure": "bold red", "partial": "yellow"}


def progress_bar(label: str) -> Progress:
    """A progress bar on stderr (shown only on a terminal, so scripts and pipes stay clean)."""
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def _get(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = orjson.dumps(value).decode()
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text  # keep spreadsheets from evaluating it as a formula
    return text


def print_entries(entries: Sequence[dict[str, Any]], fmt: str, *, title: str | None = None) -> None:
    """Write entries to standard output in ``fmt``."""
    out = sys.stdout
    if fmt == "json":
        out.write(orjson.dumps(list(entries), option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "jsonl":
        for e in entries:
            out.write(orjson.dumps(e).decode() + "\n")
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(_CSV_FIELDS)
        for e in entries:
            w.writerow([_csv_cell(_get(e, f)) for f in _CSV_FIELDS])
        out.write(buf.getvalue())
    else:
        console.print(entries_table(entries, title=title))


def entries_table(
    entries: Iterable[dict[str, Any]], *, title: str | None = None, width: int | None = None
) -> Table:
    """A rich table of entries sized for the terminal (narrow terminals drop ip and id)."""
    wide = (width or console.width) >= 110
    table = Table(title=title, expand=True, header_style="bold", pad_edge=False)
    table.add_column("time (UTC)", no_wrap=True, min_width=19 if wide else 16)
    table.add_column("actor", overflow="ellipsis", no_wrap=True, ratio=3, min_width=10)
    table.add_column("action", no_wrap=True, min_width=12, overflow="fold")
    table.add_column("resource", overflow="ellipsis", no_wrap=True, ratio=3, min_width=10)
    table.add_column("result", no_wrap=True, min_width=7)
    if wide:
        table.add_column("ip", no_wrap=True, overflow="ellipsis", min_width=15, max_width=39)
        table.add_column("id", no_wrap=True, min_width=8)
    for e in entries:
        actor = e["actor"].get("email") or e["actor"].get("user_id") or e["actor"]["type"]
        res = e.get("resource") or {}
        resource = f"{res.get('type')}: {res.get('name') or res.get('id')}" if res else ""
        result = e["result"]
        stamp = e["timestamp"].replace("T", " ")[: 19 if wide else 16]
        # user-controlled text goes in as Text, never as console markup
        cells = [
            Text(stamp),
            Text(actor),
            Text(e["action"]),
            Text(resource),
            Text(result, style=_RESULT_STYLE.get(result, "")),
        ]
        if wide:
            cells += [Text(e.get("ip_address") or ""), Text(e["audit_id"][:8])]
        table.add_row(*cells)
    return table


def render_entry(entry: dict[str, Any]) -> Table:
    """A two-column table with every field of one entry."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    flat = {
        "audit_id": entry["audit_id"],
        "timestamp": entry["timestamp"],
        "organization_id": entry["organization_id"],
        "actor": f"{entry['actor'].get('email') or '-'} ({entry['actor']['type']}, "
        f"user_id {entry['actor'].get('user_id') or '-'})",
        "action": entry["action"],
        "resource": orjson.dumps(entry["resource"]).decode() if entry.get("resource") else "-",
        "result": entry["result"],
        "application_id": entry.get("application_id") or "-",
        "ip_address": entry.get("ip_address") or "-",
        "user_agent": entry.get("user_agent") or "-",
        "details": orjson.dumps(entry["details"], option=orjson.OPT_INDENT_2).decode(),
        "seq": str(entry.get("seq")),
        "prev_hash": entry.get("prev_hash", ""),
        "entry_hash": entry.get("entry_hash", ""),
    }
    for k, v in flat.items():
        table.add_row(k, Text(str(v)))
    return table
