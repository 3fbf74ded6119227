"""The retention archive is a lake: one lake holds archived and synced history, once.

From the attacker's side too: a changed archived file or manifest is found by the store's
``verify`` and by ``verify --lake``, with the seq; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

import auditlens as al
import auditlens.retention as ret
from auditlens.lake import open_lake, sync_lake, verify_lake
from auditlens.lake.layout import file_sha256, lake_lock, read_state
from auditlens.retention import (
    ArchiveError,
    apply_retention,
    archive_boundary,
    read_archive,
    restore_archive,
    set_plan,
)
from tests.helpers import (
    NOW,
    ORG,
    ORG2,
    append_aged,
    archive_previous_layout,
    assert_previous_and_lake_layout_read,
    make_entry,
)


@contextmanager
def lake_held(lake: Path, meanwhile: Callable[[], object] = lambda: None) -> Iterator[None]:
    """Another writer (a thread) holds ``lake``'s lock, having done ``meanwhile``, for the
    ``with`` block; it lets go after it."""
    holding, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def writer() -> None:
        try:
            with lake_lock(lake):
                meanwhile()
                holding.set()
                release.wait()
        except BaseException as exc:  # re-raised in the test's thread
            failed.append(exc)
            holding.set()

    other = threading.Thread(target=writer)
    other.start()
    try:
        holding.wait()
        if failed:
            raise failed[0]
        yield
    finally:
        release.set()
        other.join()


def lake_seqs(lake: Path, org: str = ORG) -> list[int]:
    frame = open_lake(lake).query(organization_id=org, order="asc")
    return sorted(frame["seq"])  # duplicates would show, as a gap would


def top_seq(store: al.AuditStore, org: str = ORG) -> int:
    return int(store.query(organization_id=org)["seq"].max())


def parquet_files(lake: Path) -> list[str]:
    return sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet"))


def test_the_archive_is_a_lake(aged: al.AuditStore, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    [res] = apply_retention(aged, lake, now=NOW)
    assert (res.first_seq, res.through_seq, res.rows) == (1, 30, 30)
    # the lake's layout: Hive partitions, chained manifests (a new lake: by month)
    assert Path(str(res.manifest)).parent == lake / "manifests"
    files = parquet_files(lake)
    assert [f.split("/")[:2] for f in files] == [
        [f"organization_id={ORG}", "month=2024-12"],
        [f"organization_id={ORG}", "month=2025-01"],
    ]
    # the lake's own tools read it
    report = verify_lake(lake)
    assert report.ok and report.checked == 30, report.problems
    assert lake_seqs(lake) == list(range(1, 31))
    assert read_archive(res.manifest)["seq"].to_list() == list(range(1, 31))  # type: ignore[arg-type]
    # and the store's: the archive matches retention_log, every file and link
    assert al.verify(aged, include_archive=True).ok
    # the CLI too
    from typer.testing import CliRunner

    from auditlens.cli import app

    out = CliRunner().invoke(app, ["verify", "--lake", str(lake)])
    assert out.exit_code == 0, out.stdout


def test_one_lake_holds_synced_and_archived_history_once(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    synced = sync_lake(aged, lake)  # the daily sync ran first: the lake holds everything
    before = parquet_files(lake)
    [res] = apply_retention(aged, lake, now=NOW)
    assert res.rows == 30
    assert parquet_files(lake) == before  # what the lake held is not written again
    assert synced.sync == 1 and read_state(lake).last_sync == 2  # + the retention record
    # after retention, the store's new entries continue the lake: no gap, no repeat
    aged.append([make_entry(organization_id=ORG) for _ in range(3)])
    sync_lake(aged, lake)
    assert lake_seqs(lake) == list(range(1, top_seq(aged) + 1))
    assert lake_seqs(lake, ORG2) == list(range(1, 51))
    assert verify_lake(lake).ok
    assert al.verify(aged, include_archive=True).ok


def test_retention_first_then_sync_continues_and_later_runs_reuse_the_lake(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    apply_retention(aged, lake, now=NOW)  # writes seq 1..30 only
    assert lake_seqs(lake) == list(range(1, 31)) and lake_seqs(lake, ORG2) == []
    sync_lake(aged, lake)  # continues at 31: compacts into the month's file, no duplicate
    top = top_seq(aged)
    assert lake_seqs(lake) == list(range(1, top + 1))
    files = parquet_files(lake)
    # a later run: the lake already holds 31..38, nothing is written, the range is recorded
    [later] = apply_retention(aged, lake, now=NOW + timedelta(days=8))
    assert (later.first_seq, later.through_seq) == (31, 38)
    assert parquet_files(lake) == files
    assert lake_seqs(lake) == list(range(1, top + 1))
    assert verify_lake(lake).ok
    report = al.verify(aged, include_archive=True)
    assert report.ok and report.archived == 38, report.problems
    # the first range's files were compacted by the sync: still read back and restorable
    set_plan(aged, ORG, "enterprise")
    restored = restore_archive(aged, ORG, allow_unanchored=True)
    assert restored.entries["seq"].to_list() == list(range(1, 39))
    assert restored.entries["organization_id"].unique().to_list() == [ORG]


def _rewrite_row(lake: Path, seq: int) -> Path:
    """Change one archived entry's action, as a valid Parquet file (what an editor does)."""
    state = read_state(lake)
    [f] = [f for f in state.files_of(ORG) if f.first_seq <= seq <= f.last_seq]
    path = lake / f.path
    frame = pl.read_parquet(path)
    frame = frame.with_columns(
        pl.when(pl.col("seq") == seq)
        .then(pl.lit("auth.login"))
        .otherwise(pl.col("action"))
        .alias("action")
    )
    frame.write_parquet(path, compression="zstd")
    return path


