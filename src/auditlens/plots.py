"""Plotly figures of audit activity, for notebooks and reports.

Each function takes an entries frame (polars or pandas, the
:data:`~auditlens.frames.COLUMNS` layout) and returns a ``plotly.graph_objects.Figure``.
Aggregation happens in polars; the figure holds only the aggregated numbers.

Example:
    >>> import auditlens as al
    >>> from auditlens import plots
    >>> store = al.open_store("sqlite://")
    >>> _ = store.append([{"action": "auth.failed", "result": "failure",
    ...     "actor": {"email": "jane@company.com", "type": "user"},
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11",
    ...     "timestamp": "2025-01-20T10:30:00Z"}])
    >>> fig = plots.failed_logins(store.query(backend="polars"))
    >>> list(fig.data[0].y)
    [1]
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from auditlens.detect.findings import as_polars
from auditlens.errors import ConfigError

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "activity_by_category",
    "entries_per_day",
    "failed_logins",
    "findings_by_severity",
    "hour_of_week",
    "hour_of_week_dots",
    "top_actors",
]

_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_MS = {"1h": 3_600_000, "1d": 86_400_000, "1w": 7 * 86_400_000}
#: severities, mildest first (stacked bottom-up), and their colours
_SEVERITIES = {"low": "#8fb3d9", "medium": "#e0a030", "high": "#c0392b", "critical": "#6d0f1a"}
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
    "font": {"family": "DejaVu Sans, sans-serif", "size": 12},
}


def _go() -> Any:
    try:
        import plotly.graph_objects as go  # lazy: plotly only when a chart is drawn
    except ImportError:
        raise ConfigError("charts need plotly: pip install 'auditlens[notebooks]'") from None
    return go


def _every(frame: pl.DataFrame, start: Any = None, end: Any = None) -> str:
    """A bucket size that gives a readable number of bars for the time span: the period
    ``[start, end)`` when given, else the frame's first to last entry."""
    if start is not None and end is not None:
        lo, hi = start, end
    elif frame.is_empty():
        return "1d"
    else:
        lo, hi = frame["timestamp"].min(), frame["timestamp"].max()
    days = (
        (hi - lo).total_seconds() / 86_400
        if isinstance(lo, datetime) and isinstance(hi, datetime)
        else 0
    )
    return "1h" if days <= 3 else "1d" if days <= 120 else "1w"


def _span(fig: Any, start: Any, end: Any) -> None:
    """The x axis covers the period ``[start, end)`` exactly (not only the entries in it)."""
    if start is not None and end is not None:
        fig.update_xaxes(range=[start, end])


def _counts(frame: pl.DataFrame, every: str, by: str | None = None) -> pl.DataFrame:
    """Entries per bucket (and per ``by``), bucket starts in ``timestamp``."""
    return (
        frame.sort("timestamp")
        .group_by_dynamic("timestamp", every=every, group_by=by)
        .agg(pl.len().alias("n"))
        .sort("timestamp")
    )


def activity_by_category(df: Any, *, title: str = "Activity by category") -> go.Figure:
    """Stacked bars: entries per hour/day/week (by the period's length) and category."""
    go = _go()
    frame = as_polars(df)[0]
    every = _every(frame)
    counts = (
        frame.sort("timestamp")
        .group_by_dynamic("timestamp", every=every, group_by="category")
        .agg(pl.len().alias("n"))
        .sort("timestamp")
    )
    fig = go.Figure(layout={**_LAYOUT, "title": title, "barmode": "stack"})
    for cat in sorted(counts["category"].unique().to_list()):
        part = counts.filter(pl.col("category") == cat)
        fig.add_bar(x=part["timestamp"].to_list(), y=part["n"].to_list(), name=cat)
    fig.update_layout(xaxis_title="time (UTC)", yaxis_title="entries")
    return fig


def hour_of_week(
    df: Any, *, title: str = "Activity by hour of week (UTC)", timezone: str = "UTC"
) -> go.Figure:
    """Heatmap: entries per weekday × hour of day, in ``timezone`` (an IANA name)."""
    go = _go()
    frame = as_polars(df)[0] if not isinstance(df, pl.DataFrame) else df
    local = pl.col("timestamp").dt.convert_time_zone(timezone)
    counts = (
        frame.select((local.dt.weekday() - 1).alias("d"), local.dt.hour().alias("h"))
        .group_by("d", "h")
        .agg(pl.len().alias("n"))
    )
    z = [[0] * 24 for _ in range(7)]
    for d, h, n in counts.iter_rows():  # at most 168 aggregated cells
        z[d][h] = n
    fig = go.Figure(
        go.Heatmap(z=z, x=list(range(24)), y=_DAYS, colorscale="Blues"),
        layout={**_LAYOUT, "title": title},
    )
    fig.update_layout(
        xaxis_title=f"hour ({timezone})", yaxis={"autorange": "reversed"}, xaxis={"dtick": 2}
    )
    return fig


