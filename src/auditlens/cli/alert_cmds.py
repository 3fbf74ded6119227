"""Alert commands: check (backtest), watch (live), status, retry."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

import auditlens as al
from auditlens.cli.app import app, handle_errors
from auditlens.cli.commands import Db, Query
from auditlens.cli.output import print_table, result_line

if TYPE_CHECKING:
    import polars as pl

    from auditlens import alerts
    from auditlens.query.keywords import FilterKeywords

alerts_app = typer.Typer(
    help="Alert rules: backtest, watch live, delivery status.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")

Rules = Annotated[
    Path | None, typer.Argument(help="YAML rules file (optional with --sigma).", show_default=False)
]
SigmaRules = Annotated[
    list[Path] | None,
    typer.Option(
        "--sigma", help="Sigma rule file or folder (repeatable), e.g. rules/.", show_default=False
    ),
]


def _load(path: Path | None, sigma: list[Path] | None = None) -> list[alerts.Rule]:
    import warnings

    from auditlens import alerts  # lazy: loads polars and SQLAlchemy

    if path is None and not sigma:
        raise al.RuleError("<command line>", None, "rules", "give a rules file, --sigma, or both")
    rules: list[alerts.Rule] = []
    if path is not None:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("ignore", alerts.AlertRuleWarning)
            ruleset = alerts.load_rules(path)
        for note in ruleset.warnings:
            result_line((f"warning: {note}", "yellow"), err=True)
        rules.extend(ruleset.rules)
    if sigma:
        from auditlens.sigma import alert_rules  # lazy: pySigma only with --sigma

        rules.extend(alert_rules(list(sigma)))
    return rules


def _print_alerts(found: list[alerts.Alert]) -> None:
    from rich.text import Text  # lazy: keeps --help fast

    style = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
    for a in found:
        line = Text(f"{a.severity.upper():8} ", style=style.get(a.severity, ""))
        line.append(f"{a.window_start:%Y-%m-%d %H:%M}–{a.window_end:%H:%M} UTC  ")
        line.append(a.summary)
        result_line(line)


@alerts_app.command("check")
@handle_errors
def check_cmd(
    rules: Rules = None,
    db: Db = None,
    sigma: SigmaRules = None,
    since: Annotated[
        str, typer.Option(help="How far back: a duration (24h, 7d) or a date.")
    ] = "24h",
    notify: Annotated[
        bool, typer.Option(help="Also send what fires (recorded, sent once).")
    ] = False,
) -> None:
    """Evaluate the rules over history and print what would fire."""
    from auditlens import alerts  # lazy: loads polars and SQLAlchemy

    parsed = _load(rules, sigma)
    with al.open_store(db) as store:
        found = alerts.check(store, parsed, since=since)
        if notify:
            alerts.notify(store, found, parsed)
    result_line(f"{len(found)} alert(s) from {len(parsed)} rule(s) since {since}")
    _print_alerts(found)


@alerts_app.command("watch")
@handle_errors
def watch_cmd(
    rules: Rules = None,
    db: Db = None,
    sigma: SigmaRules = None,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 1.0,
) -> None:
    """Follow new entries and notify when a rule fires (Ctrl-C to stop)."""
    from auditlens import alerts  # lazy: loads polars and SQLAlchemy

    parsed = _load(rules, sigma)
    stop = threading.Event()
    result_line(f"watching with {len(parsed)} rule(s); Ctrl-C to stop")
    with al.open_store(db) as store:
        try:
            alerts.watch(
                store,
                parsed,
                poll_interval=interval,
                stop=stop,
                on_alert=lambda a: result_line((f"ALERT {a.severity}: {a.summary}", "bold red")),
            )
        except KeyboardInterrupt:
            stop.set()


@alerts_app.command("status")
@handle_errors
def status_cmd(db: Db = None) -> None:
    """Deliveries: what was sent, what failed and will be retried."""
    from auditlens import alerts  # lazy: loads polars and SQLAlchemy

    with al.open_store(db) as store:
        rows = alerts.deliveries(store)
    from rich.table import Table  # lazy: keeps --help fast
    from rich.text import Text  # lazy: rich only when output is rendered

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
    print_table(t)


@alerts_app.command("retry")
@handle_errors
def retry_cmd(db: Db = None) -> None:
    """Send every pending or failed delivery now."""
    from auditlens import alerts  # lazy: loads polars and SQLAlchemy

    with al.open_store(db) as store:
        n = alerts.retry_pending(store, force=True)
    result_line(f"{n} delivery(ies) sent")


def _zones(path: Path | None) -> dict[str, str]:
    """Time-zone overrides from a JSON file: ``{"email, user id or org id": "Zone"}``."""
    if path is None:
        return {}
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise al.ConfigError(f"{path}: cannot read time zones ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise al.ConfigError(
            f"{path}: expected a JSON object mapping emails or org ids to time zones"
        )
    return {str(k): v for k, v in data.items()}


def _q(query: str) -> str:
    return f": {query}" if query else ", every entry"


def _params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--param off_hours.hours=09:00-17:00`` → ``{"off_hours": {"hours": "09:00-17:00"}}``.

    Values are read as JSON when they parse (numbers, true/false, lists), else as text.
    """
    import json

    from auditlens.detect import DETECTORS  # lazy: CLI start-up stays light

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        name, dot, param = key.strip().partition(".")
        if not sep or not dot or not param:
            raise al.FilterError(f"--param {item!r}: expected DETECTOR.PARAMETER=VALUE")
        if name not in DETECTORS:
            raise al.DetectorError(
                f"--param {item!r}: unknown detector {name!r}; known: {', '.join(DETECTORS)}"
            )
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(name, {})[param] = value
    return out


