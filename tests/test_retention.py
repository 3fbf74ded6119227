"""Retention per plan through a verified Parquet archive, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import auditlens as al
from auditlens.chain.notes import SigningKey
from auditlens.retention import (
    ArchiveError,
    apply_retention,
    archive_boundary,
    read_archive,
    set_plan,
)
from tests.helpers import NOW, ORG, ORG2, days_ago, make_entry


def test_old_entries_are_archived_verified_and_removed(aged: al.AuditStore, tmp_path: Path) -> None:
    key = SigningKey.generate("t/log")
    aged.checkpoint(ORG, key)  # a checkpoint that covers what will be archived
    aged.checkpoint(ORG2, key)  # with a trusted key, every organization needs one
    dry = apply_retention(aged, tmp_path, now=NOW, dry_run=True)
    assert [(r.organization_id, r.first_seq, r.through_seq, r.rows) for r in dry] == [
        (ORG, 1, 30, 30)
    ]
    assert aged.count(organization_id=ORG) == 51  # a dry run changes nothing
    [res] = apply_retention(aged, tmp_path, now=NOW)
    assert (res.first_seq, res.through_seq, res.rows) == (1, 30, 30)
    assert aged.count(organization_id=ORG, action="webhook.created") == 20
    assert aged.count(organization_id=ORG2) == 50  # no plan: never touched
    # the archive is Hive-partitioned by organization and month, with a manifest
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert [f.split("/")[1] for f in files] == ["month=2024-12", "month=2025-01"]
    assert all(f.startswith(f"organization_id={ORG}/") for f in files)
    archived = read_archive(res.manifest)  # type: ignore[arg-type]
    assert archived["seq"].to_list() == list(range(1, 31))
    assert archive_boundary(aged, ORG)[0] == 30  # type: ignore[index]
    # the log still verifies: the chain starts at the archived boundary, the checkpoint's
    # tree is rebuilt from the archive's leaves plus the live ones
    report = al.verify(aged, keys=[key.verifier], include_archive=True)
    assert report.ok, report.problems
    org = next(o for o in report.organizations if o.organization_id == ORG)
    assert org.first_seq == 31 and org.latest_checkpoint_size == 51
    # who did it is in the trail
    [entry] = aged.entries("action:audit_log.retention_applied")
    assert entry["details"]["through_seq"] == 30 and entry["organization_id"] == ORG
    # ad-hoc DELETE is still refused
    with pytest.raises(DBAPIError, match="append-only"), aged.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE seq = 31"))


def test_rerun_is_idempotent_and_later_runs_continue(aged: al.AuditStore, tmp_path: Path) -> None:
    apply_retention(aged, tmp_path, now=NOW)
    [again] = apply_retention(aged, tmp_path, now=NOW)
    assert again.rows == 0
    [later] = apply_retention(aged, tmp_path, now=NOW + timedelta(days=8))
    assert (later.first_seq, later.through_seq) == (31, 38)  # older than 22 days by then
    assert al.verify(aged, include_archive=True).ok


def test_a_crash_before_the_delete_loses_nothing(
    aged: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditlens.retention as ret

    real = ret.read_archive

    def crash(*args: object, **kwargs: object) -> object:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt("power cut after the archive was written")

    monkeypatch.setattr(ret, "read_archive", crash)
    with pytest.raises(KeyboardInterrupt):
        apply_retention(aged, tmp_path, now=NOW)
    assert aged.count(organization_id=ORG) == 51 and archive_boundary(aged, ORG) is None
    monkeypatch.setattr(ret, "read_archive", real)
    [res] = apply_retention(aged, tmp_path, now=NOW)  # the rerun completes the job
    assert res.rows == 30 and al.verify(aged).ok


def test_a_tampered_archive_is_refused_and_reported(aged: al.AuditStore, tmp_path: Path) -> None:
    [res] = apply_retention(aged, tmp_path, now=NOW)
    manifest = json.loads(res.manifest.read_text())  # type: ignore[union-attr]
    victim = tmp_path / manifest["files"][0]["path"]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ArchiveError, match="SHA-256"):
        read_archive(res.manifest)  # type: ignore[arg-type]
    report = al.verify(aged, include_archive=True)
    assert [p.kind for p in report.problems] == ["archive"]


def test_plans() -> None:
    store = al.open_store("sqlite://")
    with pytest.raises(al.ConfigError, match="plan must be one of"):
        set_plan(store, ORG, "platinum")
    with pytest.raises(al.ConfigError, match="enterprise plan only"):
        set_plan(store, ORG, "pro", retention_days=10)
    set_plan(store, ORG, "enterprise")  # unlimited
    store.append(make_entry(timestamp=days_ago(3000)))
    [res] = apply_retention(store, "/nonexistent", now=NOW)
    assert res.rows == 0 and res.retention_days is None
    with pytest.raises(al.ConfigError, match="has no plan"):
        apply_retention(store, "/tmp", organization_id=ORG2, now=NOW)


def test_cli_plan_retention_archive_and_verify(store_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from auditlens.cli import app

    recent = datetime.now(UTC)
    with al.open_store(store_url) as s:
        s.append(
            [make_entry(timestamp=(recent - timedelta(days=20 - i)).isoformat()) for i in range(20)]
        )
    run = CliRunner().invoke
    archive = str(tmp_path / "archive")
    assert run(app, ["plan", "set", ORG, "free", "--db", store_url]).exit_code == 0
    res = run(app, ["retention", "apply", "--db", store_url, "--archive", archive, "--dry-run"])
    assert res.exit_code == 0 and "would archive seq 1..14" in res.stdout
    res = run(app, ["retention", "apply", "--db", store_url, "--archive", archive])
    assert res.exit_code == 0 and "archived and removed seq 1..14" in res.stdout
    res = run(app, ["archive", "list", "--db", store_url])
    assert "1..14" in res.stdout
    res = run(app, ["verify", "--db", store_url, "--include-archive"])
    assert res.exit_code == 0, res.stdout
    assert "14 archived entries: every archive file and link re-verified" in res.stdout
    assert "archived seq 1..14: not covered by a signed checkpoint" in res.stdout
    out = tmp_path / "restored.parquet"
    restore = ["archive", "restore", "--org", ORG, "--out", str(out), "--db", store_url]
    res = run(app, restore)
    assert res.exit_code == 3 and "requires the enterprise plan" in res.stderr
    assert (
        run(app, ["plan", "set", ORG, "enterprise", "--days", "7", "--db", store_url]).exit_code
        == 0
    )
    # no signed checkpoint covers the archive: refused, unless asked, then loudly warned
    res = run(app, restore)
    assert res.exit_code == 1 and "no signed checkpoint covers seq 1..14" in res.stderr
    assert "--allow-unanchored" in res.stderr and not out.exists()
    res = run(app, [*restore, "--allow-unanchored"])
    assert res.exit_code == 0 and "restored 14 verified entries" in res.stdout
    assert "WARNING: no signed checkpoint covers seq 1..14" in res.stderr
    key = SigningKey.generate("t/log")
    with al.open_store(store_url) as s:
        cp = s.checkpoint(ORG, key)  # after retention, its tree starts with the archived leaves
    res = run(app, [*restore, "--key", key.verifier.vkey])
    assert res.exit_code == 0 and "restored 14 verified entries" in res.stdout
    assert f"seq 1..14 covered by the signed checkpoint of tree size {cp.tree_size}" in res.stdout
    assert "WARNING" not in res.stderr
    res = run(app, ["verify", "--db", store_url, "--key", key.verifier.vkey])
    assert (
        res.exit_code == 0
        and f"archived seq 1..14: covered by checkpoint {cp.tree_size}" in res.stdout
    )
    assert "14 archived entries: manifests and boundaries checked" in res.stdout
    import polars as pl

    assert pl.read_parquet(out)["seq"].to_list() == list(range(1, 15))
    with al.open_store(store_url) as s:
        assert s.count("action:audit_log.restored") == 2  # the refused one is not recorded
    res = run(app, ["retention", "apply", "--db", store_url])
    assert res.exit_code == 3 and "no archive location" in res.stderr


def test_restore_into_a_queryable_side_store(aged: al.AuditStore, tmp_path: Path) -> None:
    from auditlens.retention import restore_archive

    key = SigningKey.generate("t/log")
    cp = aged.checkpoint(ORG, key)  # signed before retention: it vouches for the archive
    apply_retention(aged, tmp_path / "archive", now=NOW)
    with pytest.raises(al.ConfigError, match="enterprise"):
        restore_archive(aged, ORG)
    set_plan(aged, ORG, "enterprise")
    side = f"sqlite:///{tmp_path / 'side.db'}"
    # a window in the middle of the archive: its seq range is restored whole
    res = restore_archive(
        aged, ORG, start=days_ago(50), end=days_ago(41), into=side, keys=[key.verifier]
    )
    frame = res.entries
    assert frame["seq"].to_list() == list(range(11, 21))
    assert (res.first_seq, res.last_seq, res.checkpoint_size) == (11, 20, cp.tree_size)
    with al.open_store(side) as s:
        assert s.count(organization_id=ORG) == 10
        # every query works there: search (full text too), detectors, verification
        assert s.search('"webhook" i', backend="polars").height == 10
        assert s.count(text="Production Webhook") == 10
        # verification starts at the first restored entry: seq 1..10 are the archive's
        report = al.verify(s, include_archive=True)
        assert report.ok, report.problems
        assert (report.checked, report.archived) == (10, 10)
        # its retention_log rows anchor restored entries: their retention_applied entries
        # are in the source store (checked there), and the report says so
        assert [o.restored_copy for o in report.organizations] == [True]
        got = s.entries(order="asc")
        assert [e["seq"] for e in got] == list(range(11, 21))
        assert got[0]["entry_hash"] == frame["entry_hash"][0]
    with pytest.raises(al.StoreError, match="already holds entries"):
        restore_archive(aged, ORG, into=side, keys=[key.verifier])
    assert aged.count("action:audit_log.restored") == 1  # the refused one is not recorded
    [restored] = aged.entries("action:audit_log.restored")
    assert restored["details"]["checkpoint"] == cp.tree_size


def test_restore_across_two_archived_ranges(aged: al.AuditStore, tmp_path: Path) -> None:
    from auditlens.retention import restore_archive

    apply_retention(aged, tmp_path, organization_id=ORG, now=NOW)  # seq 1..30
    apply_retention(aged, tmp_path, organization_id=ORG, now=NOW + timedelta(days=8))  # 31..38
    set_plan(aged, ORG, "enterprise")
    side = f"sqlite:///{tmp_path / 'side.db'}"
    # the window starts where the second range starts: the first range anchors it as it is
    res = restore_archive(aged, ORG, start=days_ago(30), into=side, allow_unanchored=True)
    assert (res.first_seq, res.last_seq, res.checkpoint_size) == (31, 38, None)
    with al.open_store(side) as s:
        report = al.verify(s, include_archive=True)
        assert report.ok, report.problems
        assert (report.checked, report.archived) == (8, 30)


def test_the_organization_context_outlives_the_entries_that_set_it(
    store: al.AuditStore, tmp_path: Path
) -> None:
    """Retention archiving the profile_changed entry must not reset the org to UTC."""
    from auditlens.context import PERSON_SET, OrgProfile, Person, person_entry, profile_entry

    owner = {"email": "owner@acme.example", "type": "user"}
    profile = profile_entry(OrgProfile(ORG, "Acme", "Asia/Tokyo", "09:00-18:00"), owner)
    lena = Person(ORG, "lena@acme.example", "Europe/Berlin")
    person = person_entry(ORG, PERSON_SET, lena, owner, None)
    for i, e in enumerate((profile, person)):
        e["timestamp"] = days_ago(59 - i)
        e["audit_id"] = make_entry()["audit_id"]
    store.append([profile, person])
    store.append([make_entry(organization_id=ORG, timestamp=days_ago(58 - i)) for i in range(5)])
    store.append([make_entry(organization_id=ORG, timestamp=days_ago(2))])
    set_plan(store, ORG, "starter")
    [res] = apply_retention(store, tmp_path, now=NOW)
    assert res.through_seq == 7  # the context entries are archived with the rest
    assert store.get(profile["audit_id"]) is None
    kept = store.org_profile(ORG)
    assert (kept.name, kept.timezone, kept.hours) == ("Acme", "Asia/Tokyo", "09:00-18:00")
    assert [(p.email, p.timezone) for p in store.people(ORG)] == [
        ("lena@acme.example", "Europe/Berlin")
    ]
    carried = store.entries(actions=["organization.profile_changed", "organization.person_set"])
    assert sorted(e["details"]["carried_forward_from"] for e in carried) == sorted(
        [profile["audit_id"], person["audit_id"]]
    )
    assert all(e["actor"]["type"] == "system" for e in carried)
    assert al.verify(store).ok