def hour_of_week_dots(
    df: Any, *, title: str = "Activity by hour of week (UTC)", timezone: str = "UTC"
) -> go.Figure:
    """Dots: entries per weekday × hour of day in ``timezone``, each dot's area and colour
    by its count — the same numbers as :func:`hour_of_week`, drawn in vector shapes only
    (a heatmap is a raster image in SVG, which the PDF renderer does not draw).

    Example:
        >>> from datetime import UTC, datetime
        >>> import polars as pl
        >>> df = pl.DataFrame({"timestamp": [datetime(2025, 1, 6, 23, 30, tzinfo=UTC)] * 2})
        >>> t = hour_of_week_dots(df, timezone="Asia/Tokyo").data[0]
        >>> list(t.x), list(t.y), list(t.marker.color)
        ([8], ['Tue'], [2])
    """
    go = _go()
    frame = as_polars(df)[0] if not isinstance(df, pl.DataFrame) else df
    local = pl.col("timestamp").dt.convert_time_zone(timezone)
    counts = (
        frame.select((local.dt.weekday() - 1).alias("d"), local.dt.hour().alias("h"))
        .group_by("d", "h")
        .agg(pl.len().alias("n"))
        .sort("d", "h")
    )
    top = max(int(counts["n"].max() or 1), 1) if counts.height else 1  # type: ignore[arg-type]
    fig = go.Figure(layout={**_LAYOUT, "title": title})
    fig.add_scatter(
        x=counts["h"].to_list(),
        y=[_DAYS[d] for d in counts["d"].to_list()],
        mode="markers",
        name="entries",
        marker={
            "size": [6 + 22 * (n / top) ** 0.5 for n in counts["n"].to_list()],
            "color": counts["n"].to_list(),
            "colorscale": "Blues",
            "cmin": 0,
            "showscale": False,  # (a colour bar is a raster the PDF does not draw)
            "line": {"width": 0.5, "color": "#1f4e99"},
        },
        hovertemplate="%{y} %{x}:00 — %{marker.color} entries<extra></extra>",
    )
    fig.update_layout(
        xaxis={"title": f"hour ({timezone})", "range": [-0.5, 23.5], "dtick": 2},
        yaxis={"categoryorder": "array", "categoryarray": _DAYS, "range": [6.5, -0.5]},
    )
    return fig


def failed_logins(
    df: Any, *, title: str = "Failed sign-ins", start: Any = None, end: Any = None
) -> go.Figure:
    """Bars: ``auth.failed`` entries per hour/day/week; the x axis spans ``[start, end)``
    when given (the report's period), so a quiet end of the period shows as empty."""
    go = _go()
    frame = as_polars(df)[0].filter(pl.col("action") == "auth.failed")
    every = _every(frame, start, end)
    counts = _counts(frame, every)
    fig = go.Figure(layout={**_LAYOUT, "title": title})
    fig.add_bar(
        x=counts["timestamp"].to_list(),
        y=counts["n"].to_list(),
        marker_color="#c0392b",
        xperiod=_MS[every],
        xperiodalignment="middle",
        width=_MS[every] * 0.8,
        name="failed sign-ins",
    )
    fig.update_layout(xaxis_title="time (UTC)", yaxis_title="failed sign-ins")
    _span(fig, start, end)
    return fig


