"""Appending: round trip, atomic batches, idempotency, the hash chain, immutability, concurrency."""

from __future__ import annotations

import io
import itertools
import multiprocessing as mp
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import auditlens as al
from auditlens.chain import GENESIS_HASH, entry_hash
from auditlens.store.tables import meta
from tests.helpers import ORG, ORG2, make_entry


def _chain_rows(store: al.AuditStore, org: str) -> list[dict]:
    return store.entries(organization_id=org, order="asc")


def test_round_trip_json_shape_and_flat_columns(store: al.AuditStore) -> None:
    original = [
        make_entry(),
        make_entry(
            action="auth.failed",
            result="failure",
            resource=None,
            details={
                "reason": "bad password",
                "attempt": 3,
                "ok": False,
                "nested": {"ünïcode": "✓", "list": [1, 2.5, None]},
            },
        ),
    ]
    store.append(original)
    back = {e["audit_id"]: e for e in store.entries()}
    for entry in original:
        got = dict(back[entry["audit_id"]])
        for chain_field in ("seq", "prev_hash", "entry_hash"):
            got.pop(chain_field)
        assert got == entry
    df = store.query(order="asc", backend="polars")
    assert df.columns == list(al.COLUMNS)
    first = df.row(0, named=True)
    assert first["actor_email"] == "jane@company.com"
    assert first["category"] == "webhooks"
    assert first["resource_name"] == "Production Webhook"
    assert first["timestamp"].isoformat() == "2025-01-20T10:30:00.123000+00:00"
    assert str(df.schema["timestamp"]) == "Datetime(time_unit='ms', time_zone='UTC')"


def test_omitted_audit_id_and_timestamp_are_generated(store: al.AuditStore) -> None:
    entry = make_entry()
    del entry["audit_id"], entry["timestamp"]
    [res] = store.append(entry)
    stored = store.get(res.audit_id)
    assert stored is not None
    uuid.UUID(stored["audit_id"])
    assert stored["timestamp"].endswith("Z")


def test_seq_and_chain_per_organization(store: al.AuditStore) -> None:
    store.append(
        [
            make_entry(organization_id=ORG),
            make_entry(organization_id=ORG2),
            make_entry(organization_id=ORG),
        ]
    )
    store.append([make_entry(organization_id=ORG)])
    for org, n in ((ORG, 3), (ORG2, 1)):
        rows = _chain_rows(store, org)
        assert [r["seq"] for r in rows] == list(range(1, n + 1))
        assert rows[0]["prev_hash"] == GENESIS_HASH
        for prev, cur in itertools.pairwise(rows):
            assert cur["prev_hash"] == prev["entry_hash"]


def test_entry_hash_recomputes_from_stored_fields(store: al.AuditStore) -> None:
    store.append([make_entry() for _ in range(300)])  # above the columnar threshold
    store.append([make_entry()])  # per-row path
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_entries ORDER BY seq")).mappings().all()
    assert len(rows) == 301
    assert all(entry_hash(r) == r["entry_hash"] for r in rows)


def test_invalid_entry_leaves_store_unchanged(store: al.AuditStore) -> None:
    store.append([make_entry()])
    before = store.entries()
    with pytest.raises(al.ValidationError) as err:
        store.append([make_entry(), make_entry(ip_address="999.1.1.1"), make_entry()])
    assert "entry 1" in str(err.value) and "ip_address" in str(err.value)
    assert store.entries() == before
    [res] = store.append([make_entry()])
    assert res.seq == 2  # the failed batch consumed no sequence numbers


def test_same_audit_id_same_content_is_a_noop(store: al.AuditStore) -> None:
    entry = make_entry()
    [first] = store.append(entry)
    again = store.append([entry, make_entry()])
    assert again[0] == first._replace(created=False)
    assert again[1].created and again[1].seq == 2
    assert store.count() == 2


def test_same_audit_id_in_one_batch_is_stored_once(store: al.AuditStore) -> None:
    entry = make_entry()
    res = store.append([entry, entry])
    assert [r.created for r in res] == [True, False]
    assert res[0].seq == res[1].seq == 1
    assert store.count() == 1


def test_same_audit_id_different_content_is_refused(store: al.AuditStore) -> None:
    entry = make_entry()
    store.append(entry)
    with pytest.raises(al.DuplicateEntryError) as err:
        store.append([make_entry(), {**entry, "result": "failure"}])
    assert err.value.audit_id == entry["audit_id"]
    assert err.value.differing == ["result"]
    assert store.count() == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET result = 'failure'",
        "UPDATE audit_entries SET details = '{}' WHERE seq = 1",
        "DELETE FROM audit_entries",
        "DELETE FROM audit_entries WHERE seq = 1",
    ],
)
def test_raw_update_and_delete_are_refused_by_the_database(
    store: al.AuditStore, statement: str
) -> None:
    store.append([make_entry(), make_entry()])
    before = store.entries()
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text(statement))
    assert store.entries() == before


def test_truncate_is_refused_on_postgresql(store: al.AuditStore) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite has no TRUNCATE statement")
    store.append(make_entry())
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_entries"))
    assert store.count() == 1


