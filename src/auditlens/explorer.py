"""The Jupyter explorer: the product's "Control > Audit Trail" page as an ipywidgets panel.

Date presets (last 24 h, 7 d, 30 d, all, custom range), organization, actor, actor type,
category, resource and result filters, a search bar using the search syntax, a paged results
table, an activity timeline (plotly) and Export (format + fields). Every filter is
turned into one search query (shown above the table) and run by the database; the
timeline and the export follow the same query. A custom range needs both dates, the start
on or before the end: otherwise the panel says so and runs nothing.

The panel is plain Python state plus widgets, so it can be driven without a browser:
set widget values, call :meth:`Explorer.refresh` (what the Search button does) and
read :attr:`Explorer.query` and :attr:`Explorer.frame`.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> panel = al.explore(store)
    >>> panel.category.value = "webhooks"
    >>> panel.result.value = "failure"
    >>> panel.refresh()
    >>> panel.query
    'category:webhooks result:failure'
"""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditlens import plots
from auditlens.context import org_profiles
from auditlens.errors import AuditLensError, ConfigError
from auditlens.export.writers import DEFAULT_FIELDS
from auditlens.query.filters import parse_duration
from auditlens.schema import CATEGORIES

if TYPE_CHECKING:
    from auditlens.facade import AuditStore

__all__ = ["ALL_ORGANIZATIONS", "PRESETS", "Explorer", "explore", "organization_options"]

PRESETS = {"all time": None, "last 24 h": "24h", "last 7 d": "7d", "last 30 d": "30d", "custom": ""}
#: the organization dropdown's value for "no organization filter"
ALL_ORGANIZATIONS = ""
_TABLE_COLUMNS = (
    "timestamp",
    "actor_email",
    "action",
    "resource_type",
    "resource_name",
    "result",
    "ip_address",
)


def _widgets() -> Any:
    try:
        import ipywidgets  # lazy: notebook-only dependency
    except ImportError:
        raise ConfigError(
            "the explorer needs ipywidgets: pip install 'auditlens[notebooks]'"
        ) from None
    return ipywidgets


def _quote(value: str) -> str:
    value = value.strip()
    return f'"{value}"' if any(c in value for c in ' :"()') else value


def _error(message: str) -> str:
    return f"<b style='color:#b00020'>{html.escape(message)}</b>"


def organization_options(store: AuditStore) -> list[tuple[str, str]]:
    """The organization dropdown's (label, value) pairs: all, then each by name and id.

    Names come from the organizations' stored context (``al.context.set_org_profile``);
    an organization without one is shown by its id.
    """

    names = {org: p.name for org, p in org_profiles(store).items() if p.name}
    labelled = [
        (f"{names[org]} ({org})" if org in names else org, org)
        for org in (o["organization_id"] for o in store.organizations())
    ]
    labelled.sort(key=lambda pair: (pair[1] not in names, pair[0].casefold(), pair[1]))
    return [("all organizations", ALL_ORGANIZATIONS), *labelled]