def test_a_changed_archived_file_is_found_by_both_verifiers_with_its_seq(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    apply_retention(aged, lake, now=NOW)
    sync_lake(aged, lake)
    _rewrite_row(lake, 5)
    lake_report = verify_lake(lake)
    assert {(p.kind, p.seq) for p in lake_report.problems} >= {("modified", 5)}
    assert "file_changed" in {p.kind for p in lake_report.problems}
    report = al.verify(aged, include_archive=True)
    [problem] = report.problems
    assert (problem.kind, problem.seq) == ("archive", 5), problem
    assert "SHA-256 does not match" in problem.detail and "chain breaks at seq 5" in problem.detail
    set_plan(aged, ORG, "enterprise")
    with pytest.raises(ArchiveError, match="SHA-256"):
        restore_archive(aged, ORG, allow_unanchored=True)


def test_an_edited_manifest_is_found_by_both_verifiers(aged: al.AuditStore, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    [res] = apply_retention(aged, lake, now=NOW)
    sync_lake(aged, lake)  # a later manifest records the retention manifest's SHA-256
    manifest = Path(str(res.manifest))
    meta = json.loads(manifest.read_text())
    meta["through_seq"] = 29  # claim less was removed
    manifest.write_text(json.dumps(meta, indent=1))
    report = al.verify(aged)  # the store pins the manifest's SHA-256 in retention_log
    assert "boundary" in {p.kind for p in report.problems}
    assert any("the manifest was changed" in p.detail for p in report.problems)
    lake_report = verify_lake(lake)  # the next manifest's link breaks; the record is checked
    assert {("manifest", None), ("archive", 1)} <= {(p.kind, p.seq) for p in lake_report.problems}
    # the newest manifest, edited: no link after it, its record still checked
    newest = tmp_path / "newest"
    sync_lake(aged, newest)
    [res2] = apply_retention(aged, newest, now=NOW + timedelta(days=8))
    last = Path(str(res2.manifest))
    meta = json.loads(last.read_text())
    meta["merkle_root"] = "00" * 32
    last.write_text(json.dumps(meta, indent=1))
    assert [(p.kind, p.seq) for p in verify_lake(newest).problems] == [("archive", 31)]
    # a changed file, and every manifest that lists it edited to match: the links break
    lake2 = tmp_path / "lake2"
    store2 = al.open_store("sqlite://")
    append_aged(store2)
    set_plan(store2, ORG, "starter")
    apply_retention(store2, lake2, now=NOW)
    sync_lake(store2, lake2)
    path = _rewrite_row(lake2, 1)
    for listed in sorted((lake2 / "manifests").glob("sync-*.json")):
        data = json.loads(listed.read_text())
        for f in data["files"]:
            if lake2 / f["path"] == path:
                f["sha256"], f["bytes"] = file_sha256(path), path.stat().st_size
        listed.write_text(json.dumps(data, indent=1))
    lake_problems = verify_lake(lake2).problems
    assert ("modified", 1) in {(p.kind, p.seq) for p in lake_problems}
    assert "manifest" in {p.kind for p in lake_problems}
    report2 = al.verify(store2, include_archive=True)
    assert {"boundary", "archive"} <= {p.kind for p in report2.problems}
    assert any("manifests do not hold" in p.detail for p in report2.problems)


def test_retention_refuses_a_lake_that_does_not_continue_the_chain(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    behind = tmp_path / "behind"
    sync_lake(aged, behind, organization_id=ORG, through_seq=5)  # synced once, long ago
    apply_retention(aged, tmp_path / "elsewhere", now=NOW)  # 1..30 archived into another lake
    live = aged.count(organization_id=ORG)
    with pytest.raises(ArchiveError, match="does not continue"):
        apply_retention(aged, behind, now=NOW + timedelta(days=8))
    assert aged.count(organization_id=ORG) == live and archive_boundary(aged, ORG)[0] == 30  # type: ignore[index]
    assert al.verify(aged, include_archive=True).ok


def test_retention_refuses_a_lake_holding_another_stores_entries(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    other = al.open_store("sqlite://")
    append_aged(other)  # same organization, same seqs, other entries (other audit ids)
    sync_lake(other, lake)
    with pytest.raises(ArchiveError, match="not this store's entries"):
        apply_retention(aged, lake, now=NOW)
    assert aged.count(organization_id=ORG) == 51 and archive_boundary(aged, ORG) is None


def test_previous_format_archives_keep_working_and_new_ranges_go_to_the_lake(
    aged: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store archived by an earlier version (one manifest per range beside its files)
    keeps verifying and restoring; the next run writes the lake layout in the same folder."""
    archive = tmp_path / "archive"
    archive_previous_layout(monkeypatch, tmp_path / "staging")
    [old] = apply_retention(aged, archive, now=NOW)
    assert Path(str(old.manifest)).name == "manifest-000000000001-000000000030.json"
    monkeypatch.undo()
    [new] = apply_retention(aged, archive, now=NOW + timedelta(days=8))
    assert Path(str(new.manifest)).parent == archive / "manifests"
    assert_previous_and_lake_layout_read(aged, archive)


# -- hostile second read: races, and a lake whose manifests and files disagree ------------


def test_retention_racing_a_sync_on_the_same_lake_keeps_its_record(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    """Before the fix: a ``lake sync`` (cron) that read the lake before retention wrote its
    record numbered its own manifest the same and replaced the record; the entries were
    gone from the store and ``verify --lake`` accepted the lake as complete."""
    lake = tmp_path / "lake"
    sync_lake(aged, lake)
    aged.append([make_entry(organization_id=o) for o in (ORG, ORG2)])
    raced: list[BaseException | None] = []

    def retention_meanwhile(_rows: int) -> None:  # another process, while the sync writes
        if raced:
            return

        def run() -> None:
            try:
                apply_retention(aged, lake, now=NOW)
            except BaseException as exc:
                raced.append(exc)
            else:
                raced.append(None)

        other = threading.Thread(target=run)
        other.start()
        other.join()

    live = aged.count(organization_id=ORG)
    sync_lake(aged, lake, progress=retention_meanwhile)
    [refused] = raced
    assert isinstance(refused, ArchiveError), "retention ran while a sync wrote the lake"
    assert str(lake) in str(refused) and "another" in str(refused)
    assert aged.count(organization_id=ORG) == live and archive_boundary(aged, ORG) is None
    # run again once the sync is done: the record stays in the lake's chain
    [res] = apply_retention(aged, lake, now=NOW)
    assert res.through_seq == 30
    report = al.verify(aged, include_archive=True)
    assert report.ok and report.archived == 30, report.problems
    assert verify_lake(lake).ok
    assert lake_seqs(lake) == list(range(1, top_seq(aged)))  # the retention entry: not synced


def test_a_sync_refuses_while_another_writer_holds_the_lake(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    sync_lake(aged, lake)
    with lake_held(lake):  # another process's sync or retention run, mid-way
        aged.append([make_entry(organization_id=ORG)])
        with pytest.raises(ArchiveError, match="another lake sync or retention run"):
            sync_lake(aged, lake)
        with pytest.raises(ArchiveError, match="another lake sync or retention run"):
            apply_retention(aged, lake, now=NOW)
    assert archive_boundary(aged, ORG) is None and read_state(lake).last_sync == 1
    apply_retention(aged, lake, now=NOW)
    assert verify_lake(lake).ok and al.verify(aged, include_archive=True).ok


def test_a_removed_manifest_does_not_make_the_next_sync_delete_archived_rows(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    """Before the fix: after the newest manifest (a sync that compacted the archived rows
    into its files) was removed, the next sync deleted those files as a killed run's
    leftovers: the only copy of archived entries, gone for good."""
    lake = tmp_path / "lake"
    apply_retention(aged, lake, now=NOW)  # seq 1..30 are only in the lake now
    sync_lake(aged, lake)  # compacts the month's file: 2..30 now sit in this sync's file
    newest = sorted((lake / "manifests").glob("sync-*.json"))[-1]
    saved = newest.read_bytes()
    newest.unlink()  # the lake looks shorter
    report = al.verify(aged, include_archive=True)
    assert ("archive", 2) in {(p.kind, p.seq) for p in report.problems}, report.problems
    missing = {
        p.detail.split(" ")[0] for p in verify_lake(lake).problems if p.kind == "file_missing"
    }
    assert missing, "the lake verifier names the file the manifests list"
    aged.append([make_entry(organization_id=ORG)])
    for writer in (
        lambda: sync_lake(aged, lake),
        lambda: apply_retention(aged, lake, now=NOW + timedelta(days=8)),
    ):
        with pytest.raises(ArchiveError, match="missing") as refused:
            writer()
        assert any(m in str(refused.value) for m in missing), refused.value
        assert ORG in str(refused.value)
    # nothing was deleted: with the manifest back, everything holds again
    newest.write_bytes(saved)
    assert verify_lake(lake).ok
    assert al.verify(aged, include_archive=True).ok
    apply_retention(aged, lake, now=NOW + timedelta(days=8))
    assert al.verify(aged, include_archive=True).ok and verify_lake(lake).ok


def test_two_retention_runs_racing_record_the_range_once(
    aged: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the fix: a second run (an overlapping cron) that removed the range while the
    first was between its read-back and its transaction left two ``retention_log`` rows for
    seq 1..30; the first deleted nothing, recorded anyway, and ``verify`` failed for good."""
    lake = tmp_path / "lake"
    raced: list[object] = []
    started: list[bool] = []
    carry = ret.carry_forward

    def second_run_meanwhile(*args: object, **kwargs: object) -> object:
        if not started:  # the first run has read its archive back; the second runs through
            started.append(True)
            other = threading.Thread(
                target=lambda: raced.append(apply_retention(aged, lake, now=NOW))
            )
            other.start()
            other.join()
        return carry(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ret, "carry_forward", second_run_meanwhile)
    with pytest.raises(al.StoreError, match=rf"organization {ORG}: seq 1\.\.30 .*meanwhile"):
        apply_retention(aged, lake, now=NOW)
    [[second]] = raced  # type: ignore[misc]
    assert (second.first_seq, second.through_seq) == (1, 30)  # type: ignore[attr-defined]
    assert [(r.first_seq, r.through_seq) for r in ret.archived_ranges(aged, ORG)] == [(1, 30)]
    applied = aged.query(organization_id=ORG, action="audit_log.retention_applied")
    assert len(applied) == 1
    report = al.verify(aged, include_archive=True)
    assert report.ok and report.archived == 30, report.problems
    assert verify_lake(lake).ok  # the first run's record: a range it did not remove, still held


def test_retention_leaves_a_running_syncs_temporary_files_alone(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    """Before the fix: retention's clean-up of the previous layout's leftovers deleted every
    ``*.tmp`` in the organization's folder, a running sync's half-written file too (that
    sync then failed), even though retention itself was then refused by the lock."""
    lake = tmp_path / "lake"
    sync_lake(aged, lake, partition="date")
    folder = lake / f"organization_id={ORG}" / "date=2025-02-24"
    writing = folder / ".part-s000002-0.parquet.tmp"  # what a sync writes large files through
    with lake_held(lake, lambda: writing.write_bytes(b"PAR1 half a file")):  # a running sync
        with pytest.raises(ArchiveError, match="another lake sync or retention run"):
            apply_retention(aged, lake, now=NOW)
        assert writing.exists(), f"{writing}: a running sync's file was deleted"


def test_a_retention_record_cannot_vouch_for_a_changed_file(
    aged: al.AuditStore, tmp_path: Path
) -> None:
    """Before the fix: the lake took a retention record's file list as new files, so a
    record (the newest manifest: no link after it) re-listing a changed file with its new
    SHA-256 hid ``file_changed``; ``verify --lake`` named neither the file nor the record."""
    lake = tmp_path / "lake"
    [res] = apply_retention(aged, lake, now=NOW)
    record = Path(str(res.manifest))
    path = _rewrite_row(lake, 5)
    meta = json.loads(record.read_text())
    for f in meta["files"]:
        if lake / f["path"] == path:
            f["sha256"], f["bytes"] = file_sha256(path), path.stat().st_size
    record.write_text(json.dumps(meta, indent=1))
    problems = verify_lake(lake).problems
    rel = path.relative_to(lake).as_posix()
    changed = [p for p in problems if p.kind == "file_changed"]
    assert changed and rel in changed[0].detail, problems
    listed = [p for p in problems if p.kind == "manifest" and record.name in p.detail]
    assert listed and rel in listed[0].detail and listed[0].organization_id == ORG, problems
    report = al.verify(aged, include_archive=True)
    assert {"boundary", "archive"} <= {p.kind for p in report.problems}
