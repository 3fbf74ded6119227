"""Canonical bytes of an audit entry (``auditlens.entry.v1``) and the chain link.

Two hashes make one link (``docs/CHAIN.md`` is the normative text):

* ``content_hash = SHA-256(canonical_bytes(entry))`` — the version tag followed by one
  netstring (``<decimal byte length>:<UTF-8 bytes>,``) per field of
  :data:`CONTENT_FIELDS`, in that order; a null field is the single byte ``~``. Nothing
  is re-serialised: ``details`` is the stored compact JSON text and the timestamp is
  the decimal count of UTC milliseconds.
* ``entry_hash = SHA-256(prev_hash ‖ content_hash)`` over the 32 raw bytes of each,
  where ``prev_hash`` is the previous entry's ``entry_hash`` in the organization
  (32 zero bytes for ``seq`` 1).

Length framing makes the encoding injective (no two entries share bytes), and the
split lets content hashes be computed column-wise and in parallel over any seq
range, leaving only a cheap 64-byte hash per entry to walk the chain in order.

Example:
    >>> row = {"organization_id": "o", "seq": 1, "audit_id": "a", "ts": 5,
    ...     "actor_type": "system", "actor_user_id": None, "actor_email": None,
    ...     "action": "auth.login", "resource_type": None, "resource_id": None,
    ...     "resource_name": None, "application_id": None, "ip_address": None,
    ...     "user_agent": None, "details": "{}", "result": "success"}
    >>> canonical_bytes(row)
    b'18:auditlens.entry.v1,1:o,1:1,1:a,1:5,6:system,~~10:auth.login,~~~~~~2:{},7:success,'
    >>> entry_hash({**row, "prev_hash": GENESIS_HASH})[:16]
    '5eb7f39295650ecd'
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from auditlens.fields import CONTENT_FIELDS

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "CANONICAL_VERSION",
    "CONTENT_FIELDS",
    "GENESIS_HASH",
    "canonical_bytes",
    "chain_rows",
    "content_hash",
    "content_hash_expr",
    "content_hashes",
    "content_tail",
    "entry_hash",
    "link_hash",
]

CANONICAL_VERSION = "auditlens.entry.v1"

#: a stored row with every content field (the examples' row; nulls where a field may be)
_EXAMPLE_ROW: Mapping[str, Any] = {
    "organization_id": "o", "seq": 1, "audit_id": "a", "ts": 5, "actor_type": "system",
    "actor_user_id": None, "actor_email": None, "action": "auth.login",
    "resource_type": None, "resource_id": None, "resource_name": None,
    "application_id": None, "ip_address": None, "user_agent": None, "details": "{}",
    "result": "success",
}  # fmt: skip

#: ``prev_hash`` of the first entry of every organization's chain.
GENESIS_HASH = "0" * 64

_TAG = f"{len(CANONICAL_VERSION)}:{CANONICAL_VERSION},".encode()


def _netstring(value: object) -> bytes:
    if value is None:
        return b"~"
    data = str(value).encode("utf-8")
    return b"%d:%b," % (len(data), data)


def canonical_bytes(row: Mapping[str, Any]) -> bytes:
    """The canonical bytes (v1) of a stored row (which carries ``seq``)."""
    return _TAG + b"".join([_netstring(row[f]) for f in CONTENT_FIELDS])


#: the fields after ``organization_id`` and ``seq``: the part of the canonical bytes that
#: does not depend on where the entry lands in its chain (:func:`content_tail`)
_TAIL_FIELDS = CONTENT_FIELDS[2:]
_TAIL_VALUES = operator.itemgetter(*_TAIL_FIELDS)
assert CONTENT_FIELDS[:2] == ("organization_id", "seq")  # what content_tail relies on


def content_tail(row: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a row after its ``organization_id`` and ``seq``.

    They do not depend on the chain, so a reader process computes them before the
    appender knows the entry's ``seq`` (:func:`chain_rows` completes the hash).

    Example:
        >>> row = dict(_EXAMPLE_ROW)  # the module's example row
        >>> canonical_bytes(row) == _TAG + b"1:o,1:1," + content_tail(row)
        True
    """
    out: list[str] = []
    for value in _TAIL_VALUES(row):
        if value is None:
            out.append("~")
        else:
            text = value if value.__class__ is str else str(value)
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
            out.append(f"{size}:{text},")
    return "".join(out).encode("utf-8")


