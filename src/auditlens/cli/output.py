"""Rendering entries for the terminal and for scripts (table, json, jsonl, csv).

Result lines (paths, hashes, ids, URLs: anything a user may copy or a script may
match) go through :func:`result_line`: printed whole on one line whatever the
terminal width, and never parsed as rich markup. Tables may wrap cells at spaces,
but :func:`print_table` widens a table rather than split a path or an id.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeAlias, cast

import orjson

from auditlens.fields import CSV_FIELDS

if TYPE_CHECKING:  # rich is imported on first use, so `auditlens --help` never loads it
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "FORMATS",
    "Part",
    "console",
    "entries_table",
    "err_console",
    "error_line",
    "print_entries",
    "print_table",
    "render_entry",
    "result_line",
]

FORMATS = ("table", "json", "jsonl", "csv")


class _LazyConsole:
    """A rich Console made on first use: every attribute read and write goes to it.

    Importing rich costs more than the rest of ``auditlens --help``, so the two module
    consoles are created when something is first printed, not when the CLI is imported.
    """

    __slots__ = ("_make", "_real")

    def __init__(self, make: Callable[[], Console]) -> None:
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_real", None)

    def _console(self) -> Console:
        real: Console | None = object.__getattribute__(self, "_real")
        if real is None:
            real = object.__getattribute__(self, "_make")()
            object.__setattr__(self, "_real", real)
        return real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._console(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._console(), name, value)

    def __repr__(self) -> str:
        return repr(self._console())


def _stdout_console() -> Console:
    from rich.console import Console  # lazy: keeps --help fast

    return Console(highlight=False)


def _stderr_console() -> Console:
    from rich.console import Console  # lazy: keeps --help fast

    return Console(stderr=True, highlight=False, soft_wrap=True)  # one message, one line


def _real(lazy: Console) -> Console:
    """The Console behind a lazy one, for rich APIs that keep the console they are given."""
    obj: object = lazy
    return obj._console() if isinstance(obj, _LazyConsole) else lazy


console = cast("Console", _LazyConsole(_stdout_console))
err_console = cast("Console", _LazyConsole(_stderr_console))

#: a piece of a result line: plain text, a styled ``(text, style)`` pair, or a Text
Part: TypeAlias = "str | Text | tuple[str, str]"


def result_line(*parts: Part, err: bool = False) -> None:
    """Print one line whole: never wrapped at the terminal width, never read as markup.

    ``parts`` are joined as they are; strings are literal text (``[bold]`` stays
    ``[bold]``), ``(text, style)`` pairs add colour. ``err`` prints to stderr.
    """
    from rich.text import Text  # lazy: keeps --help fast

    target = err_console if err else console
    target.print(Text.assemble(*parts), soft_wrap=True, markup=False, highlight=False)


def error_line(message: str) -> None:
    """Print ``error: <message>`` on stderr as one unwrapped line (message taken literally)."""
    result_line(("error:", "red"), " ", message, err=True)


def print_table(table: Table) -> None:
    """Print a table, made wider than the terminal if that is what keeps every word whole.

    Cells may wrap at spaces, but a path, id, hash or URL (one long word) is never split.
    """
    from rich.measure import Measurement  # lazy: keeps --help fast

    unbounded = console.options.update_width(10_000)  # measure() is capped at the width
    needed = Measurement.get(_real(console), unbounded, table)
    if needed.minimum > console.width:
        # rich shrinks columns below their longest word once it must squeeze at all, so
        # the table gets its natural width (and print(width=…) is capped at the terminal's)
        width = console.width
        console.width = needed.maximum
        try:
            console.print(table, crop=False)
        finally:
            console.width = width
    else:
        console.print(table)


_CSV_FIELDS = CSV_FIELDS
_RESULT_STYLE = {"success": "green", "failure": "bold red", "partial": "yellow"}


def _get(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _csv_cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _write_csv(entries: Sequence[dict[str, Any]], out: IO[str]) -> None:
    """Entries (a page: the CLI prints what it was given) through the one CSV writer."""
    import polars as pl  # lazy: polars costs start-up time of every command

    from auditlens.export.writers import write_csv  # lazy: only --format csv needs the writer

    frame = pl.DataFrame(
        {f: [_csv_cell(_get(e, f)) for e in entries] for f in _CSV_FIELDS},
        schema=dict.fromkeys(_CSV_FIELDS, pl.Utf8),
    )
    buf = io.BytesIO()
    write_csv(frame, buf)  # formulas neutralised and cells quoted there, as in exports
    out.write(buf.getvalue().decode())


def print_entries(entries: Sequence[dict[str, Any]], fmt: str, *, title: str | None = None) -> None:
    """Write entries to standard output in ``fmt``."""
    out = sys.stdout
    if fmt == "json":
        out.write(orjson.dumps(list(entries), option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "jsonl":
        for e in entries:
            out.write(orjson.dumps(e).decode() + "\n")
    elif fmt == "csv":
        _write_csv(entries, out)
    elif console.width < _NARROW:
        _print_entries_stacked(entries, title)
    else:
        console.print(entries_table(entries, title=title))


#: below this width a table of entries cannot show its columns: one entry per two lines
_NARROW = 80


def _print_entries_stacked(entries: Sequence[dict[str, Any]], title: str | None) -> None:
    """Narrow terminals: time, action and result, then actor and resource, each line whole."""
    if title:
        result_line((title, "bold"))
    for e in entries:
        res = e.get("resource") or {}
        actor = e["actor"].get("email") or e["actor"].get("user_id") or e["actor"]["type"]
        resource = f" → {res.get('type')}: {res.get('name') or res.get('id')}" if res else ""
        stamp = e["timestamp"].replace("T", " ")[:16]
        result_line(f"{stamp}  {e['action']}  ", (e["result"], _RESULT_STYLE.get(e["result"], "")))
        result_line(f"  {actor}{resource}")


def entries_table(
    entries: Iterable[dict[str, Any]], *, title: str | None = None, width: int | None = None
) -> Table:
    """A rich table of entries sized for the terminal (narrow terminals drop ip and id)."""
    from rich.table import Table  # lazy: keeps --help fast
    from rich.text import Text  # lazy: rich only when output is rendered

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


def render_entry(entry: dict[str, Any]) -> Text:
    """Every field of one entry, one ``name  value`` line each (print it with :func:`result_line`).

    Values are literal text, ids and hashes are never split; the details JSON
    continues on indented lines.
    """
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
    from rich.text import Text  # lazy: keeps --help fast

    pad = max(map(len, flat)) + 2
    text = Text()
    for i, (k, v) in enumerate(flat.items()):
        if i:
            text.append("\n")
        text.append(k.ljust(pad) if v else k, style="bold")
        text.append(str(v).replace("\n", "\n" + " " * pad))
    return text
