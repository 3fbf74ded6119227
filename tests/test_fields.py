"""The field table is the one declaration: every derived list agrees with it."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, String, Text

import auditlens as al
from auditlens import fields
from auditlens.cli.output import _CSV_FIELDS
from auditlens.export.writers import DEFAULT_FIELDS, resolve_fields
from auditlens.fields import FIELD, FIELDS, FILTER_KEYWORDS, KEYWORDS, Match, Role
from auditlens.frames import FRAME_SCHEMA
from auditlens.query import compile as compile_module
from auditlens.query.filters import FIELDS as CLAUSE_FIELDS
from auditlens.query.filters import Filter
from auditlens.query.search import QUALIFIERS, parse_search
from auditlens.schema import ActorType, Result
from auditlens.store.tables import entries

ROOT = Path(__file__).resolve().parents[1]


def test_sql_columns_come_from_the_table() -> None:
    assert entries.c.keys() == ["id", *(f.column for f in FIELDS)]
    for f in FIELDS:
        col = entries.c[f.column]
        assert col.nullable == f.nullable, f.column
        assert bool(col.unique) == f.unique, f.column
        kind = {"string": String, "text": Text, "bigint": BigInteger}[f.sql]
        assert type(col.type) is kind, f.column
        assert getattr(col.type, "length", None) == f.length, f.column


def test_frame_layout_comes_from_the_table() -> None:
    assert list(al.COLUMNS) == FRAME_SCHEMA.names == list(fields.FRAME_COLUMNS)
    assert str(FRAME_SCHEMA.field("timestamp").type) == "timestamp[ms, tz=UTC]"
    assert str(FRAME_SCHEMA.field("seq").type) == "int64"
    assert "ip_key" not in al.COLUMNS and "id" not in al.COLUMNS


def test_rows_and_interchange_shape() -> None:
    row = al.schema.normalize_entry(
        {"actor": {"type": "system"}, "action": "auth.login", "result": "success",
         "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"}
    )  # fmt: skip
    assert tuple(row) == fields.ROW_FIELDS == al.schema.ROW_FIELDS
    entry = al.schema.row_to_entry(row)
    assert tuple(entry) == fields.ENTRY_FIELDS == al.schema.ENTRY_FIELDS
    assert not [f for f in FIELDS if f.role is Role.CHAIN and f.column in row]


def _tool_fields() -> list[str]:
    tree = ast.parse((ROOT / "tools" / "verify_bundle_stdlib.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FIELDS":
            return [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError("tools/verify_bundle_stdlib.py has no FIELDS list")


def test_hashed_fields_match_the_published_spec_and_the_independent_verifier() -> None:
    spec = (ROOT / "docs" / "CHAIN.md").read_text()
    order = re.search(r"ORDER = (\[.*?\])", spec, re.S)
    assert order is not None
    published = ast.literal_eval(order.group(1))
    assert list(al.chain.CONTENT_FIELDS) == published == _tool_fields()
    positions = sorted(f.hash_position for f in FIELDS if f.hash_position)
    assert positions == list(range(1, len(published) + 1))


def test_keyword_filters_match_from_kwargs() -> None:
    params = set(inspect.signature(Filter.from_kwargs).parameters) - {"now"}
    assert params == set(FILTER_KEYWORDS) == set(al.query.FILTER_KEYWORDS)
    assert len(FILTER_KEYWORDS) == len(set(FILTER_KEYWORDS))


def test_every_clause_a_keyword_builds_compiles() -> None:
    builders = compile_module._BUILDERS
    assert set(builders) == set(CLAUSE_FIELDS)
    for k in KEYWORDS:
        assert k.clause in builders, k.name
        if k.column:
            assert k.column in entries.c, k.name


@pytest.mark.parametrize("keyword", [k for k in KEYWORDS if k.match is not Match.RANGE])
def test_each_keyword_filter_builds_a_clause(keyword: fields.Keyword) -> None:
    value = {
        Match.CHOICE: ActorType.USER.value if keyword.name == "actor_type" else Result.SUCCESS,
        Match.PATTERN: "webhook.*",
        Match.CATEGORY: "auth",
        Match.CIDR: "10.0.0.0/8",
    }.get(keyword.match, "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11")
    [clause] = Filter.from_kwargs(**{keyword.name: value}).clauses
    assert clause.field == keyword.clause


def test_search_qualifiers_come_from_the_table() -> None:
    derived = {q: k.name for k in KEYWORDS for q in k.qualifiers}
    assert {q: v for q, v in QUALIFIERS.items() if v != "created"} == derived
    assert set(QUALIFIERS.values()) - {"created"} <= set(FILTER_KEYWORDS)
    # every qualifier parses into the clause of its keyword
    for qualifier, name in derived.items():
        if name in ("last", "text"):
            continue
        keyword = fields.KEYWORD[name]
        value = {Match.CIDR: "10.0.0.1", Match.CHOICE: "success", Match.CATEGORY: "auth"}.get(
            keyword.match, "webhook.created"
        )
        if keyword.name == "actor_type":
            value = "user"
        [clause] = parse_search(f"{qualifier}:{value}").clauses
        assert clause.field == keyword.clause, qualifier


def test_export_and_csv_defaults_come_from_the_table() -> None:
    assert list(fields.EXPORT_DEFAULTS) == DEFAULT_FIELDS
    assert _CSV_FIELDS == fields.CSV_FIELDS
    assert _CSV_FIELDS[:2] == ("timestamp", "audit_id")
    for path in (*fields.EXPORT_PATHS, *_CSV_FIELDS):
        [(name, column, _)] = resolve_fields([path])
        assert name == path and column in al.COLUMNS
    assert FIELD["resource_name"].path == "resource.name"


def test_entry_doc_holds_the_generated_field_table() -> None:
    doc = (ROOT / "docs" / "ENTRY.md").read_text()
    assert fields.markdown_table() in doc, (
        "docs/ENTRY.md's field table is out of date: paste auditlens.fields.markdown_table()"
    )
