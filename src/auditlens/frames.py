"""Dataframes of entries: the flat column layout, Arrow → pandas/polars, details expansion.

Example:
    >>> import polars as pl
    >>> details = '{"before": {"role": "member"}, "after": {"role": "admin"}}'
    >>> df = pl.DataFrame({"details": [details]})
    >>> expand_details(df, ["before.role", "after.role"]).columns
    ['details', 'details.before.role', 'details.after.role']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast, overload

import orjson
import pyarrow as pa

from auditlens.errors import ConfigError
from auditlens.fields import FIELDS

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = [
    "COLUMNS",
    "FRAME_SCHEMA",
    "batches_to_backend",
    "expand_details",
    "to_backend",
]


_ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "timestamp_ms": pa.timestamp("ms", tz="UTC"),
}
#: the columns of every entries dataframe, in order (from :data:`auditlens.fields.FIELDS`).
FRAME_SCHEMA = pa.schema([pa.field(f.frame, _ARROW_TYPES[f.dtype]) for f in FIELDS if f.frame])
COLUMNS: tuple[str, ...] = tuple(FRAME_SCHEMA.names)


def batches_to_backend(batches: Iterable[pa.RecordBatch], backend: str) -> Any:
    """Build a dataframe batch by batch, so each Arrow batch is freed once converted.

    polars keeps strings in its own layout, so converting a whole Arrow table would
    hold both copies at once; converting per batch keeps the peak near one copy.
    """
    if backend == "polars":
        import polars as pl  # lazy: polars costs ~0.2 s at start-up; only this path needs it

        parts = [cast("pl.DataFrame", pl.from_arrow(b)) for b in batches]
        if not parts:
            return pl.from_arrow(FRAME_SCHEMA.empty_table())
        return pl.concat(parts, rechunk=False)
    return to_backend(pa.Table.from_batches(list(batches), schema=FRAME_SCHEMA), backend)


def to_backend(table: pa.Table, backend: str) -> Any:
    """Convert an Arrow table to ``pandas``, ``polars`` or (unchanged) ``arrow``."""
    if backend == "polars":
        import polars as pl  # lazy: polars costs ~0.2 s at start-up; only this path needs it

        return pl.from_arrow(table)
    if backend == "pandas":
        return table.to_pandas()
    if backend == "arrow":
        return table
    raise ConfigError(f"unknown backend {backend!r}; use 'pandas', 'polars' or 'arrow'")


def _dig(obj: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    if isinstance(obj, dict | list):
        return orjson.dumps(obj).decode()
    return obj


@overload
def expand_details(df: pl.DataFrame, paths: Sequence[str]) -> pl.DataFrame: ...
@overload
def expand_details(df: pd.DataFrame, paths: Sequence[str]) -> pd.DataFrame: ...
def expand_details(
    df: pd.DataFrame | pl.DataFrame, paths: Sequence[str]
) -> pd.DataFrame | pl.DataFrame:
    """Add one column ``details.<path>`` per dotted path into the ``details`` JSON.

    Works on pandas and polars frames and returns the same kind. Nested objects
    come out as JSON text, missing keys as null.
    """
    module = type(df).__module__.split(".")[0]
    if module == "polars":
        import polars as pl  # lazy: polars costs ~0.2 s at start-up; only this path needs it

        pdf: pl.DataFrame = df  # type: ignore[assignment]
        parsed = [orjson.loads(d) if d else {} for d in pdf["details"].to_list()]
        return pdf.with_columns(
            pl.Series(f"details.{p}", [_dig(d, p.split(".")) for d in parsed]) for p in paths
        )
    out = df.copy()  # type: ignore[union-attr]
    parsed = [orjson.loads(d) if d else {} for d in out["details"]]
    for p in paths:
        out[f"details.{p}"] = [_dig(d, p.split(".")) for d in parsed]
    return out
