"""Which entries: keyword filters, the search syntax, and their SQL compilation."""

from __future__ import annotations

from auditlens.query.compile import compile_filter
from auditlens.query.filters import FILTER_KEYWORDS, Clause, Filter, parse_duration, parse_when
from auditlens.query.search import QUALIFIERS, parse_search

__all__ = [
    "FILTER_KEYWORDS",
    "QUALIFIERS",
    "Clause",
    "Filter",
    "compile_filter",
    "parse_duration",
    "parse_search",
    "parse_when",
]
