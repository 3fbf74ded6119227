"""Detectors on a store's entries: the query pushed into SQL, the stored context applied.

Example:
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> detect_stored(store, "all", last="7d").height
    0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

from auditlens import context
from auditlens.detect import apply_allowlist, run, run_all

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from auditlens.detect.allowlist import AllowlistSource
    from auditlens.query.keywords import FilterKeywords
    from auditlens.store.store import Store, Where

__all__ = ["detect_stored"]


@overload
def detect_stored(
    store: Store,
    name_or_all: str = ...,
    where: Where = ...,
    *,
    config: Mapping[str, Any] | None = ...,
    use_context: bool = ...,
    allowlist: AllowlistSource | None = ...,
    keep_suppressed: bool = ...,
    backend: Literal["polars"] = ...,
    **filters: Unpack[FilterKeywords],
) -> pl.DataFrame: ...
@overload
def detect_stored(
    store: Store,
    name_or_all: str = ...,
    where: Where = ...,
    *,
    config: Mapping[str, Any] | None = ...,
    use_context: bool = ...,
    allowlist: AllowlistSource | None = ...,
    keep_suppressed: bool = ...,
    backend: Literal["pandas"],
    **filters: Unpack[FilterKeywords],
) -> pd.DataFrame: ...
@overload
def detect_stored(
    store: Store,
    name_or_all: str = ...,
    where: Where = ...,
    *,
    config: Mapping[str, Any] | None = ...,
    use_context: bool = ...,
    allowlist: AllowlistSource | None = ...,
    keep_suppressed: bool = ...,
    backend: Literal["polars", "pandas"],
    **filters: Unpack[FilterKeywords],
) -> pl.DataFrame | pd.DataFrame: ...
def detect_stored(
    store: Store,
    name_or_all: str = "all",
    where: Where = None,
    *,
    config: Mapping[str, Any] | None = None,
    use_context: bool = True,
    allowlist: AllowlistSource | None = None,
    keep_suppressed: bool = False,
    backend: Literal["polars", "pandas"] = "polars",
    **filters: Unpack[FilterKeywords],
) -> pl.DataFrame | pd.DataFrame:
    """Run one detector (``config`` = its parameters) or all of them on a store's entries.

    The time range and filters are pushed into SQL; with ``use_context`` the stored
    context sets the detectors' parameters first
    (:func:`auditlens.context.with_context`) and ``config``
    overrides it. ``allowlist`` (known automation: :mod:`auditlens.detect.allowlist`)
    downgrades or suppresses the findings it explains. ``AuditStore.detect`` is this
    function as a method.

    Example:
        >>> import auditlens as al
        >>> detect_stored(al.open_store("sqlite://"), "off_hours").height
        0
    """
    df = store.query(where, backend=backend, order="asc", **filters)
    if use_context:
        config = context.with_context(store, config, name_or_all)
    if name_or_all == "all":
        return run_all(df, config, allowlist, keep_suppressed)
    found = run(name_or_all, df, **dict(config or {}))
    if allowlist is None:
        return found
    return apply_allowlist(found, df, allowlist, keep_suppressed=keep_suppressed)
