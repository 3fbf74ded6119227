"""The lake on S3 (moto's server over HTTP): ``lake sync --to s3://…``, ``verify --lake s3://…``,
``open_lake("s3://…")``; the manifest is the commit point (S3 has no rename)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from auditlens.lake import open_lake, sync_lake, verify_lake
from auditlens.lake.layout import LakeStorage, read_state
from tests.helpers import ORG, ORG2, S3_BUCKET, make_entry, s3_keys, s3_prefix


@pytest.fixture
def sqlite_store(tmp_path: Any) -> Iterator[al.AuditStore]:
    with al.open_store(f"sqlite:///{tmp_path / 'audit.db'}") as store:
        yield store


def test_sync_verify_and_read_on_s3(s3: Any, s3_lake: str, sqlite_store: al.AuditStore) -> None:
    store = sqlite_store
    store.append([make_entry(details={"i": i}) for i in range(6)])
    store.append([make_entry(organization_id=ORG2) for _ in range(3)])
    first = sync_lake(store, s3_lake)
    assert first.sync == 1 and first.organizations == {ORG: (1, 6), ORG2: (1, 3)}
    keys = s3_keys(s3, s3_lake)
    assert "manifests/sync-000001.json" in keys
    assert all(k.startswith(("manifests/", "organization_id=")) for k in keys)
    manifest = json.loads(
        s3.get_object(Bucket=S3_BUCKET, Key=f"{s3_prefix(s3_lake)}manifests/sync-000001.json")[
            "Body"
        ].read()
    )
    assert {f["path"] for f in manifest["files"]} == {k for k in keys if k.endswith(".parquet")}

    # incremental: the partition's small file is compacted into a new object, the old one
    # is deleted after the manifest
    store.append([make_entry(details={"i": i}) for i in range(6, 10)])
    second = sync_lake(store, s3_lake)
    assert second.organizations == {ORG: (7, 10)} and second.files_replaced == 1
    assert sync_lake(store, s3_lake).sync is None
    state = read_state(s3_lake)
    assert {k for k in s3_keys(s3, s3_lake) if k.endswith(".parquet")} == set(state.files)

    report = verify_lake(s3_lake)
    assert report.ok and report.checked == 13
    opened = open_lake(s3_lake)
    got = opened.query(order="asc", organization_id=ORG)
    want = store.query(backend="polars", organization_id=ORG, order="asc")
    assert got["audit_id"].to_list() == want["audit_id"].to_list()
    assert got["details"].to_list() == want["details"].to_list()
    assert opened.query(organization_id=ORG2).height == 3


def test_cli_sync_and_verify_on_s3(s3: Any, s3_lake: str, tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    with al.open_store(db) as store:
        store.append([make_entry() for _ in range(5)])
    runner = CliRunner()
    res = runner.invoke(app, ["lake", "sync", "--to", s3_lake, "--db", db])
    assert res.exit_code == 0, res.output
    assert "sync 1: 5 entries" in res.stdout
    res = runner.invoke(app, ["verify", "--lake", s3_lake])
    assert res.exit_code == 0, res.output
    assert "Checked 5 lake entries" in res.stdout


def test_a_failed_sync_on_s3_changes_nothing_a_reader_sees(
    s3: Any, s3_lake: str, sqlite_store: al.AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store
    store.append([make_entry() for _ in range(4)])
    sync_lake(store, s3_lake)
    before = s3_keys(s3, s3_lake)
    store.append([make_entry(timestamp="2025-02-01T08:00:00Z") for _ in range(4)])
    create = LakeStorage.create

    def broken(self: LakeStorage, rel: str, data: bytes) -> None:
        if rel.startswith("manifests/"):  # the data objects are written, the commit fails
            raise OSError("connection reset")
        create(self, rel, data)

    with monkeypatch.context() as patched:  # not the whole test: s3_server's environment stays
        patched.setattr(LakeStorage, "create", broken)
        with pytest.raises(OSError, match="connection reset"):
            sync_lake(store, s3_lake)
    assert s3_keys(s3, s3_lake) == before  # what it wrote is removed
    assert open_lake(s3_lake).query().height == 4
    assert sync_lake(store, s3_lake).organizations == {ORG: (5, 8)}
    assert verify_lake(s3_lake).ok


def test_objects_of_a_killed_sync_are_ignored_then_removed(
    s3: Any, s3_lake: str, sqlite_store: al.AuditStore
) -> None:
    store = sqlite_store
    store.append([make_entry() for _ in range(3)])
    sync_lake(store, s3_lake)
    folder = next(iter(read_state(s3_lake).files)).rsplit("/", 1)[0]
    orphan = f"{s3_prefix(s3_lake)}{folder}/part-s000002-000000000004-000000000009.parquet"
    s3.put_object(Bucket=S3_BUCKET, Key=orphan, Body=b"half an upload")  # no manifest lists it
    assert open_lake(s3_lake).query().height == 3
    assert verify_lake(s3_lake).ok
    store.append([make_entry()])
    sync_lake(store, s3_lake)
    assert orphan[len(s3_prefix(s3_lake)) :] not in s3_keys(s3, s3_lake)
    assert verify_lake(s3_lake).ok


def test_a_tampered_object_is_found_with_its_seq(
    s3: Any, s3_lake: str, sqlite_store: al.AuditStore
) -> None:
    store = sqlite_store
    store.append([make_entry() for _ in range(3)])
    sync_lake(store, s3_lake)
    (rel,) = read_state(s3_lake).files
    key = f"{s3_prefix(s3_lake)}{rel}"
    body = s3.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=S3_BUCKET, Key=key, Body=body + b"\0")
    problems = verify_lake(s3_lake).problems
    assert [(p.kind, p.seq) for p in problems][:1] == [("file_changed", 1)]
    s3.delete_object(Bucket=S3_BUCKET, Key=key)
    assert [(p.kind, p.seq) for p in verify_lake(s3_lake).problems][:1] == [("file_missing", 1)]
