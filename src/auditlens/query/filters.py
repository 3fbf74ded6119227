"""Filters: the one in-memory form of "which entries", shared by keyword filters and search.

A :class:`Filter` is an AND of :class:`Clause` objects; a clause is an OR of values
of one field, optionally negated. ``store.query(actor=..., last="7d")`` and
``store.search("actor:... created:>=...")`` both build a Filter, which
:mod:`auditlens.query.compile` turns into a SQL ``WHERE`` clause.

Example:
    >>> f = Filter.from_kwargs(actor="jane@company.com", actions=["webhook.*"], result="failure")
    >>> [(c.field, c.values) for c in f.clauses]
    [('actor', ('jane@company.com',)), ('action', ('webhook.*',)), ('result', ('failure',))]
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from auditlens.errors import FilterError
from auditlens.fields import FILTER_KEYWORDS, KEYWORDS, Keyword, Match
from auditlens.schema import CATEGORY_OF_PREFIX, ActorType, Result, ip_key

__all__ = [
    "FILTER_KEYWORDS",
    "MAX_CLAUSES",
    "MAX_DURATION",
    "MAX_VALUES",
    "MAX_VALUE_CHARS",
    "Clause",
    "Filter",
    "check_limits",
    "cidr_range",
    "parse_duration",
    "parse_when",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_IDENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_ACTION_PATTERN_RE = re.compile(r"^[a-z*][a-z0-9_*]*(\.[a-z0-9_*]+)?$")

#: the longest duration ``last`` accepts: 1,000 years (a time before it is out of range).
MAX_DURATION = timedelta(days=365_250)
#: clauses in one filter: terms of one search query, e.g. words that must all match.
MAX_CLAUSES = 100
#: values in one filter, every OR list (``actor=[…]``, ``result:a,b``) counted together.
#: A value binds at most two SQL parameters; the ADBC SQLite driver (1.13) crashes on a
#: statement binding ~390 after another statement, so this keeps well below that.
MAX_VALUES = 150
#: characters in one value (a word, a quoted phrase, an email…).
MAX_VALUE_CHARS = 1_000

#: every field a clause may name: one per keyword filter (:data:`auditlens.fields.KEYWORDS`),
#: and ``word`` (a bare word of a search that may be a result or text).
FIELDS = frozenset({"word", *(k.clause for k in KEYWORDS)})


@dataclass(frozen=True)
class Clause:
    """``field`` matches any of ``values`` (OR); ``negate`` turns it into NOT.

    Values by field: ``time`` and ``ip`` hold ``(low, high)`` inclusive ranges
    (epoch ms; 32-hex-digit IP keys), ``word`` holds ``(text, result)`` pairs, the
    rest hold strings.
    """

    field: str
    values: tuple[Any, ...]
    negate: bool = False


@dataclass(frozen=True)
class Filter:
    """An AND of clauses. Empty means "every entry"."""

    clauses: tuple[Clause, ...] = field(default_factory=tuple)

    def __and__(self, other: Filter) -> Filter:
        return Filter(self.clauses + other.clauses)

    def __bool__(self) -> bool:
        return bool(self.clauses)

    @classmethod
    def from_kwargs(
        cls,
        *,
        start: object = None,
        end: object = None,
        last: str | timedelta | None = None,
        actor: str | Iterable[str] | None = None,
        actor_type: str | Iterable[str] | None = None,
        actions: str | Iterable[str] | None = None,
        action: str | Iterable[str] | None = None,
        category: str | Iterable[str] | None = None,
        resource: str | Iterable[str] | None = None,
        resource_type: str | Iterable[str] | None = None,
        resource_id: str | Iterable[str] | None = None,
        resource_name: str | Iterable[str] | None = None,
        result: str | Iterable[str] | None = None,
        organization_id: str | Iterable[str] | None = None,
        application_id: str | Iterable[str] | None = None,
        audit_id: str | Iterable[str] | None = None,
        ip: str | Iterable[str] | None = None,
        text: str | Iterable[str] | None = None,
        now: datetime | None = None,
    ) -> Filter:
        """Build a filter from keyword arguments (see ``Store.query`` for their meaning)."""
        given = locals()  # the keyword arguments by name: FILTER_KEYWORDS (a test keeps them equal)
        clauses: list[Clause] = []
        lo = parse_when(start, field="start") if start is not None else None
        hi = parse_when(end, end_of_day=True, field="end") if end is not None else None
        if last is not None:
            span = parse_duration(last) if isinstance(last, str) else last
            if span > MAX_DURATION:
                raise FilterError(_too_long(str(last)))
            ref = now or datetime.now(UTC)
            since = (ref - span - _EPOCH) // _MS
            lo = since if lo is None else max(lo, since)
        if lo is not None or hi is not None:
            if lo is not None and hi is not None and lo > hi:
                raise FilterError(
                    "start is after end: nothing can match; swap them or widen the range"
                )
            clauses.append(Clause("time", ((lo, hi),)))
        for keyword in KEYWORDS:
            value = given[keyword.name]
            if value is None or keyword.match is Match.RANGE:
                continue
            if keyword.match is Match.TEXT:
                clauses.extend(Clause("text", (t,)) for t in _strings(value, keyword.name))
            else:
                clauses.append(Clause(keyword.clause, _VALUES[keyword.match](value, keyword)))
        flt = cls(tuple(clauses))
        check_limits(flt)
        return flt

    @classmethod
    def coerce(cls, value: Filter | Mapping[str, Any] | None) -> Filter:
        """A Filter from a Filter, a mapping of keyword filters, or None (everything)."""
        if value is None:
            return cls()
        if isinstance(value, Filter):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - set(FILTER_KEYWORDS)
            if unknown:
                raise FilterError(
                    f"unknown filter(s) {', '.join(sorted(unknown))}; "
                    f"known: {', '.join(FILTER_KEYWORDS)}"
                )
            return cls.from_kwargs(**value)
        raise FilterError(f"expected a Filter or a mapping of filters, got {type(value).__name__}")


def _strings(value: str | Iterable[str], name: str, *, lower: bool = False) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    if len(items) > MAX_VALUES:
        raise FilterError(
            f"filter {name!r} has {len(items):,} values; the limit is {MAX_VALUES:,} per filter"
        )
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise FilterError(f"filter {name!r} needs non-empty strings, got {item!r}")
        if len(item) > MAX_VALUE_CHARS:
            raise FilterError(
                f"filter {name!r}: a value of {len(item):,} characters is over the limit of "
                f"{MAX_VALUE_CHARS:,}"
            )
        out.append(item.strip().lower() if lower else item.strip())
    if not out:
        raise FilterError(f"filter {name!r} got an empty list; pass None to not filter")
    return tuple(out)


def _enum(
    value: str | Iterable[str], name: str, kind: type[ActorType] | type[Result]
) -> tuple[str, ...]:
    allowed = [m.value for m in kind]
    values = _strings(value, name, lower=True)
    for v in values:
        if v not in allowed:
            raise FilterError(f"filter {name!r}: {v!r} is not one of {', '.join(allowed)}")
    return values


def _actions(value: str | Iterable[str], name: str) -> tuple[str, ...]:
    values = _strings(value, name, lower=True)
    for v in values:
        if not _ACTION_PATTERN_RE.match(v):
            raise FilterError(
                f"filter {name!r}: {v!r} is not an action or pattern like 'webhook.created' "
                "or 'webhook.*'"
            )
    return values


def _categories(value: str | Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for v in _strings(value, "category", lower=True):
        v = CATEGORY_OF_PREFIX.get(v, v)
        if not _IDENT_RE.match(v):
            raise FilterError(f"filter 'category': {v!r} is not a category name")
        out.append(v)
    return tuple(out)


_CHOICES: dict[str, type[ActorType] | type[Result]] = {"actor_type": ActorType, "result": Result}

#: how each kind of keyword filter reads its values (the field table names the kind).
_VALUES: dict[Match, Callable[[Any, Keyword], tuple[Any, ...]]] = {
    Match.ACTOR: lambda v, k: _strings(v, k.name, lower=True),
    Match.CHOICE: lambda v, k: _enum(v, k.name, _CHOICES[k.column]),
    Match.PATTERN: lambda v, k: _actions(v, k.name),
    Match.CATEGORY: lambda v, k: _categories(v),
    Match.EXACT: lambda v, k: _strings(v, k.name),
    Match.ID_OR_NAME: lambda v, k: _strings(v, k.name),
    Match.ID: lambda v, k: _strings(v, k.name, lower=True),
    Match.CIDR: lambda v, k: tuple(cidr_range(x) for x in _strings(v, k.name)),
}


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``24h``, ``7d``, ``2w``, ``1h30m`` into a timedelta.

    Example:
        >>> parse_duration("1h30m")
        datetime.timedelta(seconds=5400)
    """
    s = text.strip().lower().replace(" ", "")
    pos = 0
    total = 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not s or pos != len(s) or total <= 0:
        raise FilterError(
            f"not a duration: {text!r}; use a number and a unit (ms, s, m, h, d, w), e.g. 24h or 7d"
        )
    if total > MAX_DURATION.total_seconds():
        raise FilterError(_too_long(text))
    return timedelta(seconds=total)