@app.command("detect")
@handle_errors
def detect_cmd(
    query: Query = "",
    db: Db = None,
    detector: Annotated[str, typer.Option(help="A detector name, or all.")] = "all",
    since: Annotated[
        str | None,
        typer.Option(help="Only the last …, e.g. 24h, 30d (default: all the query selects)."),
    ] = None,
    timezones: Annotated[
        Path | None,
        typer.Option(help="JSON of email/org → IANA time zone, overriding the stored context."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", help="A detector parameter, e.g. off_hours.hours=09:00-17:00 (repeatable)."
        ),
    ] = None,
    no_context: Annotated[
        bool,
        typer.Option("--no-context", help="Ignore the stored organization context (all UTC)."),
    ] = False,
    allowlist: Annotated[
        Path | None,
        typer.Option(
            help="YAML of known automation (actors, agents, networks): its findings are "
            "downgraded or suppressed, with the reason shown."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="table, json or ocsf (Detection Finding JSON Lines)."),
    ] = "table",
    sigma: SigmaRules = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when anything was found (for cron).")
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="polars (the store) or spark (the detectors ported to Spark, on --lake)."
        ),
    ] = "polars",
    lake: Annotated[
        Path | None,
        typer.Option(
            help="With --engine spark: the lake `auditlens lake sync` wrote.", show_default=False
        ),
    ] = None,
    spark_remote: Annotated[
        str | None,
        typer.Option(
            "--spark-remote",
            help="With --engine spark: a Spark Connect server, sc://host:15002 "
            "(default: a local session).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the security detectors (or, with --sigma, Sigma rules) and list their findings.

    Time zones, business hours and workdays come from the stored organization context
    (`auditlens org set`, `auditlens people import`); --timezones and --param override it.
    With --engine spark --lake PATH the ported detectors run on Spark over a lake (a local
    session, or --spark-remote): the same findings, no store needed.
    """

    from auditlens.detect import apply_allowlist, load_allowlist  # lazy: the detectors load polars

    if engine not in ("polars", "spark"):
        raise al.ConfigError(f"--engine must be polars or spark, got {engine!r}")
    if engine == "polars" and (lake is not None or spark_remote):
        raise al.ConfigError("--lake and --spark-remote go with --engine spark")
    known = load_allowlist(allowlist) if allowlist is not None else None
    config: dict[str, Any] = _params(param or [])
    zones = _zones(timezones)
    if zones:
        config.setdefault("off_hours", {})["timezones"] = zones
    if detector != "all":
        unknown = set(config) - {detector}
        if unknown:
            raise al.FilterError(
                f"parameters for {', '.join(sorted(unknown))} do not apply to --detector {detector}"
            )
    if engine == "spark":
        findings, covered = _on_spark(
            lake, detector, config, since, spark_remote, query, sigma, known
        )
        if _print_findings(findings, fmt, since, query, covered) and exit_code:
            raise typer.Exit(1)
        return
    if detector != "all":
        config = config.get(detector, {})
    filters: FilterKeywords = {"last": since} if since else {}
    with al.open_store(db) as store:
        if sigma:  # Sigma rules instead of the detectors
            from auditlens.sigma import detect as sigma_detect  # lazy: pySigma only with --sigma

            findings = sigma_detect(store, list(sigma), since=since, where=query or None)
            if known is not None:
                findings = apply_allowlist(
                    findings, store.query(query or None, **filters), known, keep_suppressed=True
                )
        else:
            findings = store.detect(
                detector,
                query or None,
                config=config,
                context=not no_context,
                allowlist=known,
                keep_suppressed=True,
                **filters,
            )
        covered = store.count(query or None, **filters)
    rows = _print_findings(findings, fmt, since, query, covered)
    if rows and exit_code:
        raise typer.Exit(1)


def _on_spark(
    lake: Path | None,
    detector: str,
    config: dict[str, Any],
    since: str | None,
    remote: str | None,
    query: str,
    sigma: list[Path] | None,
    allowlist: object,
) -> tuple[pl.DataFrame, int]:
    """``detect --engine spark``: the ported detectors over a lake, on a Spark session."""
    from auditlens.engines.spark import detect_lake  # lazy: the Spark port (pyspark on demand)
    from auditlens.query.filters import parse_duration  # lazy: CLI start-up stays light

    if lake is None:
        raise al.ConfigError("--engine spark reads a lake: give --lake PATH (auditlens lake sync)")
    refused = [
        name
        for name, given in (
            ("a search query", bool(query)),
            ("--sigma", bool(sigma)),
            ("--allowlist", allowlist is not None),
        )
        if given
    ]
    if refused:
        raise al.ConfigError(f"--engine spark does not take {', '.join(refused)} (not ported yet)")
    return detect_lake(
        lake,
        detector,
        params=config,
        since=parse_duration(since) if since else None,
        remote=remote,
    )


def _print_findings(
    findings: pl.DataFrame, fmt: str, since: str | None, query: str, covered: int
) -> list[dict[str, Any]]:
    """Print findings as a table, JSON or OCSF; returns the rows shown (not suppressed)."""
    import json

    import polars as pl  # lazy: polars costs start-up time of every other command

    hidden = findings["details"].str.json_path_match("$.allowlisted.action") == "suppress"
    suppressed = findings.filter(hidden.fill_null(False))
    rows = findings.filter(~hidden.fill_null(False)).sort(["window_start"]).to_dicts()
    if fmt == "ocsf":
        from auditlens.export.ocsf import findings_to_ocsf  # lazy: py-ocsf-models only for ocsf

        for event in findings_to_ocsf(
            findings.filter(~hidden.fill_null(False)).sort(["window_start"])
        ):
            typer.echo(json.dumps(event))
    elif fmt == "json":
        for r in rows:
            r["window_start"], r["window_end"] = (
                r["window_start"].isoformat(),
                r["window_end"].isoformat(),
            )
        typer.echo(json.dumps(rows, indent=2))
    else:
        from rich.text import Text  # lazy: keeps --help fast

        style = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
        span = f"the last {since}" if since else "the selection"
        result_line(f"{len(rows)} finding(s) in {covered:,} entries ({span}{_q(query)})")
        if suppressed.height:
            rules = (
                suppressed.group_by(pl.col("details").str.json_path_match("$.allowlisted.rule"))
                .len()
                .sort("details")
                .rows()
            )
            result_line(
                f"{suppressed.height} more suppressed by the allow-list ("
                + ", ".join(f"{rule}: {n}" for rule, n in rules)
                + ")"
            )
        for r in rows:
            line = Text(f"{r['severity'].upper():8} ", style=style.get(r["severity"], ""))
            line.append(f"{r['window_start']:%Y-%m-%d %H:%M} UTC  {r['detector']:20} ")
            line.append(r["summary"])
            result_line(line)
    return rows
