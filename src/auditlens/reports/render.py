"""Report output: one jinja2 template for the paged PDF (weasyprint) and the interactive HTML.

Entry fields are attacker-controlled, so the environment autoescapes everything; the
only markup marked safe is what plotly and kaleido produce from numbers and labels
(labels in SVG are escaped by plotly). weasyprint may fetch nothing outside the
document: PDFs go through :func:`auditlens.export.pdf.write_pdf`, whose URL fetcher
accepts ``data:`` URLs (charts embed their rasters so) and refuses every other URL.

Charts become SVG through kaleido, which drives a headless Chromium; one browser
session serves the whole report (starting one per chart costs seconds each). When no
Chromium is available the report still renders and says which charts are missing.

Example:
    >>> import re
    >>> _safe_id("Art. 5(1)(f)")
    'req-art-5-1-f'
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from auditlens.resources import templates_dir

if TYPE_CHECKING:
    from auditlens.reports.report import Report

__all__ = ["chart_svgs", "render_html", "render_pdf"]

CHART_WIDTH, CHART_HEIGHT = 900, 380
#: exceptions printed per check; the rest are named in the results JSON
MAX_EXCEPTIONS = 25


def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )


def _safe_id(text: str) -> str:
    return "req-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def chart_svgs(figures: list[Any]) -> tuple[list[str | None], str | None]:
    """SVG text of each figure through one kaleido browser session.

    Returns the SVGs (None where a chart failed) and a note saying why charts are
    missing, if any are.
    """
    if not figures:
        return [], None
    try:
        import kaleido
    except ImportError:
        return [None] * len(figures), "Charts are missing: kaleido is not installed."
    out: list[str | None] = []
    note = None
    with _quiet():
        try:
            kaleido.start_sync_server(silence_warnings=True)
        except Exception as exc:  # no browser: say so in the report
            return [None] * len(figures), f"Charts are missing: no Chromium for kaleido ({exc})."
        try:
            for fig in figures:
                try:
                    svg = fig.to_image(format="svg", width=CHART_WIDTH, height=CHART_HEIGHT)
                    out.append(svg.decode("utf-8") if isinstance(svg, bytes) else str(svg))
                except Exception as exc:
                    out.append(None)
                    note = f"Some charts are missing: {type(exc).__name__}: {exc}"
        finally:
            kaleido.stop_sync_server(silence_warnings=True)
    return out, note


def _fmt_period(r: Report) -> str:
    last = r.end - timedelta(milliseconds=1)
    return f"{r.start:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} UTC"


def _key_figures(r: Report) -> list[tuple[str, str]]:
    wanted = [
        ("activity", "entries", "Entries in the period"),
        ("activity", "actors", "Distinct actors"),
        ("authentication", "failed_logins", "Failed sign-ins"),
        ("privileged_actions", "privileged_actions", "Privileged actions"),
        ("role_changes", "role_changes", "Role changes"),
        ("change_management", "changes", "Configuration changes"),
        ("findings", "findings", "Detector findings"),
        ("findings", "unhandled_high_findings", "High/critical findings without response"),
        ("log_integrity", "integrity_problems", "Chain integrity problems"),
    ]
    rows = [("Entries in the period", f"{r.provenance['rows']:,}")]
    for ev, metric, label in wanted[1:]:
        if ev in r.evidence and r.evidence[ev].metrics.get(metric) is not None:
            value = r.evidence[ev].metrics[metric]
            rows.append((label, f"{value:,}" if isinstance(value, int) else str(value)))
    return rows


def _exception_rows(frame: Any) -> list[list[str]]:
    """The first :data:`MAX_EXCEPTIONS` exceptions as text cells."""
    import polars as pl

    shown = frame.head(MAX_EXCEPTIONS).select(
        "audit_id",
        pl.col("seq").cast(pl.Utf8),
        pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M:%S"),
        "local_time",
        "actor",
        "deviation",
    )
    return [["" if v is None else str(v) for v in row] for row in shown.iter_rows()]


def _detector_rows(config: dict[str, Any]) -> list[tuple[str, str]]:
    import json

    rows = []
    for name, params in sorted(config.items()):
        if isinstance(params, dict):
            for k, v in sorted(params.items()):
                rows.append((f"{name}.{k}", json.dumps(v, sort_keys=True, default=str)))
        else:
            rows.append((name, json.dumps(params, default=str)))
    return rows or [("(all detectors)", "defaults")]


def _context(r: Report, charts: dict[str, Any], note: str | None) -> dict[str, Any]:
    from auditlens import __version__
    from auditlens.reports.report import STATUS_LABELS

    first_use: dict[str, tuple[str, int]] = {}
    for res in r.requirements:
        for i, c in enumerate(res.checks):
            first_use.setdefault(c.check.evidence, (res.requirement.id, i))
    chart_keys = {
        name: [f"{name}:{i}" for i in range(len(ev.charts))] for name, ev in r.evidence.items()
    }
    p = r.provenance
    provenance_rows = [
        ("source", p["source"]),
        ("backend", p["backend"]),
        *[(f"parameter {k}", v) for k, v in p["parameters"].items()],
        ("extracted at", p["extracted_at"]),
        ("rows", f"{p['rows']:,}"),
        ("chain positions", "–".join(map(str, p["seq_range"])) if p["seq_range"] else "none"),
        ("input SHA-256", p["input_sha256"]),
        ("framework file", p["framework_file"] or "given as an object"),
        ("framework SHA-256", p["framework_sha256"] or "n/a"),
        ("auditlens", p["auditlens_version"]),
    ]
    return {
        "r": r,
        # our own stylesheet, shipped with the package
        "css": Markup((templates_dir() / "report.css").read_text(encoding="utf-8")),  # noqa: S704
        "version": __version__,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "period": _fmt_period(r),
        "anchors": {res.requirement.id: _safe_id(res.requirement.id) for res in r.requirements},
        "first_use": first_use,
        "chart_keys": chart_keys,
        "charts": charts,
        "chart_note": note,
        "key_figures": _key_figures(r),
        "provenance_rows": provenance_rows,
        "labels": STATUS_LABELS,
        "populations": {name: r.population_json(name) for name in r.evidence},
        "pop_files": {
            name: str(r.population_file(name))
            for name, ev in r.evidence.items()
            if ev.population is not None and r.results_path is not None
        },
        "exception_rows": _exception_rows,
        "results_file": r.results_path.name
        if r.results_path is not None
        else "the results JSON (Report.save_json)",
        "detector_rows": _detector_rows(p.get("detectors") or {}),
    }


def _figures(r: Report) -> dict[str, Any]:
    return {f"{n}:{i}": fig for n, ev in r.evidence.items() for i, fig in enumerate(ev.charts)}


def render_html(r: Report, *, interactive: bool = True) -> str:
    """The report as HTML: interactive plotly charts (plotly.js inlined once) or static SVG."""
    figures = _figures(r)
    charts: dict[str, Any] = {}
    note = None
    if interactive:
        for i, (key, fig) in enumerate(figures.items()):
            html = fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"chart-{i}")
            charts[key] = Markup(html)  # noqa: S704 - plotly's own markup, labels escaped
    else:
        svgs, note = chart_svgs(list(figures.values()))
        for key, svg in zip(figures, svgs, strict=True):
            charts[key] = Markup(svg) if svg else ""  # noqa: S704 - kaleido's SVG of our figure
    return _env().get_template("report.html.j2").render(**_context(r, charts, note))


def render_pdf(r: Report) -> bytes:
    """The paged PDF: cover, contents with page numbers, summary, requirements, appendix."""
    from auditlens.export.pdf import write_pdf

    return write_pdf(render_html(r, interactive=False))
