"""Retention into an ``s3://`` archive writes the lake layout there: one lake on S3 holds
archived and synced history once (moto's server over HTTP), on SQLite and PostgreSQL.

The same record, read-back check and refusals as a local lake; no lock on S3, but every
manifest is written put-if-absent, so two writers never share a manifest number.
"""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

import auditlens as al
import auditlens.retention as ret
from auditlens.cli import app
from auditlens.lake import open_lake, sync_lake, verify_lake
from auditlens.lake.layout import LakeStorage, read_state
from auditlens.retention import (
    ArchiveError,
    apply_retention,
    archive_boundary,
    read_archive,
    restore_archive,
    set_plan,
)
from tests.alerts.servers import s3_server
from tests.helpers import (
    NOW,
    ORG,
    ORG2,
    S3_BUCKET,
    archive_previous_layout,
    assert_previous_and_lake_layout_read,
    make_entry,
    s3_keys,
    s3_prefix,
)


def _seqs(s3_lake: str, org: str = ORG) -> list[int]:
    return sorted(open_lake(s3_lake).query(organization_id=org, order="asc")["seq"])


def test_the_s3_archive_is_a_lake_that_sync_verify_read_and_restore_share(
    s3: Any, s3_lake: str, aged: al.AuditStore
) -> None:
    # what a killed upload of the previous layout left: set aside, not deleted
    orphan = f"organization_id={ORG}/month=2025-01/seq-000000000013-000000000038.parquet"
    s3.put_object(Bucket=S3_BUCKET, Key=s3_prefix(s3_lake) + orphan, Body=b"half an upload")
    [res] = apply_retention(aged, s3_lake, now=NOW)
    assert (res.first_seq, res.through_seq, res.rows) == (1, 30, 30)
    assert res.manifest == f"{s3_lake}/manifests/sync-000002.json"  # after the sync of 1..30
    keys = s3_keys(s3, s3_lake)
    assert [k for k in keys if k.startswith("manifests/")] == [
        "manifests/sync-000001.json",
        "manifests/sync-000002.json",
    ]
    data = [k for k in keys if k.endswith(".parquet")]
    assert [k.split("/")[:2] for k in data] == [
        [f"organization_id={ORG}", "month=2024-12"],
        [f"organization_id={ORG}", "month=2025-01"],
    ]
    assert orphan not in keys
    assert f"organization_id={ORG}/_orphaned/seq-000000000013-000000000038.parquet.orphaned" in (
        keys
    )
    assert aged.count(organization_id=ORG) == 20 + 2  # + plan_changed, retention_applied
    [row] = ret.archived_ranges(aged, ORG)
    assert row.manifest == res.manifest

    # the store's verify reads the range back from the bucket; so does the lake's
    assert read_archive(str(res.manifest))["seq"].to_list() == list(range(1, 31))
    assert al.verify(aged, include_archive=True).ok
    report = verify_lake(s3_lake)
    assert report.ok and report.checked == 30, report.problems
    out = CliRunner().invoke(app, ["verify", "--lake", s3_lake])
    assert out.exit_code == 0, out.output

    # the daily sync continues the same lake: archived and live history, each entry once
    sync_lake(aged, s3_lake)
    top = int(aged.query(organization_id=ORG)["seq"].max())
    assert _seqs(s3_lake) == list(range(1, top + 1))
    assert _seqs(s3_lake, ORG2) == list(range(1, 51))
    assert verify_lake(s3_lake).ok
    # a later run records the next range over what the sync wrote: no file written again
    files = set(read_state(s3_lake).files)
    [later] = apply_retention(aged, s3_lake, now=NOW + timedelta(days=8))
    assert (later.first_seq, later.through_seq) == (31, 38)
    assert set(read_state(s3_lake).files) == files
    report = al.verify(aged, include_archive=True)
    assert report.ok and report.archived == 38, report.problems
    assert verify_lake(s3_lake).ok

    set_plan(aged, ORG, "enterprise")
    restored = restore_archive(aged, ORG, allow_unanchored=True)
    assert restored.entries["seq"].to_list() == list(range(1, 39))


def test_a_changed_object_in_the_s3_archive_is_found_with_its_seq(
    s3: Any, s3_lake: str, aged: al.AuditStore
) -> None:
    apply_retention(aged, s3_lake, now=NOW)
    [f] = [f for f in read_state(s3_lake).files_of(ORG) if f.first_seq <= 5 <= f.last_seq]
    key = s3_prefix(s3_lake) + f.path
    frame = pl.read_parquet(io.BytesIO(s3.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read()))
    frame = frame.with_columns(
        pl.when(pl.col("seq") == 5).then(pl.lit("auth.login")).otherwise("action").alias("action")
    )
    buf = io.BytesIO()
    frame.write_parquet(buf)
    s3.put_object(Bucket=S3_BUCKET, Key=key, Body=buf.getvalue())  # valid Parquet, one row edited
    assert {(p.kind, p.seq) for p in verify_lake(s3_lake).problems} >= {("modified", 5)}
    report = al.verify(aged, include_archive=True)
    [problem] = report.problems
    assert (problem.kind, problem.seq) == ("archive", 5), problem
    assert "SHA-256 does not match" in problem.detail
    set_plan(aged, ORG, "enterprise")
    with pytest.raises(ArchiveError, match="SHA-256"):
        restore_archive(aged, ORG, allow_unanchored=True)


