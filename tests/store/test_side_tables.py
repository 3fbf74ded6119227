"""The log's side tables are append-only in the database itself, and plan changes are audited.

``checkpoints``, ``signing_keys``, ``retention_log`` and ``org_plans`` refuse UPDATE and
DELETE (and TRUNCATE on PostgreSQL) for any client — raw SQL through the engine here.
Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

import auditlens as al
from auditlens.chain.notes import SigningKey
from auditlens.retention import plan_of, set_plan
from auditlens.retention_tables import org_plans
from auditlens.store.tables import APPEND_ONLY_TABLES, sqlite_ddl
from tests.helpers import ORG, ORG2, make_entry


@contextmanager
def without_triggers(store: al.AuditStore, *tables: str) -> Iterator[Connection]:
    """A transaction with the tables' immutability triggers off, as the database owner could."""
    with store.engine.begin() as conn:
        for table in tables:
            if store.dialect == "postgresql":
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            else:
                for op in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{op}"))
        yield conn
        for table in tables:
            if store.dialect == "postgresql":
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        if store.dialect == "sqlite":
            for ddl in sqlite_ddl:
                conn.execute(text(ddl))


@pytest.fixture
def filled(store: al.AuditStore) -> al.AuditStore:
    """A row in every protected table."""
    store.append([make_entry(organization_id=ORG) for _ in range(3)])
    store.checkpoint(ORG, SigningKey.generate("audit.test/log"))  # checkpoints + signing_keys
    set_plan(store, ORG, "pro")  # org_plans
    with store.engine.begin() as conn:  # inserting stays allowed
        conn.execute(
            text(
                "INSERT INTO retention_log (organization_id, first_seq, through_seq, "
                "last_entry_hash, rows, manifest, manifest_sha256, applied_ms) "
                "VALUES (:o, 1, 1, :h, 1, 'm.json', '', 1)"
            ),
            {"o": ORG2, "h": "0" * 64},
        )
    return store


def count(store: al.AuditStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


UPDATES = {
    "checkpoints": "UPDATE checkpoints SET tree_size = tree_size + 1",
    "signing_keys": "UPDATE signing_keys SET role = 'witness'",
    "retention_log": "UPDATE retention_log SET through_seq = 0",
    "org_plans": "UPDATE org_plans SET plan = 'enterprise'",
}


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_update_and_delete_are_refused_by_the_database(filled: al.AuditStore, table: str) -> None:
    rows = count(filled, table)
    assert rows >= 1
    with pytest.raises(DBAPIError, match="append-only"), filled.engine.begin() as conn:
        conn.execute(text(UPDATES[table]))
    with pytest.raises(DBAPIError, match="append-only"), filled.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {table}"))
    if filled.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), filled.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {table}"))
    assert count(filled, table) == rows
    assert plan_of(filled, ORG) == ("pro", 365)


def test_every_plan_change_is_an_audit_entry(store: al.AuditStore) -> None:
    set_plan(store, ORG, "starter")
    set_plan(store, ORG, "enterprise", retention_days=90)
    set_plan(store, ORG, "enterprise", retention_days=90)  # no change: nothing written
    set_plan(store, ORG2, "free")
    assert plan_of(store, ORG) == ("enterprise", 90)
    assert plan_of(store, ORG2) == ("free", 7)
    changes = store.entries("action:organization.plan_changed", organization_id=ORG, order="asc")
    assert [e["details"] for e in changes] == [
        {"old_plan": None, "old_retention_days": None, "plan": "starter", "retention_days": 30},
        {
            "old_plan": "starter",
            "old_retention_days": 30,
            "plan": "enterprise",
            "retention_days": 90,
        },
    ]
    assert changes[0]["resource"]["type"] == "organization"
    assert changes[0]["resource"]["id"] == ORG
    # the plan history is kept: one row per change, the newest is the current plan
    with store.engine.connect() as conn:
        history = conn.execute(
            select(org_plans.c.plan, org_plans.c.retention_days)
            .where(org_plans.c.organization_id == ORG)
            .order_by(org_plans.c.id)
        ).all()
    assert [tuple(r) for r in history] == [("starter", None), ("enterprise", 90)]
    assert al.verify(store).ok  # the plan entries are chained like any other


def test_a_plan_change_and_its_entry_commit_together(
    store: al.AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_plan(store, ORG, "starter")

    def refuse(*_: object, **__: object) -> None:
        raise al.StoreError("the database refused the write")

    monkeypatch.setattr(store, "_append_rows", refuse)
    with pytest.raises(al.StoreError, match="refused"):
        set_plan(store, ORG, "pro")
    monkeypatch.undo()
    assert plan_of(store, ORG) == ("starter", 30)  # the plan row was rolled back too
    assert store.count(action="organization.plan_changed") == 1
    set_plan(store, ORG, "pro")  # the store is usable afterwards
    assert plan_of(store, ORG) == ("pro", 365)
    assert store.count(action="organization.plan_changed") == 2
