"""``auditlens report``: a compliance report PDF, made by running the notebook with papermill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

import auditlens as al
from auditlens.cli.app import EXIT_PROBLEM, app, handle_errors
from auditlens.cli.commands import Db
from auditlens.cli.output import err_console, result_line
from auditlens.errors import FilterError


def parse_params(items: list[str]) -> dict[str, Any]:
    """``det.key=value`` options as ``{det: {key: value}}`` (value read as JSON, else text).

    Example:
        >>> parse_params(["off_hours.hours=07:00-19:00", "password_spray.min_accounts=4"])
        {'off_hours': {'hours': '07:00-19:00'}, 'password_spray': {'min_accounts': 4}}
    """
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        det, dot, key = name.partition(".")
        if not sep or not dot or not det or not key:
            raise FilterError(f"--param {item!r}: use DETECTOR.KEY=VALUE")
        try:
            parsed: Any = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(det, {})[key] = parsed
    return out


@app.command("report")
@handle_errors
def report(
    framework: Annotated[
        str, typer.Argument(help="soc2, iso27001, gdpr, or the path of a framework YAML.")
    ],
    org: Annotated[str | None, typer.Option(help="Organization id (default: the first).")] = None,
    start: Annotated[str | None, typer.Option(help="First day (default: first entry).")] = None,
    end: Annotated[
        str | None, typer.Option(help="Last day, inclusive (default: last entry).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The PDF to write.")] = Path(
        "report.pdf"
    ),
    html: Annotated[
        Path | None, typer.Option(help="Also write the interactive HTML version here.")
    ] = None,
    timeout: Annotated[int, typer.Option(help="Seconds each notebook cell may run.")] = 1800,
    kernel: Annotated[str, typer.Option(help="Jupyter kernel name.")] = "python3",
    check: Annotated[
        bool, typer.Option("--check", help="Exit with 1 when a requirement fails.")
    ] = False,
    period: Annotated[
        str | None,
        typer.Option(help="last-month (the last complete month, UTC) or YYYY-MM."),
    ] = None,
    allow_open_period: Annotated[
        bool,
        typer.Option(
            "--allow-open-period",
            help="Accept a period that has not ended (its checks cannot pass; labelled).",
        ),
    ] = False,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Detector parameter DETECTOR.KEY=VALUE (VALUE as JSON, else text); repeatable.",
        ),
    ] = None,
    key: Annotated[
        list[Path] | None,
        typer.Option(
            "--key",
            help="A verifying key you hold (.vkey); repeatable. Default: the keys the store "
            "recorded (the report says where its keys came from).",
        ),
    ] = None,
    package: Annotated[
        Path | None,
        typer.Option(
            "--package",
            help="Also write the auditor's evidence package (zip): report, populations, "
            "exceptions, inclusion proofs, manifest. Check it with `auditlens verify-bundle`.",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="polars: the period loaded from the store; spark: its entries read from "
            "--lake by Spark (the same results; docs/SCALE.md).",
        ),
    ] = "polars",
    lake: Annotated[
        Path | None,
        typer.Option(help="The lake (`auditlens lake sync --to`) that --engine spark reads."),
    ] = None,
    spark_remote: Annotated[
        str | None,
        typer.Option(
            "--spark-remote",
            help="For --engine spark: sc://host:port (Spark Connect), local (PySpark "
            "local[2]) or duckdb (SQLFrame, no JVM). Default: local if PySpark is installed, "
            "else duckdb.",
        ),
    ] = None,
    db: Db = None,
) -> None:
    """Assess a framework on one organization's period and write the PDF report.

    Runs notebooks/compliance_report.ipynb with papermill; the executed notebook
    (<out>.ipynb) and the results (<out>.json) are kept beside the PDF. With --package,
    the evidence package is written from them (docs/REPORTS.md). With --engine spark
    --lake PATH, the entries come from the lake through Spark; the store (--db) still
    gives the context, verification, checkpoints and retention, and must match the lake.
    """
    from auditlens.config import absolute_url  # lazy: CLI start-up stays light
    from auditlens.reports.frameworks import (  # lazy: CLI start-up stays light
        BUILTIN,
        load_framework,
    )
    from auditlens.reports.notebook import run_notebook  # lazy: CLI start-up stays light
    from auditlens.reports.report import named_period  # lazy: CLI start-up stays light

    load_framework(framework)  # a bad YAML fails here with its line and field
    if engine not in ("polars", "spark"):
        raise FilterError(f"--engine must be polars or spark, got {engine!r}")
    if engine == "spark" and lake is None:
        raise FilterError("--engine spark reads the entries from a lake: give --lake PATH")
    if engine == "polars" and (lake is not None or spark_remote is not None):
        raise FilterError("--lake and --spark-remote go with --engine spark")
    if period is not None:
        if start or end:
            raise FilterError("give --period or --start/--end, not both")
        start, end = named_period(period)
    detectors = parse_params(param or [])
    if framework.lower() not in BUILTIN:
        framework = str(Path(framework).resolve())
    pdf = out.resolve()
    results = pdf.with_suffix(".json")
    executed = pdf.with_suffix(".ipynb")
    from rich.text import Text  # lazy: keeps --help fast

    with err_console.status(Text(f"running compliance_report.ipynb for {framework} …")):
        run_notebook(
            "compliance_report",
            executed,
            {
                "framework": framework,
                "organization_id": org or "",
                "start": start or "",
                "end": end or "",
                "allow_open_period": allow_open_period,
                "detectors": detectors,
                "keys": [str(k.resolve()) for k in key or []],
                "output_pdf": str(pdf),
                "output_html": str(html.resolve()) if html else "",
                "results_json": str(results),
                "engine": engine,
                "lake": str(lake.resolve()) if lake else "",
                "spark": spark_remote or "",
            },
            store_url=absolute_url(db),
            timeout=timeout,
            kernel_name=kernel,
        )
    summary = json.loads(results.read_text(encoding="utf-8"))
    counts = ", ".join(f"{n} {s}" for s, n in summary["summary"].items() if n)
    result_line(f"{pdf}: {summary['framework']} for {summary['organization_name']} — {counts}")
    result_line(f"executed notebook: {executed}; results: {results}")
    if package is not None:
        _write_package(db, results, pdf, package, key)
    if check and summary["summary"].get("fail"):
        raise typer.Exit(EXIT_PROBLEM)


def _write_package(
    db: str | None, results: Path, pdf: Path, package: Path, keys: list[Path] | None
) -> None:
    """Write the evidence package of the results JSON and say what it holds."""
    from auditlens.reports.package import write_package  # lazy: CLI start-up stays light

    with al.open_store(db) as store:
        res = write_package(
            store, results, package, keys=[str(k) for k in keys or []] or None, pdf=pdf
        )
    result_line(
        f"{res.path}: evidence package, {res.exceptions} exception(s), {res.proven} with an "
        f"inclusion proof; SHA-256 {res.sha256}"
    )
    if res.unproven:
        result_line(
            ("warning:", "yellow"),
            f" {res.unproven} exception(s) have no inclusion proof: no checkpoint covers them "
            "yet; run `auditlens checkpoint` first, then the report again",
            err=True,
        )
    for p in res.verified.problems:
        result_line((f"  {p}", "red"), err=True)
    if not res.verified.ok:
        raise typer.Exit(EXIT_PROBLEM)