def chain_rows(
    rows: Iterable[Sequence[Any]],
    tails: Iterable[bytes],
    org_index: int,
    heads: Mapping[str, tuple[int, str]],
) -> list[tuple[Any, ...]]:
    """Each row (a tuple) followed by its ``seq``, ``prev_hash`` and ``entry_hash``, in order.

    ``rows[i][org_index]`` is the row's organization, ``tails[i]`` its
    :func:`content_tail`; ``heads`` maps an organization to the ``(seq, entry_hash)`` its
    next entry chains to (none: it starts at seq 1 from :data:`GENESIS_HASH`). The hashes
    are those of :func:`content_hash` and :func:`link_hash`, computed without a dict or a
    frame per row.

    Example:
        >>> row = dict(_EXAMPLE_ROW)  # the module's example row
        >>> [(seq, prev[:4], h == entry_hash({**row, "prev_hash": GENESIS_HASH}))
        ...  for _, seq, prev, h in chain_rows([("o",)], [content_tail(row)], 0, {})]
        [(1, '0000', True)]
    """
    sha256 = hashlib.sha256
    seqs = {org: seq for org, (seq, _) in heads.items()}
    tips = {org: (bytes.fromhex(tip), tip) for org, (_, tip) in heads.items()}
    prefixes: dict[str, bytes] = {}
    genesis = (bytes(32), GENESIS_HASH)
    out: list[tuple[Any, ...]] = []
    append = out.append
    for row, tail in zip(rows, tails, strict=True):
        org = row[org_index]
        seq = seqs[org] = seqs.get(org, 0) + 1
        prefix = prefixes.get(org)
        if prefix is None:
            prefix = prefixes[org] = _TAG + _netstring(org)
        digits = b"%d" % seq
        content = sha256(b"%b%d:%b,%b" % (prefix, len(digits), digits, tail)).digest()
        prev, prev_hex = tips.get(org, genesis)
        link = sha256(prev + content).digest()
        tip = tips[org] = (link, link.hex())
        append((*row, seq, prev_hex, tip[1]))
    return out


def content_hash(row: Mapping[str, Any]) -> bytes:
    """SHA-256 of :func:`canonical_bytes` (32 raw bytes)."""
    return hashlib.sha256(canonical_bytes(row)).digest()


def link_hash(prev_hash: str, content: bytes) -> str:
    """``entry_hash`` from the previous entry's hash (hex) and this entry's content hash.

    Example:
        >>> link_hash(GENESIS_HASH, bytes(32)) == hashlib.sha256(bytes(64)).hexdigest()
        True
    """
    return hashlib.sha256(bytes.fromhex(prev_hash) + content).hexdigest()


def entry_hash(row: Mapping[str, Any]) -> str:
    """The ``entry_hash`` of a row that carries ``seq`` and ``prev_hash`` (64 hex digits)."""
    return link_hash(row["prev_hash"], content_hash(row))


def content_hashes(frame: Any) -> list[bytes]:
    """Content hashes of every row of a polars DataFrame, computed column-wise.

    The frame needs the columns of :data:`CONTENT_FIELDS` (``ts`` and ``seq`` as
    integers). The result equals ``[content_hash(row) for row in rows]``, but the
    canonical bytes are built by one string concatenation per column and hashed
    in Rust, so a million rows take about a second.
    """

    digests = frame.select(content_hash_expr().str.decode("hex").alias("h")).to_series()
    return cast("list[bytes]", digests.to_list())


def content_hash_expr() -> pl.Expr:
    """A polars expression: each row's content hash as 64 hex digits, column-wise.

    Over a frame with the columns of :data:`CONTENT_FIELDS`; what
    :func:`content_hashes` computes, left in the frame (no Python object per row).

    Example:
        >>> import polars as pl
        >>> row = {f: None for f in CONTENT_FIELDS} | {"organization_id": "o", "seq": 1,
        ...     "audit_id": "a", "ts": 5, "actor_type": "system", "action": "auth.login",
        ...     "details": "{}", "result": "success"}
        >>> frame = pl.DataFrame([row], schema={f: pl.Int64 if f in ("seq", "ts") else pl.Utf8
        ...     for f in CONTENT_FIELDS})
        >>> frame.select(content_hash_expr()).item() == content_hash(row).hex()
        True
    """
    import polars as pl  # lazy: polars costs ~0.2 s at start-up; only this path needs it
    import polars_hash  # noqa: F401 - registers the .chash namespace  # lazy: polars-hash only for column-wise hashing

    parts: list[pl.Expr] = [pl.lit(_TAG.decode())]
    for name in CONTENT_FIELDS:
        col = pl.col(name).cast(pl.Utf8)
        # null in, null out (concat_str), then "~": cheaper than when/then
        parts.append(
            pl.concat_str(
                [col.str.len_bytes().cast(pl.Utf8), pl.lit(":"), col, pl.lit(",")]
            ).fill_null("~")
        )
    digest: pl.Expr = pl.concat_str(parts).chash.sha2_256()  # type: ignore[attr-defined]
    return digest.alias("content_hash")
