"""Alert commands: check (backtest), watch (live), status, retry."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

import auditlens as al
from auditlens import alerts
from auditlens.cli.app import app, handle_errors
from auditlens.cli.commands import Db
from auditlens.cli.output import console, err_console

alerts_app = typer.Typer(
    help="Alert rules: backtest, watch live, delivery status.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")

Rules = Annotated[Path, typer.Argument(help="YAML rules file.")]


def _load(path: Path) -> list[alerts.Rule]:
    import warnings

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("ignore", alerts.AlertRuleWarning)
        ruleset = alerts.load_rules(path)
    for note in ruleset.warnings:
        err_console.print(Text(f"warning: {note}", style="yellow"))
    return ruleset.rules


def _print_alerts(found: list[alerts.Alert]) -> None:
    style = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
    for a in found:
        line = Text(f"{a.severity.upper():8} ", style=style.get(a.severity, ""))
        line.append(f"{a.window_start:%Y-%m-%d %H:%M}–{a.window_end:%H:%M} UTC  ")
        line.append(a.summary)
        console.print(line, soft_wrap=True)


@alerts_app.command("check")
@handle_errors
def check_cmd(
    rules: Rules,
    db: Db = None,
    since: Annotated[
        str, typer.Option(help="How far back: a duration (24h, 7d) or a date.")
    ] = "24h",
    notify: Annotated[
        bool, typer.Option(help="Also send what fires (recorded, sent once).")
    ] = False,
) -> None:
    """Evaluate the rules over history and print what would fire."""
    parsed = _load(rules)
    with al.open_store(db) as store:
        found = alerts.check(store, parsed, since=since)
        if notify:
            alerts.notify(store, found, parsed)
    console.print(f"{len(found)} alert(s) from {len(parsed)} rule(s) since {since}")
    _print_alerts(found)


@alerts_app.command("watch")
@handle_errors
def watch_cmd(
    rules: Rules,
    db: Db = None,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 1.0,
) -> None:
    """Follow new entries and notify when a rule fires (Ctrl-C to stop)."""
    parsed = _load(rules)
    stop = threading.Event()
    console.print(f"watching with {len(parsed)} rule(s); Ctrl-C to stop")
    with al.open_store(db) as store:
        try:
            alerts.watch(
                store,
                parsed,
                poll_interval=interval,
                stop=stop,
                on_alert=lambda a: console.print(
                    Text(f"ALERT {a.severity}: {a.summary}", style="bold red")
                ),
            )
        except KeyboardInterrupt:
            stop.set()


@alerts_app.command("status")
@handle_errors
def status_cmd(db: Db = None) -> None:
    """Deliveries: what was sent, what failed and will be retried."""
    with al.open_store(db) as store:
        rows = alerts.deliveries(store)
    t = Table(header_style="bold")
    for col in ("alert", "rule", "channel", "target", "status", "attempts", "last error"):
        t.add_column(col)
    for d in rows:
        t.add_row(
            d.alert_id[:10],
            Text(d.rule),
            d.channel,
            Text(d.target),
            d.status,
            str(d.attempts),
            Text(d.last_error or ""),
        )
    console.print(t)


@alerts_app.command("retry")
@handle_errors
def retry_cmd(db: Db = None) -> None:
    """Send every pending or failed delivery now."""
    with al.open_store(db) as store:
        n = alerts.retry_pending(store, force=True)
    console.print(f"{n} delivery(ies) sent")
