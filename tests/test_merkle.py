"""RFC 6962 Merkle trees: a naive reference for every size up to 256, and proof mutations."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlens.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(256)]


# -- a naive reference, written straight from RFC 6962 §2.1 -------------------------
def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = k_of(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = k_of(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def test_basic_hashes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert root_hash([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert root_hash(LEAVES[:1]) == LEAVES[0]


def test_rfc6962_test_vector() -> None:
    # the 8-leaf tree from the Certificate Transparency test data (leaf inputs "", 00, 10, ...)
    inputs = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ]
    leaves = [leaf_hash(x) for x in inputs]
    assert (
        root_hash(leaves).hex()
        == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )
    assert (
        root_hash(leaves[:1]).hex()
        == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


def test_every_size_up_to_256_matches_the_reference() -> None:
    tree = MerkleTree(LEAVES)
    for n in range(1, 257):
        d = LEAVES[:n]
        root = mth(d)
        assert tree.root(n) == root == root_hash(d)
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert proof == path(m, d)
            assert verify_inclusion(d[m], m, n, proof, root)
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == (subproof(m, d, True) if m < n else [])
            assert verify_consistency(m, n, proof, mth(d[:m]), root)


def test_module_functions_agree_with_the_tree() -> None:
    assert inclusion_proof(LEAVES[:13], 5) == MerkleTree(LEAVES).inclusion_proof(5, 13)
    assert consistency_proof(LEAVES[:13], 6) == MerkleTree(LEAVES).consistency_proof(6, 13)


def test_extend_equals_building_at_once() -> None:
    tree = MerkleTree(LEAVES[:37])
    tree.extend(LEAVES[37:100])
    tree.extend(LEAVES[100:101])
    assert tree.levels == MerkleTree(LEAVES[:101]).levels


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 64, 100, 255])
def test_every_inclusion_mutation_is_rejected(n: int) -> None:
    d = LEAVES[:n]
    root = mth(d)
    for m in range(n):
        proof = path(m, d)
        assert verify_inclusion(d[m], m, n, proof, root)
        for i in range(len(proof)):
            assert not verify_inclusion(
                d[m], m, n, [*proof[:i], _flip(proof[i]), *proof[i + 1 :]], root
            )
        assert not verify_inclusion(d[m], m, n, proof[:-1], root)
        assert not verify_inclusion(d[m], m, n, [*proof, proof[0]], root)
        assert not verify_inclusion(d[m], m + 1, n, proof, root)
        assert not verify_inclusion(d[m], m - 1, n, proof, root)
        assert not verify_inclusion(_flip(d[m]), m, n, proof, root)
        assert not verify_inclusion(d[m], m, n, proof, _flip(root))
    assert not verify_inclusion(d[0], n, n, path(0, d), root)  # index out of range
    assert not verify_inclusion(d[0], -1, n, path(0, d), root)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 64, 100, 255])
def test_every_consistency_mutation_is_rejected(n: int) -> None:
    d = LEAVES[:n]
    new = mth(d)
    for m in range(1, n):
        old = mth(d[:m])
        proof = subproof(m, d, True)
        assert verify_consistency(m, n, proof, old, new)
        for i in range(len(proof)):
            assert not verify_consistency(
                m, n, [*proof[:i], _flip(proof[i]), *proof[i + 1 :]], old, new
            )
        assert not verify_consistency(m, n, proof[:-1], old, new)
        assert not verify_consistency(m, n, [*proof, proof[0]], old, new)
        assert not verify_consistency(n, m, proof, new, old)  # sizes swapped
        assert not verify_consistency(m, n, proof, _flip(old), new)
        assert not verify_consistency(m, n, proof, old, _flip(new))
        if m + 1 < n:
            assert not verify_consistency(m + 1, n, proof, old, new)
    assert not verify_consistency(n, n, [new], new, new)
    assert verify_consistency(n, n, [], new, new)
    assert verify_consistency(0, n, [], EMPTY_ROOT, new)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_verifiers_never_raise(data: st.DataObject) -> None:
    junk = st.one_of(st.binary(max_size=40), st.none(), st.integers(), st.text(max_size=3))
    proof = data.draw(st.lists(junk, max_size=6))
    a, b = data.draw(st.integers(-3, 300)), data.draw(st.integers(-3, 300))
    h1, h2 = data.draw(junk), data.draw(junk)
    assert verify_inclusion(h1, a, b, proof, h2) in (True, False)  # type: ignore[arg-type]
    assert verify_consistency(a, b, proof, h1, h2) in (True, False)  # type: ignore[arg-type]
