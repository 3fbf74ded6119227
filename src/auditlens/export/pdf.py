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

import warnings
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, select_autoescape

from auditlens import __version__
from auditlens.errors import ConfigError

__all__ = ["MAX_PDF_ROWS", "fetch_inside_only", "render_html", "render_pdf", "write_pdf"]

MAX_PDF_ROWS = 20_000


def _template(name: str = "export_table.html") -> str:
    from importlib.resources import files

    return files("auditlens").joinpath(f"templates/{name}").read_text(encoding="utf-8")


_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_html(
    rows: list[dict[str, Any]],
    fields: list[str],
    meta: dict[str, Any],
    title: str = "Audit log export",
    *,
    template: str = "export_table.html",
    **context: Any,
) -> str:
    """The escaped HTML of the report (``template``: another file of ``auditlens/templates``,
    given ``context`` as extra variables — the subject access PDF uses its own)."""

    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _ENV.from_string(_template(template)).render(
        title=title,
        rows=rows,
        fields=fields,
        meta=meta,
        generated=generated,
        version=__version__,
        **context,
    )


def fetch_inside_only(url: str, *args: Any, **kwargs: Any) -> Any:
    """weasyprint's URL fetcher for every auditlens PDF: ``data:`` URLs (content inside the
    document, e.g. a chart's raster) load; every other URL is refused."""
    if url.startswith("data:"):
        from weasyprint import (
            default_url_fetcher,
        )  # lazy: weasyprint (~1 s) only when a PDF is written

        return default_url_fetcher(url, *args, **kwargs)
    raise ValueError(
        f"auditlens PDFs load nothing from outside the document (refused {url[:60]!r})"
    )


def write_pdf(html: str) -> bytes:
    """HTML → PDF bytes through weasyprint, with :func:`fetch_inside_only`."""
    try:
        import weasyprint  # lazy: weasyprint (~1 s) only when a PDF is written
    except ImportError:
        raise ConfigError("PDF output needs weasyprint: pip install 'auditlens[reports]'") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fontTools / weasyprint notices about fonts
        pdf: bytes = weasyprint.HTML(string=html, url_fetcher=fetch_inside_only).write_pdf()
    return pdf


def render_pdf(
    rows: list[dict[str, Any]],
    fields: list[str],
    meta: dict[str, Any],
    title: str = "Audit log export",
    *,
    template: str = "export_table.html",
    **context: Any,
) -> bytes:
    """The PDF bytes of the report (``template`` and ``context``: see :func:`render_html`)."""
    if len(rows) > MAX_PDF_ROWS:
        raise ConfigError(
            f"{len(rows):,} entries are too many for a readable PDF (limit {MAX_PDF_ROWS:,}); "
            "narrow the query or export CSV, JSON Lines or Parquet"
        )
    return write_pdf(render_html(rows, fields, meta, title, template=template, **context))
