"""Compile a :class:`~auditlens.query.filters.Filter` into a SQLAlchemy ``WHERE`` clause.

Every value becomes a bound parameter. Wildcards in actions (``webhook.*``) and
emails (``*@company.com``) become ``LIKE`` patterns with ``%`` and ``_`` escaped;
CIDR blocks become a range on the sortable ``ip_key`` column; text search uses the
SQLite FTS5 trigram index (``audit_fts``) or the PostgreSQL ``pg_trgm`` index.

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

from sqlalchemy import and_, column, false, func, literal_column, not_, or_, select, table, true
from sqlalchemy.sql.elements import ColumnElement

from auditlens.query.filters import Clause, Filter
from auditlens.store.tables import entries, search_text_expr

__all__ = ["compile_filter", "like_escape"]

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_C = entries.c
_FTS = table("audit_fts", column("rowid"))


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


def _actor(value: str, dialect: str) -> ColumnElement[bool]:
    if _UUID_RE.match(value):
        return _C.actor_user_id == value
    return _eq_or_like(func.lower(_C.actor_email), value)


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
        return literal_column(search_text_expr()).ilike("%" + like_escape(value) + "%", escape="\\")
    if len(value) >= 3:  # FTS5 trigram needs three characters; shorter text falls back to LIKE
        phrase = '"' + value.replace('"', '""') + '"'
        sub = select(_FTS.c.rowid).where(literal_column("audit_fts").op("MATCH")(phrase))
        return _C.id.in_(sub)
    pattern = "%" + like_escape(value.lower()) + "%"
    return or_(
        *(
            func.lower(func.coalesce(col, "")).like(pattern, escape="\\")
            for col in (_C.actor_email, _C.resource_name, _C.action, _C.details)
        )
    )


def _word(value: tuple[str, str], dialect: str) -> ColumnElement[bool]:
    word, result = value
    return or_(_C.result == result, _text(word, dialect))


def _resource(value: str, dialect: str) -> ColumnElement[bool]:
    return or_(_C.resource_id == value, _C.resource_name == value)


def _column(name: str) -> Callable[[str, str], ColumnElement[bool]]:
    column = _C[name]

    def build(value: str, dialect: str) -> ColumnElement[bool]:
        return _eq_or_like(column, value) if name == "action" else column == value

    return build


_BUILDERS: dict[str, Callable[[Any, str], ColumnElement[bool]]] = {
    "time": _time,
    "actor": _actor,
    "ip": _ip,
    "text": _text,
    "word": _word,
    "resource": _resource,
    **{
        name: _column(name)
        for name in (
            "actor_type",
            "action",
            "category",
            "resource_type",
            "resource_id",
            "resource_name",
            "result",
            "organization_id",
            "application_id",
            "audit_id",
        )
    },
}


def _clause(clause: Clause, dialect: str) -> ColumnElement[bool]:
    build = _BUILDERS[clause.field]
    parts = [build(v, dialect) for v in clause.values]
    expr = or_(*parts) if len(parts) > 1 else (parts[0] if parts else false())
    if clause.negate:
        # NULL-safe negation: a NOT over a NULL column must still count as "not matching".
        return not_(func.coalesce(expr, false()))
    return expr


def compile_filter(flt: Filter, dialect: str) -> ColumnElement[bool]:
    """The SQL condition for ``flt`` on the given dialect (``sqlite`` or ``postgresql``)."""
    if not flt.clauses:
        return true()
    return and_(*(_clause(c, dialect) for c in flt.clauses))