def test_an_s3_lake_holding_another_stores_entries_is_refused(
    s3: Any, s3_lake: str, aged: al.AuditStore, tmp_path: Path
) -> None:
    with al.open_store(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.append([make_entry(organization_id=ORG) for _ in range(40)])
        sync_lake(other, s3_lake)
    with pytest.raises(ArchiveError, match=r"not this store's entries.*nothing was removed"):
        apply_retention(aged, s3_lake, now=NOW)
    assert aged.count(organization_id=ORG) == 51 and archive_boundary(aged, ORG) is None
    assert read_state(s3_lake).last_sync == 1  # no record written


def test_two_writers_on_s3_never_share_a_manifest_number(
    s3: Any, s3_lake: str, aged: al.AuditStore
) -> None:
    """No lock on S3: a sync that read the lake before a retention run wrote its record
    would number its manifest alike; the put-if-absent refuses the sync, never the record
    (whose entries are gone from the store) is replaced."""
    where = LakeStorage.at(s3_lake)
    where.create("probe.json", b"first")
    with pytest.raises(FileExistsError):
        where.create("probe.json", b"second")
    assert where.read("probe.json") == b"first"
    where.remove("probe.json")

    sync_lake(aged, s3_lake)
    aged.append([make_entry(organization_id=o) for o in (ORG, ORG2)])
    raced: list[object] = []

    def retention_meanwhile(_rows: int) -> None:  # another host, while the sync writes
        if not raced:
            other = threading.Thread(
                target=lambda: raced.append(apply_retention(aged, s3_lake, now=NOW))
            )
            other.start()
            other.join()

    before = s3_keys(s3, s3_lake)
    with pytest.raises(ArchiveError, match=r"sync-000002\.json: written by another"):
        sync_lake(aged, s3_lake, progress=retention_meanwhile)
    [[res]] = raced  # type: ignore[misc]
    assert res.manifest == f"{s3_lake}/manifests/sync-000002.json"  # type: ignore[attr-defined]
    assert set(s3_keys(s3, s3_lake)) == set(before) | {"manifests/sync-000002.json"}  # nothing else
    report = al.verify(aged, include_archive=True)
    assert report.ok and report.archived == 30, report.problems
    assert verify_lake(s3_lake).ok
    sync_lake(aged, s3_lake)  # run again: it continues after the record
    assert _seqs(s3_lake) == list(range(1, int(aged.query(organization_id=ORG)["seq"].max()) + 1))
    assert verify_lake(s3_lake).ok


def test_previous_layout_s3_archives_keep_being_read(
    s3: Any, s3_lake: str, aged: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archive an earlier version wrote to S3 (one manifest per range beside its files)
    keeps verifying and restoring; the next run writes the lake layout under the same prefix."""
    with monkeypatch.context() as patched:  # not the whole test: s3_server's environment stays
        archive_previous_layout(patched, tmp_path / "staging")
        [old] = apply_retention(aged, s3_lake, now=NOW)
    assert str(old.manifest).endswith(
        f"/organization_id={ORG}/manifest-000000000001-000000000030.json"
    )
    [new] = apply_retention(aged, s3_lake, now=NOW + timedelta(days=8))
    assert str(new.manifest).startswith(f"{s3_lake}/manifests/sync-")
    assert_previous_and_lake_layout_read(aged, s3_lake)


def test_an_unreachable_bucket_loses_nothing(
    aged: al.AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        s3_server(monkeypatch),  # no bucket created
        pytest.raises(ArchiveError, match=r"cannot write the archive .*nothing was removed"),
    ):
        apply_retention(aged, "s3://missing-bucket/x", now=NOW)
    assert aged.count(organization_id=ORG) == 51
    assert archive_boundary(aged, ORG) is None


def test_a_retention_record_is_never_written_over_a_sync_meanwhile(
    s3: Any, s3_lake: str, aged: al.AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: a sync writes the next manifest while retention, having read the
    lake, checks the range; the record's put-if-absent refuses, nothing is removed."""
    sync_lake(aged, s3_lake)
    aged.append([make_entry(organization_id=ORG2)])
    check = ret._read_lake_range
    synced: list[object] = []

    def sync_meanwhile(*args: Any, **kwargs: Any) -> pl.DataFrame:
        if not synced:  # another host's cron sync, between retention's read and its record
            synced.append(sync_lake(aged, s3_lake))
        return check(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(ret, "_read_lake_range", sync_meanwhile)
        with pytest.raises(
            ArchiveError, match=r"sync-000002\.json: written by another .*nothing was removed"
        ):
            apply_retention(aged, s3_lake, now=NOW)
    assert aged.count(organization_id=ORG) == 51 and archive_boundary(aged, ORG) is None
    state = read_state(s3_lake)
    assert state.last_sync == 2 and state.manifests[-1][1].get("kind") is None  # the sync's
    assert _seqs(s3_lake, ORG2) == list(range(1, 52))
    [res] = apply_retention(aged, s3_lake, now=NOW)  # run again: the record comes next
    assert res.manifest == f"{s3_lake}/manifests/sync-000003.json"
    assert al.verify(aged, include_archive=True).ok and verify_lake(s3_lake).ok
