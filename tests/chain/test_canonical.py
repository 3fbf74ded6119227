"""Canonical bytes v1: the documented example, injectivity, and columnar == per-row."""

from __future__ import annotations

import hashlib

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlens.chain import (
    CONTENT_FIELDS,
    GENESIS_HASH,
    canonical_bytes,
    content_hash,
    content_hashes,
    entry_hash,
    link_hash,
)
from auditlens.chain.canonical import chain_rows, content_tail

BASE = {
    "organization_id": "o",
    "seq": 1,
    "audit_id": "a",
    "ts": 5,
    "actor_type": "system",
    "actor_user_id": None,
    "actor_email": None,
    "action": "auth.login",
    "resource_type": None,
    "resource_id": None,
    "resource_name": None,
    "application_id": None,
    "ip_address": None,
    "user_agent": None,
    "details": "{}",
    "result": "success",
}


def test_spec_example_bytes() -> None:
    assert canonical_bytes(BASE) == (
        b"18:auditlens.entry.v1,1:o,1:1,1:a,1:5,6:system,~~10:auth.login,~~~~~~2:{},7:success,"
    )


def test_entry_hash_is_link_of_prev_and_content() -> None:
    row = {**BASE, "prev_hash": GENESIS_HASH}
    expected = hashlib.sha256(
        bytes(32) + hashlib.sha256(canonical_bytes(BASE)).digest()
    ).hexdigest()
    assert entry_hash(row) == expected == link_hash(GENESIS_HASH, content_hash(BASE))


def test_framing_keeps_field_boundaries() -> None:
    # moving characters between neighbouring fields must change the bytes
    a = {**BASE, "resource_type": "ab", "resource_id": "c"}
    b = {**BASE, "resource_type": "a", "resource_id": "bc"}
    c = {**BASE, "resource_type": "", "resource_id": None}
    d = {**BASE, "resource_type": None, "resource_id": ""}
    assert len({canonical_bytes(x) for x in (a, b, c, d)}) == 4


def test_every_field_is_covered() -> None:
    for field in CONTENT_FIELDS:
        changed = {**BASE, field: "x" if BASE[field] != "x" else "y"}
        assert content_hash(changed) != content_hash(BASE), field


text_or_none = st.one_of(st.none(), st.text(max_size=20))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                **{f: text_or_none for f in CONTENT_FIELDS if f not in ("seq", "ts")},
                "seq": st.integers(1, 2**40),
                "ts": st.integers(0, 2**45),
            }
        ),
        min_size=1,
        max_size=20,
    )
)
def test_columnar_hashes_equal_per_row_hashes(rows: list[dict]) -> None:
    frame = pl.DataFrame(
        rows, schema={f: (pl.Int64 if f in ("seq", "ts") else pl.Utf8) for f in CONTENT_FIELDS}
    )
    assert content_hashes(frame) == [content_hash(r) for r in rows]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                **{f: text_or_none for f in CONTENT_FIELDS if f not in ("seq", "ts")},
                "organization_id": st.sampled_from(["o1", "o2", "ö3"]),
                "ts": st.integers(0, 2**45),
            }
        ),
        min_size=1,
        max_size=20,
    ),
    st.integers(0, 2**40),
)
def test_chaining_from_tails_equals_chaining_rows(rows: list[dict], start: int) -> None:
    # one organization continues a chain, the others start one
    head = hashlib.sha256(b"some earlier entry").hexdigest()
    heads = {"o1": (start, head)}
    seqs = {"o1": start}
    tips = {"o1": head}
    expected = []
    for row in rows:
        org = row["organization_id"]
        seq = seqs[org] = seqs.get(org, 0) + 1
        prev = tips.get(org, GENESIS_HASH)
        tips[org] = entry_hash({**row, "seq": seq, "prev_hash": prev})
        expected.append((org, seq, prev, tips[org]))
    got = chain_rows([(r["organization_id"],) for r in rows], map(content_tail, rows), 0, heads)
    assert got == expected


def test_content_tail_is_the_canonical_bytes_after_organization_and_seq() -> None:
    row = {**BASE, "details": '{"ü":"✓"}', "ip_address": "198.51.100.7"}
    assert canonical_bytes(row) == b"18:auditlens.entry.v1,1:o,1:1," + content_tail(row)
