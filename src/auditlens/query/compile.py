"""Compile a :class:`~auditlens.query.filters.Filter` into a SQLAlchemy ``WHERE`` clause.

Every value becomes a bound parameter. Wildcards in actions (``webhook.*``) and
emails (``*@company.com``) become ``LIKE`` patterns with ``%`` and ``_`` escaped;
CIDR blocks become a range on the sortable ``ip_key`` column; text search uses the
SQLite FTS5 trigram table (``audit_search``) or the PostgreSQL ``pg_trgm`` index over
each entry's search document (see :mod:`auditlens.store.backend`): case-insensitive
(non-ASCII included), details as a user reads them, and a phrase within one field.
A filter over the limits of :func:`~auditlens.query.filters.check_limits` raises
:class:`~auditlens.errors.FilterError` before any SQL runs.

Example:
    >>> from auditlens.query.filters import Filter
    >>> from sqlalchemy.dialects import sqlite
    >>> clause = compile_filter(Filter.from_kwargs(actions="webhook.*"), "sqlite")
    >>> print(clause.compile(dialect=sqlite.dialect()))
    audit_entries.action LIKE ? ESCAPE '\\'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    and_,
    column,
    exists,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

from auditlens.fields import KEYWORDS, Keyword, Match
from auditlens.query.filters import Clause, Filter, check_limits
from auditlens.store.backend import SEARCH_FIELD_SEP, entries, search_fold, search_text_expr

__all__ = ["compile_filter", "like_escape"]

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_C = entries.c
_FTS = table(
    "audit_search",
    column("rowid"),
    column("actor_email"),
    column("resource_name"),
    column("action"),
    column("details"),
)
_FTS_DOCUMENT: ColumnElement[Any] = literal_column(
    "(" + " || char(31) || ".join(f"coalesce({name}, '')" for name in _FTS.c.keys()[1:]) + ")"
)
_TRIGRAM = 3  # FTS5 trigram matches need three characters; shorter text is matched with LIKE


def like_escape(value: str) -> str:
    r"""Escape ``\``, ``%`` and ``_`` so a value matches itself literally in ``LIKE … ESCAPE '\'``.

    Example:
        >>> like_escape("100%_off")
        '100\\%\\_off'
    """
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _pattern(value: str) -> str:
    return "*".join(like_escape(part) for part in value.split("*")).replace("*", "%")


def _eq_or_like(column: Any, value: str) -> ColumnElement[bool]:
    if "*" in value:
        return column.like(_pattern(value), escape="\\")  # type: ignore[no-any-return]
    return column == value  # type: ignore[no-any-return]


def _phrase(text: str) -> str:
    """An FTS5 phrase matching ``text`` literally."""
    return '"' + text.replace('"', '""') + '"'


def _search_ids(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return _C.id.in_(select(_FTS.c.rowid).where(*conditions))


def _match(query: str) -> ColumnElement[bool]:
    return literal_column("audit_search").op("MATCH")(query)


def _actor(value: str, dialect: str) -> ColumnElement[bool]:
    if _UUID_RE.match(value):
        return _C.actor_user_id == value
    if dialect == "sqlite" and not value.isascii():
        # SQLite's lower() folds ASCII only: compare with the folded copy in the search table,
        # its trigram index narrowing the candidates
        folded = search_fold(value) or ""
        column = _FTS.c.actor_email
        conditions = [_eq_or_like(column, folded)]
        pieces = [p for p in folded.split("*") if len(p) >= _TRIGRAM]
        if pieces:
            conditions.append(_match(" AND ".join(f"actor_email : {_phrase(p)}" for p in pieces)))
        return _search_ids(*conditions)
    by_email = _eq_or_like(func.lower(_C.actor_email), value)
    if "@" in value:
        return by_email
    # an actor without email (imported trails): ARNs, Okta ids, sshd:host:user, any case
    return or_(by_email, _eq_or_like(func.lower(_C.actor_user_id), value))


def _time(value: tuple[int | None, int | None], dialect: str) -> ColumnElement[bool]:
    lo, hi = value
    parts = []
    if lo is not None:
        parts.append(_C.ts >= lo)
    if hi is not None:
        parts.append(_C.ts <= hi)
    return and_(*parts) if parts else true()


def _ip(value: tuple[str, str], dialect: str) -> ColumnElement[bool]:
    lo, hi = value
    if lo == hi:
        return _C.ip_key == lo
    return _C.ip_key.between(lo, hi)


def _text(value: str, dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        # ILIKE folds case by the database collation; the separator between fields never
        # occurs in the pattern, so a phrase cannot match across two fields
        pattern = "%" + like_escape(value.replace(SEARCH_FIELD_SEP, " ")) + "%"
        return literal_column(search_text_expr()).ilike(pattern, escape="\\")
    folded = search_fold(value) or ""
    if len(folded) >= _TRIGRAM:
        return _search_ids(_match(_phrase(folded)))
    # fields joined by the separator no pattern contains: one bound parameter, one field
    pattern = "%" + like_escape(folded) + "%"
    return _search_ids(_FTS_DOCUMENT.like(pattern, escape="\\"))


def _text_by_time(value: str, dialect: str) -> ColumnElement[bool]:
    """:func:`_text` for a query that walks the time index (SQLite, the newest entries of a
    window): each row's folded search document is read by rowid and checked with ``instr``
    (the same substring within one field), instead of building the set of every match
    first — for a common term that set was most of the cost."""
    if dialect != "sqlite":
        return _text(value, dialect)
    folded = search_fold(value) or ""
    doc = _FTS.alias("doc")
    sep: ColumnElement[Any] = literal_column("char(31)")
    text_: ColumnElement[Any] = func.coalesce(doc.c.actor_email, "")
    for name in ("resource_name", "action", "details"):
        text_ = text_.op("||")(sep).op("||")(func.coalesce(doc.c[name], ""))
    return exists(
        select(literal_column("1"))
        .select_from(doc)
        .where(doc.c.rowid == _C.id, func.instr(text_, folded) > 0)
    )


def _word(value: tuple[str, str], dialect: str) -> ColumnElement[bool]:
    word, result = value
    return or_(_C.result == result, _text(word, dialect))


def _resource(value: str, dialect: str) -> ColumnElement[bool]:
    return or_(_C.resource_id == value, _C.resource_name == value)


def _column(keyword: Keyword) -> Callable[[str, str], ColumnElement[bool]]:
    column = _C[keyword.column]
    wildcards = keyword.match is Match.PATTERN

    def build(value: str, dialect: str) -> ColumnElement[bool]:
        return _eq_or_like(column, value) if wildcards else column == value

    return build


_ONE_COLUMN = (Match.CHOICE, Match.PATTERN, Match.CATEGORY, Match.EXACT, Match.ID)

_BUILDERS: dict[str, Callable[[Any, str], ColumnElement[bool]]] = {
    "time": _time,
    "actor": _actor,
    "ip": _ip,
    "text": _text,
    "word": _word,
    "resource": _resource,
    # keywords comparing one column (the field table says which and how)
    **{k.clause: _column(k) for k in KEYWORDS if k.match in _ONE_COLUMN},
}


def _clause(clause: Clause, dialect: str, text_by_time: bool = False) -> ColumnElement[bool]:
    build = _text_by_time if text_by_time and clause.field == "text" else _BUILDERS[clause.field]
    parts = [build(v, dialect) for v in clause.values]
    expr = or_(*parts) if len(parts) > 1 else (parts[0] if parts else false())
    if clause.negate:
        # NULL-safe negation: a NOT over a NULL column must still count as "not matching".
        return not_(func.coalesce(expr, false()))
    return expr


def compile_filter(flt: Filter, dialect: str, *, text_by_time: bool = False) -> ColumnElement[bool]:
    """The SQL condition for ``flt`` on the given dialect (``sqlite`` or ``postgresql``).

    ``text_by_time`` (SQLite) words text clauses for a query that walks the time index
    (the newest matches of a common term); the rows matched are the same.

    Raises:
        FilterError: ``flt`` is over a limit (:func:`~auditlens.query.filters.check_limits`).
    """
    check_limits(flt)
    if not flt.clauses:
        return true()
    return and_(*(_clause(c, dialect, text_by_time) for c in flt.clauses))