def _too_long(text: str) -> str:
    return (
        f"duration {text!r} is over the limit of {MAX_DURATION.days:,}d (1,000 years); "
        "to search everything, leave the time out"
    )


def check_limits(flt: Filter) -> None:
    """Refuse a filter too large to run: more than :data:`MAX_CLAUSES` clauses, more than
    :data:`MAX_VALUES` values in all, or a value longer than :data:`MAX_VALUE_CHARS`.

    Raises:
        FilterError: naming the limit.

    Example:
        >>> check_limits(Filter((Clause("text", ("x",)),) * (MAX_CLAUSES + 1)))
        Traceback (most recent call last):
        ...
        auditlens.errors.FilterError: the filter has 101 terms; the limit is 100
    """
    if len(flt.clauses) > MAX_CLAUSES:
        raise FilterError(
            f"the filter has {len(flt.clauses):,} terms; the limit is {MAX_CLAUSES:,}"
        )
    total = sum(len(c.values) for c in flt.clauses)
    if total > MAX_VALUES:
        raise FilterError(f"the filter has {total:,} values; the limit is {MAX_VALUES:,}")
    for clause in flt.clauses:
        for value in clause.values:
            text = value[0] if clause.field == "word" else value
            if isinstance(text, str) and len(text) > MAX_VALUE_CHARS:
                raise FilterError(
                    f"a {clause.field} value of {len(text):,} characters is over the limit of "
                    f"{MAX_VALUE_CHARS:,}"
                )


