"""PDF export: a paginated, readable table of entries for compliance folders (weasyprint).

The page carries the query and filters used, the counts, the time range, the generation
time and "page N of M" in a running footer. Entry fields are attacker-controlled, so
the template autoescapes everything, and weasyprint may not fetch anything outside the
document (its URL fetcher refuses every URL). A PDF is built in memory, so exports are
limited to :data:`MAX_PDF_ROWS` rows; use CSV, JSON Lines or Parquet for more.

Example:
    >>> html = render_html([{"timestamp": "2025-01-20T10:30:00.000Z", "actor.email": "<b>x</b>"}],
    ...                    ["timestamp", "actor.email"], {"query": "all", "rows": 1})
    >>> "&lt;b&gt;x&lt;/b&gt;" in html
    True
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, select_autoescape

from auditlens.errors import ConfigError

__all__ = ["MAX_PDF_ROWS", "render_html", "render_pdf"]

MAX_PDF_ROWS = 20_000


def _template() -> str:
    from importlib.resources import files

    return files("auditlens").joinpath("templates/export_table.html").read_text(encoding="utf-8")


_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_html(
    rows: list[dict[str, Any]],
    fields: list[str],
    meta: dict[str, Any],
    title: str = "Audit log export",
) -> str:
    """The escaped HTML of the report."""
    from auditlens import __version__

    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _ENV.from_string(_template()).render(
        title=title, rows=rows, fields=fields, meta=meta, generated=generated, version=__version__
    )


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError(
        f"auditlens PDFs load nothing from outside the document (refused {url[:60]!r})"
    )


def render_pdf(
    rows: list[dict[str, Any]],
    fields: list[str],
    meta: dict[str, Any],
    title: str = "Audit log export",
) -> bytes:
    """The PDF bytes of the report."""
    try:
        import weasyprint
    except ImportError:
        raise ConfigError("PDF output needs weasyprint: pip install 'auditlens[reports]'") from None
    if len(rows) > MAX_PDF_ROWS:
        raise ConfigError(
            f"{len(rows):,} entries are too many for a readable PDF (limit {MAX_PDF_ROWS:,}); "
            "narrow the query or export CSV, JSON Lines or Parquet"
        )
    html = render_html(rows, fields, meta, title)
    doc = weasyprint.HTML(string=html, url_fetcher=_no_fetch)
    pdf: bytes = doc.write_pdf()
    return pdf
