"""Report output: one jinja2 template for the paged PDF (weasyprint) and the interactive HTML.

Entry fields are attacker-controlled, so the environment autoescapes everything; the
only markup marked safe is what plotly and kaleido produce from numbers and labels
(labels in SVG are escaped by plotly). weasyprint may fetch nothing outside the
document: PDFs go through :func:`auditlens.export.pdf.write_pdf`, whose URL fetcher
accepts ``data:`` URLs (charts embed their rasters so) and refuses every other URL.

Charts become SVG through kaleido, which drives a headless Chromium; one browser
session serves the whole report (starting one per chart costs seconds each). When no
Chromium is available the report still renders and says which charts are missing.

Table cells go through :func:`cell`: long tokens may break only at sensible points —
an id (UUID) never breaks, a hash only between groups of 16 characters, an e-mail address
before its ``@``, a dotted name after a dot.

Example:
    >>> import re
    >>> _safe_id("Art. 5(1)(f)")
    'req-art-5-1-f'
    >>> str(cell("ana.lopez@acme.example"))
    'ana.<wbr>lopez<wbr>@acme.<wbr>example'
    >>> str(cell("<b>"))
    '&lt;b&gt;'
    >>> str(cell("enabled: True → False; url: a → b"))
    'enabled: yes → no; url: a → b'
    >>> metric_value("retention_days", -1), metric_value("self", True)
    ('unlimited', 'yes')
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from auditlens import __version__
from auditlens.export.pdf import write_pdf
from auditlens.reports.report import STATUS_LABELS
from auditlens.resources import templates_dir

if TYPE_CHECKING:
    from auditlens.reports.report import Report

__all__ = ["cell", "chart_svgs", "metric_value", "render_html", "render_pdf"]

CHART_WIDTH, CHART_HEIGHT = 900, 380
#: exceptions printed per check; the rest are named in the results JSON
MAX_EXCEPTIONS = 25


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["cell"] = cell
    env.filters["header"] = header
    env.filters["metric"] = lambda item: metric_value(*item)
    return env


_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_TOKEN = re.compile(r"\S{13,}")
#: an e-mail address, a dotted name or a path: breakable after a dot, before an @
_NAME = re.compile(r"[\w.@,;:/+-]+")
#: metrics where a negative value means "no limit"
_UNLIMITED = {"retention_days"}


def _token(tok: str) -> Markup:
    """One long token as markup with break opportunities (``<wbr>``) where a reader
    expects them; ids in a no-wrap span."""
    if _UUID.fullmatch(tok):
        return Markup('<span class="id">%s</span>') % tok
    if _HEX.fullmatch(tok):
        groups = [tok[i : i + 16] for i in range(0, len(tok), 16)]
        return Markup("<wbr>").join(groups)
    if not _NAME.fullmatch(tok):  # not an address or a dotted name: leave it whole
        return Markup("%s") % tok
    parts = re.split(r"(?<=[./,;])|(?=@)", tok)
    return Markup("<wbr>").join(p for p in parts if p)


#: a Python flag on either side of a change ("enabled: True → False")
_FLAG_IN_CHANGE = re.compile(r"(?<=: )(True|False)(?= →)|(?<=→ )(True|False)(?=;|$)")


def cell(value: Any) -> Markup:
    """A table cell's text, escaped, breakable only at sensible points (see the module);
    flags read yes/no, also on either side of a change (``enabled: True → False``)."""
    if isinstance(value, bool):
        return escape("yes" if value else "no")
    text = "" if value is None else str(value)
    text = _FLAG_IN_CHANGE.sub(lambda m: "yes" if m.group() == "True" else "no", text)
    out: list[Markup | str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(text[pos : m.start()])
        out.append(_token(m.group()))
        pos = m.end()
    out.append(text[pos:])
    return Markup("").join(out)


def header(column: str) -> str:
    """A column name as a header: words, not an identifier (``hours_to_remove`` →
    ``hours to remove``), so it wraps within its column instead of running over the next."""
    return column.replace("_", " ")


def metric_value(name: str, value: Any) -> str:
    """A metric as a person reads it: yes/no, "unlimited" for a retention of -1, "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name in _UNLIMITED and isinstance(value, int | float) and value < 0:
        return "unlimited"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


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
        import kaleido  # lazy: kaleido only when a chart is rendered
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
    import polars as pl  # lazy: polars costs ~0.2 s at start-up; only this path needs it

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
    """What the template needs; ``charts`` maps the keys of :func:`_figures` to markup."""

    first_use: dict[str, tuple[str, int]] = {}
    for res in r.requirements:
        for i, c in enumerate(res.checks):
            first_use.setdefault(c.check.evidence, (res.requirement.id, i))
    chart_keys = {
        name: [f"{name}:{i}" for i in range(len(ev.charts)) if f"{name}:{i}" in charts]
        for name, ev in r.evidence.items()
    }
    overview_keys = [k for k in charts if k.startswith("overview:")]
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
        "overview_keys": overview_keys,
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
    """Chart key → figure: ``overview:i`` for the report's period charts, ``<evidence>:i``
    for the evidence charts that do not repeat one of them."""
    overview = r.overview_figures()
    titles = {_title(f) for f in overview}
    out = {f"overview:{i}": fig for i, fig in enumerate(overview)}
    for n, ev in r.evidence.items():
        for i, fig in enumerate(ev.charts):
            if _title(fig) not in titles:
                out[f"{n}:{i}"] = fig
    return out


def _title(fig: Any) -> str:
    text = fig.layout.title.text
    return str(text) if text else ""


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

    return write_pdf(render_html(r, interactive=False))