def parse_when(value: object, *, end_of_day: bool = False, field: str = "time") -> int:
    """A point in time as UTC epoch milliseconds.

    Accepts datetimes (naive ones are UTC), dates and ISO 8601 strings. A date
    alone means the start of that day (UTC), or its last millisecond with
    ``end_of_day=True`` (so ``end="2025-01-31"`` includes the whole 31st).

    Example:
        >>> parse_when("2025-01-31", end_of_day=True) - parse_when("2025-01-31")
        86399999
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time.max if end_of_day else time.min)
    elif isinstance(value, str):
        s = value.strip()
        try:
            if len(s) == 10:
                d = date.fromisoformat(s)
                dt = datetime.combine(d, time.max if end_of_day else time.min)
            else:
                dt = datetime.fromisoformat(s)
        except ValueError:
            raise FilterError(
                f"{field}: {value!r} is not a date or ISO 8601 time (e.g. 2025-01-31 or "
                "2025-01-31T12:00:00Z)"
            ) from None
    else:
        raise FilterError(f"{field}: expected a date, datetime or ISO string, got {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _MS


def cidr_range(text: str) -> tuple[str, str]:
    """The inclusive ``(low, high)`` IP-key range of an address or CIDR block.

    Example:
        >>> lo, hi = cidr_range("10.0.0.0/8")
        >>> lo[-8:], hi[-8:]
        ('0a000000', '0affffff')
    """
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise FilterError(
            f"ip: {text!r} is not an IP address or CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32)"
        ) from None
    return ip_key(str(net.network_address)), ip_key(str(net.broadcast_address))
