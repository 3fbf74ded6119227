"""The public storage layer (``auditlens.store.backend`` and the store methods it names):
transactions, reads for a filter, Arrow batches, named caches and the feature tables."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Table, inspect, select, text

import auditlens as al
from auditlens.errors import StoreError
from auditlens.store.backend import (
    FEATURE_TABLES,
    FRAME_COLUMNS,
    ROW_COLUMNS,
    STORAGE_TABLES,
    declare_table,
    load_feature_tables,
    meta,
    metadata,
    schema_tables,
)
from auditlens.store.tables import APPEND_ONLY_TABLES
from tests.helpers import ORG, ORG2, make_entry


@pytest.mark.parametrize("module", sorted(FEATURE_TABLES))
def test_the_registry_names_the_tables_each_feature_declares(module: str) -> None:
    mod = importlib.import_module(module)
    declared = {t.name for t in vars(mod).values() if isinstance(t, Table)}
    assert declared == set(FEATURE_TABLES[module])
    for name in FEATURE_TABLES[module]:
        assert metadata.tables[name] is getattr(mod, name)


def test_every_table_is_on_the_shared_metadata_and_in_the_schema() -> None:
    load_feature_tables()
    assert set(metadata.tables) == set(schema_tables())
    assert set(STORAGE_TABLES) | set(APPEND_ONLY_TABLES) <= set(schema_tables())


def test_a_taken_table_name_with_another_definition_is_refused() -> None:
    from sqlalchemy import Column, String

    load_feature_tables()
    with pytest.raises(StoreError, match="'alert_state' is declared twice"):
        declare_table("alert_state", Column("rule", String(10), primary_key=True))
    assert "group_key" in metadata.tables["alert_state"].c


def test_a_new_store_has_every_feature_table(store: al.AuditStore) -> None:
    assert set(schema_tables()) <= set(inspect(store.engine).get_table_names())


def test_a_table_missing_from_an_existing_store_is_created_when_it_opens(store_url: str) -> None:
    with al.open_store(store_url) as store, store.transaction() as conn:
        conn.execute(text("DROP TABLE alert_deliveries"))
    with al.open_store(store_url) as store:
        assert inspect(store.engine).has_table("alert_deliveries")
        from auditlens.alerts import deliveries

        assert deliveries(store) == []


def test_opening_a_complete_store_imports_no_feature(tmp_path: Path) -> None:
    """The registry is read by name: the storage layer opens a store whose schema is complete
    without importing alerts, exports, checkpoints or retention (start-up stays its own)."""
    db = tmp_path / "a.db"
    al.open_store(str(db)).close()
    probe = (
        "import sys; from auditlens.store.store import Store; Store.open(sys.argv[1]).close(); "
        f"print(sorted(m for m in {sorted(FEATURE_TABLES)!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(db)], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_transaction_commits_together_and_rolls_back_together(store: al.AuditStore) -> None:
    with store.transaction() as conn:
        conn.execute(meta.insert().values(key="kept", value="1"))
        store.append(make_entry())  # nested: a savepoint of the same transaction

    def abandoned() -> None:
        with store.transaction() as conn:
            conn.execute(meta.insert().values(key="lost", value="1"))
            store.append(make_entry())
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError, match="abandon"):
        abandoned()
    with store.connect() as conn:
        keys = set(conn.execute(select(meta.c.key)).scalars())
    assert "kept" in keys and "lost" not in keys
    assert store.count() == 1


def test_select_reads_what_the_filter_and_search_mean(store: al.AuditStore) -> None:
    store.append([make_entry(), make_entry(organization_id=ORG2), make_entry(result="failure")])
    stmt = store.select(ROW_COLUMNS, "result:failure", order="asc", organization_id=ORG)
    with store.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    assert [(r["organization_id"], r["result"]) for r in rows] == [(ORG, "failure")]
    assert store.count(store.filter("result:failure", organization_id=ORG)) == 1


def test_read_batches_gives_frame_rows_as_arrow(store: al.AuditStore) -> None:
    store.append([make_entry(details={"i": i}) for i in range(3)])
    stmt = store.select(FRAME_COLUMNS, order="asc", limit=2)
    batches = list(store.read_batches(stmt))
    assert sum(b.num_rows for b in batches) == 2
    assert batches[0].schema.names == list(al.COLUMNS)


def test_named_caches_are_per_store_and_forgotten_on_invalidate(store_url: str) -> None:
    with al.open_store(store_url) as one, al.open_store(store_url) as two:
        one.cache("merkle_trees")["x"] = 1
        assert two.cache("merkle_trees") == {}
        one.cache("other")["y"] = 2
        one.invalidate("merkle_trees")
        assert one.cache("merkle_trees") == {} and one.cache("other") == {"y": 2}
        one.invalidate()
        assert one.cache("other") == {}


def test_checkpoint_trees_live_in_the_named_cache(store: al.AuditStore) -> None:
    from auditlens.chain.checkpoints import MERKLE_TREES, org_tree

    store.append([make_entry() for _ in range(3)])
    tree = org_tree(store, ORG)
    assert store.cache(MERKLE_TREES)[ORG] is tree and len(tree) == 3
    store.invalidate()
    assert org_tree(store, ORG) is not tree
