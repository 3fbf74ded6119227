"""``FilterKeywords``: the keyword filters every read method accepts, as a ``TypedDict``.

``store.query(actor=…, last="7d")`` and its siblings take ``**filters:
Unpack[FilterKeywords]``, so a type checker and an IDE know each keyword and its value
type. The keys are :data:`auditlens.query.filters.FILTER_KEYWORDS` (a test keeps the two
equal); the meaning of each is documented on :meth:`auditlens.store.Store.query`.

Example:
    >>> import auditlens as al
    >>> from auditlens.query.keywords import FilterKeywords
    >>> wanted: FilterKeywords = {"actor": "jane@company.com", "last": "7d"}
    >>> al.open_store("sqlite://").count(**wanted)
    0
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import TypedDict

__all__ = ["FilterKeywords", "When"]

#: a point in time: a datetime (naive = UTC), a date, or an ISO 8601 string.
When = datetime | date | str

#: one value or several (OR).
_Values = str | Iterable[str]


class FilterKeywords(TypedDict, total=False):
    """Keyword filters; each is optional, ``None`` means "do not filter on it"."""

    start: When | None
    end: When | None
    last: str | timedelta | None
    actor: _Values | None
    actor_type: _Values | None
    actions: _Values | None
    action: _Values | None
    category: _Values | None
    resource: _Values | None
    resource_type: _Values | None
    resource_id: _Values | None
    resource_name: _Values | None
    result: _Values | None
    organization_id: _Values | None
    application_id: _Values | None
    audit_id: _Values | None
    ip: _Values | None
    text: _Values | None
