"""Named caches of a store (``auditlens.store.caches``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from auditlens.store.caches import Caches


def test_one_dict_per_name_until_invalidated() -> None:
    caches = Caches()
    trees = caches.get("merkle_trees")
    trees["a"] = 1
    assert caches.get("merkle_trees") is trees
    caches.invalidate("unknown")  # forgetting what was never made is fine
    caches.invalidate("merkle_trees")
    assert caches.get("merkle_trees") == {} and caches.get("merkle_trees") is not trees


def test_threads_asking_at_once_share_one_cache() -> None:
    caches = Caches()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: caches.get("shared"), range(64)))
    assert all(g is got[0] for g in got)
