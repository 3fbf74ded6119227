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

from datetime import datetime
from typing import Any

import polars as pl

from auditlens.detect.findings import as_polars

__all__ = ["activity_by_category", "failed_logins", "hour_of_week", "top_actors"]

_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
    "font": {"family": "DejaVu Sans, sans-serif", "size": 12},
}


def _go() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError:
        from auditlens.errors import ConfigError

        raise ConfigError("charts need plotly: pip install 'auditlens[notebooks]'") from None
    return go


def _every(frame: pl.DataFrame) -> str:
    """A bucket size that gives a readable number of bars for the frame's time span."""
    if frame.is_empty():
        return "1d"
    lo, hi = frame["timestamp"].min(), frame["timestamp"].max()
    days = (
        (hi - lo).total_seconds() / 86_400
        if isinstance(lo, datetime) and isinstance(hi, datetime)
        else 0
    )
    return "1h" if days <= 3 else "1d" if days <= 120 else "1w"


def activity_by_category(df: Any, *, title: str = "Activity by category") -> Any:
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


def hour_of_week(df: Any, *, title: str = "Activity by hour of week (UTC)") -> Any:
    """Heatmap: entries per weekday × hour of day."""
    go = _go()
    frame = as_polars(df)[0]
    counts = (
        frame.select(
            (pl.col("timestamp").dt.weekday() - 1).alias("d"),
            pl.col("timestamp").dt.hour().alias("h"),
        )
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
    fig.update_layout(xaxis_title="hour", yaxis={"autorange": "reversed"})
    return fig


def failed_logins(df: Any, *, title: str = "Failed sign-ins") -> Any:
    """Bars: ``auth.failed`` entries per hour/day/week."""
    go = _go()
    frame = as_polars(df)[0].filter(pl.col("action") == "auth.failed")
    every = _every(frame)
    counts = (
        frame.sort("timestamp")
        .group_by_dynamic("timestamp", every=every)
        .agg(pl.len().alias("n"))
        .sort("timestamp")
    )
    fig = go.Figure(layout={**_LAYOUT, "title": title})
    fig.add_bar(x=counts["timestamp"].to_list(), y=counts["n"].to_list(), marker_color="#c0392b")
    fig.update_layout(xaxis_title="time (UTC)", yaxis_title="failed sign-ins")
    return fig


def top_actors(df: Any, *, n: int = 10, title: str = "Most active actors") -> Any:
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
