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
from auditlens.cli.commands import Db, Query
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


def _zones(path: Path | None) -> dict[str, str]:
    """Time zones from a JSON file: {"email": "Zone"} or an incidents.json from `auditlens demo`."""
    if path is None:
        return {}
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise al.ConfigError(f"{path}: cannot read time zones ({exc})") from None
    if isinstance(data, dict) and "organizations" in data:
        zones = {}
        for org in data["organizations"]:
            zones[org["organization_id"]] = org["timezone"]
            zones.update({u["email"]: u["timezone"] for u in org.get("users", [])})
        return zones
    if not isinstance(data, dict):
        raise al.ConfigError(
            f"{path}: expected a JSON object mapping emails or org ids to time zones"
        )
    return {str(k): str(v) for k, v in data.items()}


@app.command("detect")
@handle_errors
def detect_cmd(
    query: Query = "",
    db: Db = None,
    detector: Annotated[str, typer.Option(help="A detector name, or all.")] = "all",
    since: Annotated[str, typer.Option(help="How far back, e.g. 24h, 30d.")] = "30d",
    timezones: Annotated[
        Path | None,
        typer.Option(help="JSON of email/org → IANA time zone (or a demo incidents.json)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when anything was found (for cron).")
    ] = False,
) -> None:
    """Run the security detectors and list their findings."""
    import json

    config = {"off_hours": {"timezones": _zones(timezones)}} if timezones else None
    with al.open_store(db) as store:
        if detector != "all" and config is not None and detector != "off_hours":
            config = None
        params = (config or {}).get(detector, {}) if detector != "all" else config
        findings = store.detect(detector, query or None, config=params, last=since)
    rows = findings.sort(["window_start"]).to_dicts()
    if fmt == "json":
        for r in rows:
            r["window_start"], r["window_end"] = (
                r["window_start"].isoformat(),
                r["window_end"].isoformat(),
            )
        typer.echo(json.dumps(rows, indent=2))
    else:
        style = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
        console.print(f"{len(rows)} finding(s) over the last {since}")
        for r in rows:
            line = Text(f"{r['severity'].upper():8} ", style=style.get(r["severity"], ""))
            line.append(f"{r['window_start']:%Y-%m-%d %H:%M} UTC  {r['detector']:20} ")
            line.append(r["summary"])
            console.print(line, soft_wrap=True)
    if rows and exit_code:
        raise typer.Exit(1)
