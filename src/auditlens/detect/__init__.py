"""Security detectors over a dataframe of entries (pandas or polars in, the same kind out).

Each returns a findings frame (:data:`~auditlens.detect.findings.FINDING_SCHEMA`).

Example:
    >>> import auditlens as al
    >>> from auditlens import detect
    >>> store = al.open_store("sqlite://")
    >>> detect.run_all(store.query(backend="polars")).height
    0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import polars as pl

from auditlens.detect.allowlist import Allowlist, AllowRule, apply_allowlist, load_allowlist
from auditlens.detect.behaviour import off_hours, unusual_access
from auditlens.detect.bursts import (
    brute_force_success,
    bulk_deletions,
    failed_login_spikes,
    password_spray,
)
from auditlens.detect.escalation import privilege_escalation
from auditlens.detect.evasion import defence_evasion
from auditlens.detect.exfiltration import mass_export
from auditlens.detect.failures import failure_bursts
from auditlens.detect.findings import (
    FINDING_SCHEMA,
    SEVERITIES,
    as_polars,
    empty_findings,
    return_like,
)
from auditlens.errors import DetectorError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DETECTORS",
    "FINDING_SCHEMA",
    "SEVERITIES",
    "AllowRule",
    "Allowlist",
    "apply_allowlist",
    "brute_force_success",
    "bulk_deletions",
    "defence_evasion",
    "failed_login_spikes",
    "failure_bursts",
    "load_allowlist",
    "mass_export",
    "off_hours",
    "password_spray",
    "privilege_escalation",
    "run",
    "run_all",
    "unusual_access",
]

#: detector name → function.
DETECTORS: dict[str, Callable[..., Any]] = {
    "failed_login_spikes": failed_login_spikes,
    "brute_force_success": brute_force_success,
    "password_spray": password_spray,
    "off_hours": off_hours,
    "bulk_deletions": bulk_deletions,
    "unusual_access": unusual_access,
    "failure_bursts": failure_bursts,
    "privilege_escalation": privilege_escalation,
    "defence_evasion": defence_evasion,
    "mass_export": mass_export,
}


@overload
def run(name: str, df: pl.DataFrame, **params: Any) -> pl.DataFrame: ...
@overload
def run(name: str, df: pd.DataFrame, **params: Any) -> pd.DataFrame: ...
@overload
def run(
    name: str, df: pl.DataFrame | pd.DataFrame, **params: Any
) -> pl.DataFrame | pd.DataFrame: ...
def run(name: str, df: pl.DataFrame | pd.DataFrame, **params: Any) -> pl.DataFrame | pd.DataFrame:
    """Run one detector by name on entries, with clear errors for unknown names or parameters.

    The findings come back in the frame library of ``df`` (polars or pandas).

    Example:
        >>> import auditlens as al
        >>> run("off_hours", al.open_store("sqlite://").query(backend="polars")).height
        0
    """
    if name not in DETECTORS:
        raise DetectorError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    try:
        found: pl.DataFrame | pd.DataFrame = DETECTORS[name](df, **params)
    except TypeError as exc:
        raise DetectorError(f"detector {name}: {exc}") from None
    return found


@overload
def run_all(
    df: pl.DataFrame,
    config: Mapping[str, Mapping[str, Any] | bool] | None = ...,
    allowlist: Allowlist | str | Path | Mapping[str, Any] | Sequence[Any] | None = ...,
    keep_suppressed: bool = ...,
) -> pl.DataFrame: ...
@overload
def run_all(
    df: pd.DataFrame,
    config: Mapping[str, Mapping[str, Any] | bool] | None = ...,
    allowlist: Allowlist | str | Path | Mapping[str, Any] | Sequence[Any] | None = ...,
    keep_suppressed: bool = ...,
) -> pd.DataFrame: ...
@overload
def run_all(
    df: pl.DataFrame | pd.DataFrame,
    config: Mapping[str, Mapping[str, Any] | bool] | None = ...,
    allowlist: Allowlist | str | Path | Mapping[str, Any] | Sequence[Any] | None = ...,
    keep_suppressed: bool = ...,
) -> pl.DataFrame | pd.DataFrame: ...
def run_all(
    df: pl.DataFrame | pd.DataFrame,
    config: Mapping[str, Mapping[str, Any] | bool] | None = None,
    allowlist: Allowlist | str | Path | Mapping[str, Any] | Sequence[Any] | None = None,
    keep_suppressed: bool = False,
) -> pl.DataFrame | pd.DataFrame:
    """Run every detector (``config[name] = False`` disables one, a dict sets its parameters).

    ``allowlist`` (a file, rules or an :class:`Allowlist`) downgrades or suppresses the
    findings known automation explains: :func:`~auditlens.detect.allowlist.apply_allowlist`.
    """
    frame, kind = as_polars(df)
    config = dict(config or {})
    unknown = set(config) - set(DETECTORS)
    if unknown:
        raise DetectorError(f"unknown detector(s) in config: {', '.join(sorted(unknown))}")
    parts = []
    for name in DETECTORS:
        params = config.get(name, {})
        if params is False:
            continue
        parts.append(run(name, frame, **(params if isinstance(params, Mapping) else {})))
    out = pl.concat(parts) if parts else empty_findings()
    if allowlist is not None:
        out = apply_allowlist(out, frame, allowlist, keep_suppressed=keep_suppressed)
    found: pl.DataFrame | pd.DataFrame = return_like(out, kind)
    return found