def entries_per_day(df: Any, start: datetime, end: datetime, *, title: str = "") -> go.Figure:
    """Bars: entries per UTC day of the period ``[start, end)``; days without any entry
    are marked (a red cross on the axis), so a gap in the trail is visible.

    Example:
        >>> from datetime import UTC, datetime
        >>> import polars as pl
        >>> df = pl.DataFrame({"timestamp": [datetime(2025, 1, 1, 9, tzinfo=UTC)] * 2})
        >>> fig = entries_per_day(df, datetime(2025, 1, 1, tzinfo=UTC),
        ...                       datetime(2025, 1, 3, tzinfo=UTC))
        >>> list(fig.data[0].y), len(fig.data[1].x)
        ([2, 0], 1)
    """
    go = _go()
    frame = as_polars(df)[0] if not isinstance(df, pl.DataFrame) else df
    last = end - timedelta(milliseconds=1)
    days = pl.DataFrame(
        {"day": pl.date_range(start.date(), last.date(), interval="1d", eager=True)}
    )
    counts = (
        frame.select(pl.col("timestamp").dt.convert_time_zone("UTC").dt.date().alias("day"))
        .group_by("day")
        .agg(pl.len().alias("n"))
    )
    per_day = days.join(counts, on="day", how="left").with_columns(pl.col("n").fill_null(0))
    empty = per_day.filter(pl.col("n") == 0)
    fig = go.Figure(layout={**_LAYOUT, "title": title or "Entries per day"})
    fig.add_bar(
        x=per_day["day"].to_list(),
        y=per_day["n"].to_list(),
        name="entries",
        marker_color="#1f4e99",
        xperiod=86_400_000,
        xperiodalignment="middle",
        width=86_400_000 * 0.8,
    )
    fig.add_scatter(
        x=empty["day"].to_list(),
        y=[0] * empty.height,
        mode="markers",
        marker={"symbol": "x", "size": 9, "color": "#b00020"},
        name=f"day without entries ({empty.height})",
        xperiod=86_400_000,
        xperiodalignment="middle",
    )
    fig.update_layout(xaxis_title="day (UTC)", yaxis_title="entries", showlegend=True)
    _span(fig, start, end)
    return fig


def findings_by_severity(
    findings: Any,
    start: datetime,
    end: datetime,
    *,
    title: str = "Findings over time by severity",
) -> go.Figure:
    """Stacked bars: detector findings per day (by where their window starts) and severity,
    over the period ``[start, end)``.

    Example:
        >>> from datetime import UTC, datetime
        >>> import polars as pl
        >>> t = datetime(2025, 1, 2, 9, tzinfo=UTC)
        >>> f = pl.DataFrame({"window_start": [t, t], "severity": ["high", "low"]})
        >>> fig = findings_by_severity(f, datetime(2025, 1, 1, tzinfo=UTC),
        ...                            datetime(2025, 1, 8, tzinfo=UTC))
        >>> [(t.name, list(t.y)) for t in fig.data]
        [('low', [1]), ('high', [1])]
    """
    go = _go()
    frame = findings if isinstance(findings, pl.DataFrame) else pl.from_pandas(findings)
    every = _every(frame, start, end)
    counts = (
        _counts(
            frame.select(pl.col("window_start").alias("timestamp"), "severity"), every, "severity"
        )
        if frame.height
        else pl.DataFrame(schema={"severity": pl.Utf8, "timestamp": pl.Datetime, "n": pl.UInt32})
    )
    fig = go.Figure(layout={**_LAYOUT, "title": title, "barmode": "stack"})
    seen = set(counts["severity"].unique().to_list())
    order = [s for s in _SEVERITIES if s in seen] + sorted(seen - set(_SEVERITIES))
    for sev in order:
        part = counts.filter(pl.col("severity") == sev)
        fig.add_bar(
            x=part["timestamp"].to_list(),
            y=part["n"].to_list(),
            name=sev,
            marker_color=_SEVERITIES.get(sev, "#5a6270"),
            xperiod=_MS[every],
            xperiodalignment="middle",
            width=_MS[every] * 0.8,
        )
    fig.update_layout(xaxis_title="time (UTC)", yaxis_title="findings")
    _span(fig, start, end)
    return fig


def top_actors(df: Any, *, n: int = 10, title: str = "Most active actors") -> go.Figure:
    """Horizontal bars: the ``n`` actors with the most entries, failures shown apart."""
    go = _go()
    frame = as_polars(df)[0].with_columns(
        pl.coalesce("actor_email", "actor_user_id", pl.lit("(system)")).alias("who")
    )
    counts = (
        frame.group_by("who")
        .agg(
            pl.len().alias("n"),
            (pl.col("result") == "failure").sum().alias("failures"),
        )
        .sort(["n", "who"], descending=[True, False])
        .head(n)
        .reverse()
    )
    fig = go.Figure(layout={**_LAYOUT, "title": title, "barmode": "stack"})
    who = counts["who"].to_list()
    ok = (counts["n"] - counts["failures"]).to_list()
    fig.add_bar(y=who, x=ok, orientation="h", name="success/partial")
    fig.add_bar(
        y=who,
        x=counts["failures"].to_list(),
        orientation="h",
        name="failure",
        marker_color="#c0392b",
    )
    fig.update_layout(xaxis_title="entries")
    return fig
