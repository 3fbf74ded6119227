"""Reading the lake back: ``al.open_lake(path).query(...)`` with the store's filters.

The files the manifests list are scanned lazily with polars (Hive partitions
``organization_id`` and ``date`` or ``month`` from the folder names); keyword filters and search
strings become one polars predicate, which polars pushes into the scan: partitions that
cannot match are not opened, row groups are skipped on their statistics. The filters mean
what they mean on the store (the same :class:`~auditlens.query.Filter`): time ranges,
actor (email with ``*`` wildcards, any case, or user id), actions and patterns, category,
result, organization, resource, application, audit id and IP ranges (CIDR, through the
``ip_key`` column the lake stores). Free text is not supported here (the store's text
index has no counterpart in Parquet): it raises :class:`~auditlens.errors.FilterError`.

Example:
    >>> import tempfile
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> _ = store.append([{"actor": {"type": "system"}, "action": "auth.login",
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11", "result": "success"}])
    >>> lake = tempfile.mkdtemp()
    >>> _ = al.sync_lake(store, lake)
    >>> al.open_lake(lake).query("action:auth.*", result="success").height
    1
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import polars as pl
import pyarrow as pa
from typing_extensions import Unpack

from auditlens.errors import ArchiveError, FilterError
from auditlens.fields import FIELD, KEYWORDS, Match
from auditlens.frames import FRAME_SCHEMA, to_backend
from auditlens.lake.layout import LakeStorage, read_state, s3_endpoint, s3_region
from auditlens.query.filters import Clause, Filter
from auditlens.query.keywords import FilterKeywords
from auditlens.query.search import parse_search

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Lake", "filter_expr", "open_lake", "polars_s3_options"]

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _frame_column(store_column: str) -> str:
    return FIELD[store_column].frame or store_column


def _like(column: pl.Expr, value: str) -> pl.Expr:
    """``=`` or, with ``*`` wildcards, a whole-value pattern (as the store's LIKE)."""
    if "*" not in value:
        return column == value
    regex = ".*".join(re.escape(p) for p in value.split("*"))
    return column.str.contains(f"(?s)^{regex}$")


def _actor(value: str) -> pl.Expr:
    if _UUID_RE.match(value):
        return pl.col("actor_user_id") == value
    by_email = _like(pl.col("actor_email").str.to_lowercase(), value)
    if "@" in value:
        return by_email
    return by_email | _like(pl.col("actor_user_id").str.to_lowercase(), value)


def _time(value: tuple[int | None, int | None]) -> pl.Expr:
    lo, hi = value
    ms = pl.col("timestamp").dt.epoch("ms")
    expr = pl.lit(True)
    if lo is not None:
        expr = expr & (ms >= lo)
    if hi is not None:
        expr = expr & (ms <= hi)
    return expr


def _ip(value: tuple[str, str]) -> pl.Expr:
    lo, hi = value
    return pl.col("ip_key").is_between(pl.lit(lo), pl.lit(hi))


def _resource(value: str) -> pl.Expr:
    return (pl.col("resource_id") == value) | (pl.col("resource_name") == value)


def _unsupported(field: str) -> Callable[[Any], pl.Expr]:
    def build(value: Any) -> pl.Expr:
        raise FilterError(
            f"{field}: free-text search is not supported on the lake (it has no text index); "
            "filter by fields (actor, action, resource, result, ip…) or search the store"
        )

    return build


def _column(store_column: str, wildcards: bool) -> Callable[[Any], pl.Expr]:
    column = pl.col(_frame_column(store_column))
    return lambda v: _like(column, v) if wildcards else column == v


_ONE_COLUMN = (Match.CHOICE, Match.PATTERN, Match.CATEGORY, Match.EXACT, Match.ID)
_BUILDERS: dict[str, Callable[[Any], pl.Expr]] = {
    "time": _time,
    "actor": _actor,
    "ip": _ip,
    "resource": _resource,
    "text": _unsupported("text"),
    "word": _unsupported("a bare word"),
    **{
        k.clause: _column(k.column, k.match is Match.PATTERN)
        for k in KEYWORDS
        if k.match in _ONE_COLUMN
    },
}


def _clause(clause: Clause) -> pl.Expr:
    build = _BUILDERS.get(clause.field)
    if build is None:
        raise FilterError(f"{clause.field}: this filter is not supported on the lake")
    parts = [build(v) for v in clause.values]
    expr = pl.any_horizontal(parts) if parts else pl.lit(False)
    return ~expr.fill_null(False) if clause.negate else expr


def filter_expr(flt: Filter) -> pl.Expr:
    """The polars predicate of a :class:`~auditlens.query.Filter` over lake rows.

    Raises:
        FilterError: a clause the lake cannot evaluate (free text).

    Example:
        >>> filter_expr(Filter.from_kwargs(result="failure")).meta.root_names()
        ['result']
    """
    if not flt.clauses:
        return pl.lit(True)
    return pl.all_horizontal([_clause(c) for c in flt.clauses])


class Lake:
    """A lake written by :func:`~auditlens.lake.sync_lake`, read with polars (a local
    folder, or ``s3://bucket/prefix``: see :class:`~auditlens.lake.layout.LakeStorage`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.storage = LakeStorage.at(path)
        self.root = self.storage.root
        if self.storage.local and not Path(self.storage.base).is_dir():
            raise ArchiveError(f"{self.root}: no such folder (a lake is a folder sync_lake wrote)")
        state = read_state(self.storage)
        #: the current files (the manifests' list: nothing is listed from the folder)
        uris = [self.storage.uri(f) for f in sorted(state.files)]
        self.files: list[Path] | list[str] = [Path(u) for u in uris] if self.storage.local else uris
        self.partition = state.partition  #: the time partition: "date" or "month"

    def scan(self) -> pl.LazyFrame:
        """Every current file as one lazy frame (partition columns included)."""
        if not self.files:
            empty = pl.from_arrow(FRAME_SCHEMA.empty_table())
            assert isinstance(empty, pl.DataFrame)
            return empty.lazy()
        return pl.scan_parquet(
            self.files,
            hive_partitioning=True,
            hive_schema={"organization_id": pl.String, self.partition: pl.String},
            missing_columns="insert",
            storage_options=None if self.storage.local else polars_s3_options(),
        )

    @overload
    def query(
        self,
        where: Filter | str | None = ...,
        *,
        backend: Literal["polars"] = ...,
        limit: int | None = ...,
        order: Literal["asc", "desc"] = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pl.DataFrame: ...
    @overload
    def query(
        self,
        where: Filter | str | None = ...,
        *,
        backend: Literal["pandas"],
        limit: int | None = ...,
        order: Literal["asc", "desc"] = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pd.DataFrame: ...
    @overload
    def query(
        self,
        where: Filter | str | None = ...,
        *,
        backend: Literal["arrow"],
        limit: int | None = ...,
        order: Literal["asc", "desc"] = ...,
        **filters: Unpack[FilterKeywords],
    ) -> pa.Table: ...
    def query(
        self,
        where: Filter | str | None = None,
        *,
        backend: str = "polars",
        limit: int | None = None,
        order: Literal["asc", "desc"] = "desc",
        **filters: Unpack[FilterKeywords],
    ) -> pl.DataFrame | pd.DataFrame | pa.Table:
        """Matching entries (the store's frame columns), newest first unless ``order="asc"``.

        ``where`` is a search string or a :class:`~auditlens.query.Filter`; keyword
        filters as on ``store.query``. Polars by default (the lake's fast path), or
        ``backend="pandas"``/``"arrow"``.

        Raises:
            FilterError: a malformed filter, or free text (not supported on the lake).
        """
        flt = parse_search(where) if isinstance(where, str) else Filter.coerce(where)
        if filters:
            flt = flt & Filter.coerce(dict(filters))
        desc = order == "desc"
        lazy = (
            self.scan()
            .filter(filter_expr(flt))
            .sort(["timestamp", "organization_id", "seq"], descending=desc)
        )
        if limit is not None:
            if limit < 0:
                raise FilterError(f"limit must be 0 or more, got {limit}")
            lazy = lazy.head(limit)
        frame = lazy.select(FRAME_SCHEMA.names).collect()
        if backend == "polars":
            return frame
        return to_backend(frame.to_arrow().cast(FRAME_SCHEMA), backend)


def polars_s3_options() -> dict[str, str]:
    """polars' ``storage_options`` for S3 from the environment (the endpoint and region
    :class:`~auditlens.lake.layout.LakeStorage` uses; credentials: polars' own AWS chain).

    Example:
        >>> isinstance(polars_s3_options(), dict)
        True
    """
    options: dict[str, str] = {}
    if endpoint := s3_endpoint():
        options["aws_endpoint_url"] = endpoint
        if endpoint.startswith("http://"):
            options["allow_http"] = "true"
    if region := s3_region():
        options["aws_region"] = region
    return options


def open_lake(path: str | os.PathLike[str]) -> Lake:
    """The lake at ``path`` (a folder or an ``s3://`` URL :func:`~auditlens.lake.sync_lake`
    wrote), for reading.

    Raises:
        ArchiveError: ``path`` is not a folder (a local lake).
    """
    return Lake(path)