def test_delete_passes_only_under_a_retention_authorization(store: al.AuditStore) -> None:
    store.append([make_entry() for _ in range(3)])
    with store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO retention_authorizations VALUES (:o, 2, 'test')"), {"o": ORG}
        )
        conn.execute(
            text("DELETE FROM audit_entries WHERE organization_id = :o AND seq <= 2"), {"o": ORG}
        )
        conn.execute(text("DELETE FROM retention_authorizations"))
    assert [e["seq"] for e in store.entries()] == [3]
    with pytest.raises(DBAPIError), store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries"))


def test_schema_version_mismatch_is_a_clear_error(store_url: str) -> None:
    store = al.open_store(store_url)
    with store.engine.begin() as conn:
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value="999"))
    store.close()
    with pytest.raises(al.StoreVersionError, match="schema version 999"):
        al.open_store(store_url)


def test_reopening_keeps_entries_and_chain(store_url: str) -> None:
    with al.open_store(store_url) as s:
        s.append(make_entry())
    with al.open_store(store_url) as s:
        [res] = s.append(make_entry())
        assert res.seq == 2
        assert s.count() == 2


def _appender(url: str, worker: int, n: int, batch: int) -> None:
    store = al.open_store(url)
    for start in range(0, n, batch):
        store.append(
            [make_entry(details={"worker": worker, "i": i}) for i in range(start, start + batch)]
        )
    store.close()


@pytest.mark.slow
def test_concurrent_appenders_make_one_gap_free_chain(store_url: str) -> None:
    al.open_store(store_url).close()  # create the schema once, before the race
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_appender, args=(store_url, w, 2000, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    store = al.open_store(store_url)
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT seq, prev_hash, entry_hash FROM audit_entries "
                "WHERE organization_id = :o ORDER BY seq"
            ),
            {"o": ORG},
        ).all()
    assert len(rows) == 8000
    assert [r[0] for r in rows] == list(range(1, 8001))
    assert rows[0][1] == GENESIS_HASH
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    store.close()


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
def test_out_of_range_timestamp_is_refused_and_every_reader_still_works(
    store: al.AuditStore, timestamp: str
) -> None:
    from auditlens.export import export

    store.append([make_entry(timestamp="0001-01-01T00:00:00Z"), make_entry()])
    with pytest.raises(al.ValidationError, match="outside the supported range") as err:
        store.append([make_entry(), make_entry(timestamp=timestamp)])
    assert [(p.index, p.field) for p in err.value.problems] == [(1, "timestamp")]
    assert store.count() == 2  # nothing of the batch was stored
    assert sorted(e["timestamp"] for e in store.entries()) == [
        "0001-01-01T00:00:00.000Z",
        "2025-01-20T10:30:00.123Z",
    ]
    assert store.stats().first == "0001-01-01T00:00:00.000Z"
    assert len(store.search("action:webhook.created", backend="polars")) == 2
    out = io.BytesIO()
    assert export(store, out, format="jsonl", record=False, manifest=False).rows == 2


def test_nul_character_is_refused_by_validation_on_every_backend(store: al.AuditStore) -> None:
    with pytest.raises(al.ValidationError, match="NUL") as err:
        store.append([make_entry(), make_entry(user_agent="a\x00b", details={"k": ["\x00"]})])
    assert {(p.index, p.field) for p in err.value.problems} == {
        (1, "user_agent"),
        (1, "details.k[0]"),
    }
    assert store.count() == 0


def test_every_conflicting_audit_id_of_a_batch_is_reported_at_once(
    store: al.AuditStore,
) -> None:
    stored = [make_entry() for _ in range(3)]
    store.append(stored)
    batch = [
        make_entry(),
        {**stored[0], "result": "failure"},
        stored[1],  # same content: a no-op, not a conflict
        {**stored[2], "user_agent": "curl/8", "ip_address": "10.0.0.1"},
        {**stored[0], "result": "failure"},
    ]
    with pytest.raises(al.DuplicateEntryError) as err:
        store.append(batch)
    assert [(c.index, c.audit_id, c.differing) for c in err.value.conflicts] == [
        (1, stored[0]["audit_id"], ("result",)),
        (3, stored[2]["audit_id"], ("ip_address", "user_agent")),
        (4, stored[0]["audit_id"], ("result",)),
    ]
    assert err.value.audit_id == stored[0]["audit_id"]
    assert "and 2 more" in str(err.value)
    assert store.count() == 3


def test_find_conflicts_checks_the_store_and_the_batch_without_writing(
    store: al.AuditStore,
) -> None:
    from auditlens.schema import normalize_entries

    stored = make_entry()
    store.append(stored)
    new = make_entry()
    rows = normalize_entries(
        [stored, {**stored, "result": "partial"}, new, {**new, "action": "webhook.deleted"}]
    )
    found = store.find_conflicts(rows)
    assert [(c.index, c.differing) for c in found] == [(1, ("result",)), (3, ("action",))]
    assert store.count() == 1
