"""The search-bar syntax, parsed into a :class:`~auditlens.query.filters.Filter`.

Grammar (whitespace separates terms)::

    query      := term*
    term       := ["-"] (qualifier ":" value | '"' text '"' | word)
    value      := '"' text '"' | chars-without-space   (commas separate alternatives)

Qualifiers: ``actor``, ``action``, ``result``, ``created`` (alias ``date``), ``last``,
``resource`` (id or name), ``type`` (resource type), ``resource_id``, ``name``
(resource name), ``ip`` (address or CIDR), ``org``, ``app``, ``category``,
``actor_type``, ``id`` (audit id), ``text``.

Rules: the same qualifier repeated is OR (``result:failure result:partial``), different
qualifiers are AND, ``-`` negates a term, and bare words are text searches that must
all match. ``created:`` comparisons (``>=2025-01-01``, ``<2025-02-01``) always AND so
that two of them make a range; ``created:2025-01-01..2025-01-31`` is inclusive.

Limits (:class:`QuerySyntaxError` naming them): at most
:data:`~auditlens.query.filters.MAX_CLAUSES` terms, :data:`~auditlens.query.filters.MAX_VALUES`
values in all (comma lists included), :data:`~auditlens.query.filters.MAX_VALUE_CHARS`
characters per value and ``last:`` up to :data:`~auditlens.query.filters.MAX_DURATION`.

Bare words do what a user means: an email is an actor (``jane@company.com``), an
action name or pattern is an action (``webhook.created``, ``webhook.*``), and
``failed``/``success``/``partial`` match the result *or* the text (so ``failed``
finds failures and ``auth.failed``).

Example:
    >>> q = 'actor:jane@company.com action:webhook.* -result:success "Production Webhook"'
    >>> f = parse_search(q)
    >>> [(c.field, c.values, c.negate) for c in f.clauses]  # doctest: +NORMALIZE_WHITESPACE
    [('actor', ('jane@company.com',), False), ('action', ('webhook.*',), False),
     ('result', ('success',), True), ('text', ('Production Webhook',), False)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auditlens.errors import FilterError, QuerySyntaxError
from auditlens.fields import QUALIFIERS as FIELD_QUALIFIERS
from auditlens.query.filters import (
    MAX_CLAUSES,
    MAX_VALUE_CHARS,
    MAX_VALUES,
    Clause,
    Filter,
    parse_duration,
    parse_when,
)
from auditlens.schema import ACTIONS, CATEGORY_OF_PREFIX

__all__ = ["QUALIFIERS", "parse_search"]

#: qualifier as typed → keyword filter it maps to (``created`` and ``date``: a time range).
QUALIFIERS: dict[str, str] = {"created": "created", "date": "created", **FIELD_QUALIFIERS}

_RESULT_WORDS = {
    "failed": "failure",
    "failure": "failure",
    "failures": "failure",
    "fail": "failure",
    "success": "success",
    "succeeded": "success",
    "successful": "success",
    "partial": "partial",
}
_EMAIL_RE = re.compile(r"^[^@\s:]+@[^@\s]+\.[^@\s]+$")
_ACTION_WORD_RE = re.compile(r"^([a-z_]+)\.([a-z_]+|\*)$")
_QUALIFIER_RE = re.compile(r"([A-Za-z_]+):")  # used with .match(text, pos): no ^
_COMPARE_RE = re.compile(r"^(>=|<=|>|<)(.+)$")


@dataclass
class _Term:
    negate: bool
    key: str | None  # keyword filter name, None for a bare word
    value: str
    quoted: bool
    pos: int  # position of the value, for errors


def _tokenize(query: str) -> list[_Term]:
    terms: list[_Term] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        start = i
        negate = False
        if query[i] == "-" and i + 1 < n and not query[i + 1].isspace():
            negate = True
            i += 1
        key: str | None = None
        m = _QUALIFIER_RE.match(query, i) if query[i] != '"' else None
        if m:
            name = m.group(1).lower()
            if name not in QUALIFIERS:
                known = ", ".join(sorted(set(QUALIFIERS)))
                raise QuerySyntaxError(
                    f"unknown qualifier {m.group(1)!r} (known: {known}; quote text that "
                    "contains ':')",
                    query,
                    i,
                )
            key = QUALIFIERS[name]
            i = m.end()
            if i >= n or query[i].isspace():
                raise QuerySyntaxError(f"qualifier '{name}:' needs a value", query, i)
        if query[i] == '"':
            close = query.find('"', i + 1)
            if close < 0:
                raise QuerySyntaxError("unclosed quote", query, i)
            value = query[i + 1 : close]
            if not value.strip():
                raise QuerySyntaxError("empty quoted text", query, i)
            terms.append(_Term(negate, key, value, True, i))
            i = close + 1
            if i < n and not query[i].isspace():
                raise QuerySyntaxError("expected a space after the closing quote", query, i)
            continue
        j = i
        while j < n and not query[j].isspace():
            if query[j] == '"':
                raise QuerySyntaxError("a quote must start a term or a qualifier's value", query, j)
            j += 1
        if j == start + 1 and negate:  # a lone '-' cannot happen (checked above)
            raise QuerySyntaxError("'-' must be followed by a term", query, start)
        terms.append(_Term(negate, key, query[i:j], False, i))
        i = j
    return terms


def _time_range(term: _Term, query: str, now: datetime) -> tuple[int | None, int | None]:
    v = term.value.strip()
    try:
        if term.key == "last":
            since = now - parse_duration(v)
            return parse_when(since), None
        m = _COMPARE_RE.match(v)
        if m:
            op, when = m.groups()
            if op == ">=":
                return parse_when(when), None
            if op == ">":
                return parse_when(when, end_of_day=True) + 1, None
            if op == "<=":
                return None, parse_when(when, end_of_day=True)
            return None, parse_when(when) - 1
        if ".." in v:
            a, b = v.split("..", 1)
            lo = parse_when(a) if a else None
            hi = parse_when(b, end_of_day=True) if b else None
            if lo is None and hi is None:
                raise FilterError("a range needs at least one end, e.g. 2025-01-01..2025-01-31")
            if lo is not None and hi is not None and lo > hi:
                raise FilterError("the range ends before it starts")
            return lo, hi
        return parse_when(v), parse_when(v, end_of_day=True)
    except FilterError as exc:
        raise QuerySyntaxError(str(exc), query, term.pos) from None


def _classify_word(word: str) -> tuple[str, Any]:
    """Keyword filter and value a bare word stands for."""
    low = word.lower()
    if _EMAIL_RE.match(word):
        return "actor", low
    m = _ACTION_WORD_RE.match(low)
    if m and (low in ACTIONS or m.group(1) in CATEGORY_OF_PREFIX):
        return "actions", low
    if low in _RESULT_WORDS:
        return "word", (word, _RESULT_WORDS[low])
    return "text", word


def parse_search(query: str, *, now: datetime | None = None) -> Filter:
    """Parse a search-bar query into a :class:`Filter`.

    Raises:
        QuerySyntaxError: with the position of the first problem.

    Example:
        >>> [(c.field, c.values) for c in parse_search("failed").clauses]
        [('word', (('failed', 'failure'),))]
    """
    if not isinstance(query, str):
        raise QuerySyntaxError(f"a query must be text, got {type(query).__name__}", str(query), 0)
    now = now or datetime.now(UTC)
    grouped: dict[tuple[str, bool], list[Any]] = {}
    order: list[tuple[str, bool]] = []
    separate: list[Clause] = []

    def add(key: str, negate: bool, values: list[Any]) -> None:
        slot = (key, negate)
        if slot not in grouped:
            grouped[slot] = []
            order.append(slot)
        grouped[slot].extend(values)

    value_count = 0
    for number, term in enumerate(_tokenize(query), 1):
        if number > MAX_CLAUSES:
            raise QuerySyntaxError(
                f"too many terms: the limit is {MAX_CLAUSES:,} per query", query, term.pos
            )
        pieces = [term.value] if term.quoted else term.value.split(",")
        if any(len(p) > MAX_VALUE_CHARS for p in pieces):
            raise QuerySyntaxError(
                f"a value longer than the limit of {MAX_VALUE_CHARS:,} characters", query, term.pos
            )
        value_count += len(pieces)
        if value_count > MAX_VALUES:
            raise QuerySyntaxError(
                f"too many values: the limit is {MAX_VALUES:,} per query (comma lists included)",
                query,
                term.pos,
            )
        if term.key is None:
            if term.quoted:
                separate.append(Clause("text", (term.value,), term.negate))
                continue
            key, value = _classify_word(term.value)
            if key in ("text", "word"):
                separate.append(Clause(key, (value,), term.negate))
            else:
                add(key, term.negate, [value])
        elif term.key in ("created", "last"):
            rng = _time_range(term, query, now)
            is_compare = term.key == "last" or bool(_COMPARE_RE.match(term.value.strip()))
            if is_compare:
                separate.append(Clause("time", (rng,), term.negate))
            else:
                add("time", term.negate, [rng])
        elif term.key == "text":
            separate.append(Clause("text", (term.value,), term.negate))
        else:
            values = [term.value] if term.quoted else [v for v in term.value.split(",") if v]
            if not values:
                raise QuerySyntaxError(f"'{term.key}' needs a value", query, term.pos)
            add(term.key, term.negate, values)

    clauses: list[Clause] = []
    for key, negate in order:
        values = grouped[(key, negate)]
        if key == "time":
            clauses.append(Clause("time", tuple(values), negate))
            continue
        try:
            built = Filter.coerce({key: values})
        except FilterError as exc:
            raise QuerySyntaxError(str(exc), query, _find(query, key, values)) from None
        clauses.extend(Clause(c.field, c.values, negate) for c in built.clauses)
    return Filter(tuple(clauses) + tuple(separate))


def _find(query: str, key: str, values: list[Any]) -> int:
    for v in values:
        pos = query.find(str(v))
        if pos >= 0:
            return pos
    return 0