class Explorer:
    """The panel's widgets, its current query and its current page of results."""

    def __init__(
        self,
        store: AuditStore,
        *,
        page_size: int = 50,
        export_dir: str | Path = ".",
        now: datetime | None = None,
    ) -> None:
        w = _widgets()
        self.store = store
        self.page_size = page_size
        self.export_dir = Path(export_dir)
        self._now = now
        self.preset = w.Dropdown(options=list(PRESETS), value="all time", description="Period")
        self.start = w.DatePicker(description="From")
        self.end = w.DatePicker(description="To")
        self.organization = w.Dropdown(
            options=organization_options(store),
            value=ALL_ORGANIZATIONS,
            description="Organization",
            layout=w.Layout(width="60%"),
        )
        self.actor = w.Text(placeholder="email or user id", description="Actor")
        self.actor_type = w.Dropdown(
            options=["any", "user", "service_account", "role", "system"],
            value="any",
            description="Type",
        )
        self.category = w.Dropdown(
            options=["any", *CATEGORIES], value="any", description="Category"
        )
        self.resource = w.Text(placeholder="resource id or name", description="Resource")
        self.result = w.Dropdown(
            options=["any", "success", "failure", "partial"], value="any", description="Result"
        )
        self.search = w.Text(
            placeholder='jane@company.com "Production Webhook" -result:success',
            description="Search",
            continuous_update=False,
            layout=w.Layout(width="60%"),
        )
        self.search_button = w.Button(description="Search", button_style="primary")
        self.prev_button = w.Button(description="◀ Newer", disabled=True)
        self.next_button = w.Button(description="Older ▶", disabled=True)
        self.status = w.HTML()
        self.table = w.HTML()
        self.timeline = w.Output()
        self.export_format = w.Dropdown(
            options=["csv", "json", "jsonl", "parquet", "pdf"], value="csv", description="Format"
        )
        self.export_fields = w.SelectMultiple(
            options=DEFAULT_FIELDS, value=tuple(DEFAULT_FIELDS[1:7]), description="Fields", rows=6
        )
        self.export_button = w.Button(description="Export", icon="download")
        self.export_status = w.HTML()
        self.query = ""
        #: why the last search did not run (a custom range without both dates, or reversed)
        self.problem: str | None = None
        self._searched: tuple[Any, ...] | None = None  # the filters of the last search
        self.figure: Any = None
        self.frame: Any = None
        self.total = 0
        self.last_export: Path | None = None
        self._cursors: list[str | None] = [None]
        self._next: str | None = None
        self.search_button.on_click(lambda _: self.refresh())
        self.search.observe(lambda _: self.refresh(), "value")  # Enter in the search bar
        self.next_button.on_click(lambda _: self.next_page())
        self.prev_button.on_click(lambda _: self.previous_page())
        self.export_button.on_click(lambda _: self.export())
        self.widget = w.VBox(
            [
                w.HBox([self.preset, self.start, self.end]),
                self.organization,
                w.HBox([self.actor, self.actor_type, self.category]),
                w.HBox([self.resource, self.result]),
                w.HBox([self.search, self.search_button]),
                self.status,
                self.timeline,
                self.table,
                w.HBox([self.prev_button, self.next_button]),
                w.HBox([self.export_format, self.export_fields, self.export_button]),
                self.export_status,
            ]
        )

    # -- the query ---------------------------------------------------------------
    def range_problem(self) -> str | None:
        """What is wrong with the custom range (None: nothing, or not a custom range)."""
        if self.preset.value != "custom":
            return None
        start, end = self.start.value, self.end.value
        if start is None and end is None:
            return "Custom range: choose a start date and an end date."
        if start is None:
            return "Custom range: choose a start date."
        if end is None:
            return "Custom range: choose an end date."
        if start > end:
            return f"Custom range: the start ({start:%Y-%m-%d}) is after the end ({end:%Y-%m-%d})."
        return None

    def reload_organizations(self) -> None:
        """Re-read the organizations (and their names) from the store, keeping the choice."""
        options = organization_options(self.store)
        if tuple(self.organization.options) == tuple(options):
            return
        chosen = self.organization.value
        self.organization.options = options
        if chosen in (value for _, value in options):
            self.organization.value = chosen

    def build_query(self) -> str:
        """The search query the current widget values stand for."""
        parts: list[str] = []
        if self.organization.value != ALL_ORGANIZATIONS:
            parts.append(f"organization_id:{_quote(self.organization.value)}")
        last = PRESETS[self.preset.value]
        if last:
            now = self._now or datetime.now(UTC)
            since = now - _duration(last)
            parts.append(f"created:>={since:%Y-%m-%dT%H:%M:%SZ}")
        elif self.preset.value == "custom":
            if self.start.value:
                parts.append(f"created:>={_day(self.start.value)}")
            if self.end.value:
                parts.append(f"created:<={_day(self.end.value, end=True)}")
        if self.actor.value.strip():
            parts.append(f"actor:{_quote(self.actor.value)}")
        if self.actor_type.value != "any":
            parts.append(f"actor_type:{self.actor_type.value}")
        if self.category.value != "any":
            parts.append(f"category:{self.category.value}")
        if self.resource.value.strip():
            parts.append(f"resource:{_quote(self.resource.value)}")
        if self.result.value != "any":
            parts.append(f"result:{self.result.value}")
        if self.search.value.strip():
            parts.append(self.search.value.strip())
        return " ".join(parts)

    def refresh(self) -> None:
        """Run the query from the first page (the Search button).

        A custom range without both dates, or with the start after the end, runs nothing:
        the status says what to fix and the table, timeline and total are emptied.
        """
        self._cursors = [None]
        self._next = None
        self._searched = self._filters()
        self.problem = self.range_problem()
        if self.problem is not None:
            self.query = ""
            self._clear(_error(self.problem))
            return
        self.query = self.build_query()
        try:
            self.total = self.store.count(self.query or None)
        except AuditLensError as exc:
            self._clear(_error(str(exc)))
            return
        self._show_page()
        self._draw_timeline()

    def _filters(self) -> tuple[Any, ...]:
        return (
            self.organization.value,
            self.preset.value,
            self.start.value,
            self.end.value,
            self.actor.value,
            self.actor_type.value,
            self.category.value,
            self.resource.value,
            self.result.value,
            self.search.value,
        )

    def _clear(self, status: str) -> None:
        self.status.value = status
        self.total = 0
        self.frame = None
        self.table.value = ""
        self.prev_button.disabled = self.next_button.disabled = True
        self.figure = None
        if _in_kernel():
            self.timeline.clear_output()

    def next_page(self) -> None:
        """Older entries."""
        if self._next is not None:
            self._cursors.append(self._next)
            self._show_page()

    def previous_page(self) -> None:
        """Newer entries."""
        if len(self._cursors) > 1:
            self._cursors.pop()
            self._show_page()

    @property
    def page_number(self) -> int:
        """The page shown, from 1."""
        return len(self._cursors)

    def _show_page(self) -> None:
        import pandas as pd  # lazy: pandas only for pandas output

        page = self.store.page(self.query or None, limit=self.page_size, cursor=self._cursors[-1])
        self._next = page.next_cursor
        rows = [
            {
                "timestamp": e["timestamp"],
                "actor_email": (e.get("actor") or {}).get("email"),
                "action": e["action"],
                "resource_type": (e.get("resource") or {}).get("type"),
                "resource_name": (e.get("resource") or {}).get("name"),
                "result": e["result"],
                "ip_address": e.get("ip_address"),
            }
            for e in page.entries
        ]
        self.frame = pd.DataFrame(rows, columns=list(_TABLE_COLUMNS))
        first = (self.page_number - 1) * self.page_size
        self.status.value = html.escape(
            f"{self.total:,} entries match `{self.query or 'everything'}` — showing "
            f"{first + 1 if rows else 0:,}–{first + len(rows):,}{self._future_note()}"
        )
        # pandas escapes cell text by default: entry fields are attacker-controlled
        self.table.value = self.frame.to_html(index=False, escape=True, na_rep="")
        self.prev_button.disabled = self.page_number == 1
        self.next_button.disabled = self._next is None

    def _future_note(self) -> str:
        if self.preset.value != "custom" or self.end.value is None:
            return ""
        today = (self._now or datetime.now(UTC)).date()
        if self.end.value <= today:
            return ""
        return f" (the end, {self.end.value:%Y-%m-%d}, is in the future)"

    def _draw_timeline(self) -> None:

        self.figure = None
        if self.total:
            frame = self.store.query(self.query or None, backend="polars", limit=200_000)
            self.figure = plots.activity_by_category(frame, title="Activity (matching entries)")
        if not _in_kernel():
            return
        from IPython.display import display  # lazy: notebook-only dependency

        self.timeline.clear_output()
        if self.figure is not None:
            with self.timeline:
                display(self.figure)  # type: ignore[no-untyped-call]

    # -- export ------------------------------------------------------------------
    def export(self) -> Path | None:
        """Export every matching entry with the chosen format and fields (the Export button).

        The export follows the filters as they are now: changed since the last search, the
        search runs again first, so the table and the file agree. Nothing is written while
        the custom range is incomplete or reversed.
        """
        if self._filters() != self._searched:
            self.refresh()
        if self.problem is not None:
            self.export_status.value = _error(f"{self.problem} Nothing exported.")
            return None
        fmt = self.export_format.value
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.export_dir / f"audit-export-{stamp}.{fmt}"
        try:
            result = self.store.export(
                path, format=fmt, fields=list(self.export_fields.value), where=self.query or None
            )
        except AuditLensError as exc:
            self.export_status.value = _error(str(exc))
            return None
        self.last_export = path
        self.export_status.value = html.escape(f"{result.rows:,} entries written to {path}")
        return path

    def _ipython_display_(self) -> None:
        from IPython.display import display  # lazy: notebook-only dependency

        if self.frame is None:
            self.refresh()
        display(self.widget)  # type: ignore[no-untyped-call]


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython  # lazy: notebook-only dependency
    except ImportError:
        return False
    return get_ipython() is not None


def _duration(text: str) -> timedelta:

    return parse_duration(text)


def _day(value: date, *, end: bool = False) -> str:
    moment = datetime.combine(value, time.max if end else time.min, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if end else f"{value:%Y-%m-%d}"


def explore(store: AuditStore, **options: Any) -> Explorer:
    """Open the explorer on a store (display it as the last expression of a cell)."""
    return Explorer(store, **options)
