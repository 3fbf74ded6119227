"""Every archived range is in the trail: its ``audit_log.retention_applied`` entry, on
SQLite and PostgreSQL.

The attacker owns the database (triggers off) and can write the lake. Retention deletes a
range, writes its ``retention_log`` row and appends its entry in one transaction; a range
moved into the lake any other way — even with a genuine archive, a well-formed lake record
and a matching row, so that nothing is lost — must still be reported by ``verify``, naming
the organization, the seq range and the ``retention_log`` row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select
from typer.testing import CliRunner

import auditlens as al
import auditlens.retention as ret
from auditlens.chain.verify import OrganizationResult
from auditlens.cli.app import app
from auditlens.retention import apply_retention
from auditlens.store.backend import entries, retention_log
from tests.helpers import ORG, make_entry, plan_set_at
from tests.store.test_side_tables import without_triggers

APPLIED = "audit_log.retention_applied"


def ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def org_result(report: al.VerificationReport) -> OrganizationResult:
    return next(o for o in report.organizations if o.organization_id == ORG)


def retention_problems(report: al.VerificationReport) -> list[tuple[int | None, str]]:
    return [(p.seq, p.detail) for p in org_result(report).problems if p.kind == "retention"]


@pytest.fixture
def archived(store: al.AuditStore, tmp_path: Path) -> al.AuditStore:
    """ORG on starter (30 days) since long ago: 40 entries from 59.5 to 20.5 days old and 10
    recent ones; retention has archived seq 1..30 into the lake ``tmp_path / "lake"``."""
    store.append([make_entry(timestamp=ago(59.5 - i), details={"i": i}) for i in range(40)])
    store.append([make_entry(timestamp=ago(5 - i * 0.1)) for i in range(10)])
    plan_set_at(store, ORG, "starter", datetime.now(UTC) - timedelta(days=90))
    [res] = apply_retention(store, tmp_path / "lake", organization_id=ORG)
    assert (res.first_seq, res.through_seq) == (1, 30)
    return store


def forged_move(store: al.AuditStore, lake: Path, first: int, through: int) -> dict[str, object]:
    """The reviewer's attack: the database owner moves live seq ``first..through`` into the
    lake — a genuine archive of those entries and a lake retention record (as retention
    writes them), a ``retention_log`` row for it — and deletes them from the store. No
    ``audit_log.retention_applied`` entry. Returns the forged row."""
    frame = ret._rows(store, ORG, first, through)
    with ret.lake_lock(lake):
        manifest, manifest_sha256 = ret._archive_to_lake(store, lake, ORG, frame, first, through)
    row = {
        "organization_id": ORG,
        "first_seq": first,
        "through_seq": through,
        "last_entry_hash": frame["entry_hash"][-1],
        "rows": frame.height,
        "manifest": str(manifest),
        "manifest_sha256": manifest_sha256,
        "applied_ms": 0,
    }
    with without_triggers(store, "audit_entries") as conn:
        conn.execute(insert(retention_log).values(**row))
        conn.execute(
            delete(entries).where(
                entries.c.organization_id == ORG, entries.c.seq.between(first, through)
            )
        )
    return {**row, "merkle_root": ret._merkle_root(frame)}


def recorded(row: dict[str, object], **details: object) -> dict[str, object]:
    """An ``audit_log.retention_applied`` entry for ``row``, as retention writes one."""
    return {
        "actor": {"type": "system"},
        "action": APPLIED,
        "organization_id": ORG,
        "result": "success",
        "resource": {"type": "audit_log", "id": ORG, "name": Path(str(row["manifest"])).name},
        "details": {
            "plan": "starter",
            "retention_days": 30,
            "first_seq": row["first_seq"],
            "through_seq": row["through_seq"],
            "manifest": row["manifest"],
            "manifest_sha256": row["manifest_sha256"],
            "merkle_root": row["merkle_root"],
            "rows": row["rows"],
            **details,
        },
    }


def test_the_honest_path_verifies_clean(archived: al.AuditStore, store_url: str) -> None:
    [entry] = archived.entries(f"action:{APPLIED}")
    details = entry["details"]
    # what verify ties the entry to its row with: range, manifest, SHA-256, Merkle root
    assert (details["first_seq"], details["through_seq"]) == (1, 30)
    assert {"manifest", "manifest_sha256", "merkle_root", "cutoff_ms"} <= set(details)
    for include in (False, True):
        report = al.verify(archived, include_archive=include)
        assert report.ok, report.problems
        assert org_result(report).archived_entries == 30
    assert CliRunner().invoke(app, ["verify", "--db", store_url]).exit_code == 0


def test_the_reviewers_forged_move_is_reported(
    archived: al.AuditStore, tmp_path: Path, store_url: str
) -> None:
    forged_move(archived, tmp_path / "lake", 31, 40)
    for include in (False, True):
        report = al.verify(archived, include_archive=include)
        assert not report.ok
        # the archive, the record and the boundary all hold: only the trail tells
        assert {p.kind for p in org_result(report).problems} == {"retention"}
        [(seq, detail)] = retention_problems(report)
        assert seq == 31
        assert "retention_log row seq 31..40" in detail and APPLIED in detail
    result = CliRunner().invoke(app, ["verify", "--db", store_url])
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert ORG in out and "retention_log row seq 31..40" in out


def test_a_forged_entry_outside_the_chain_breaks_the_chain(
    archived: al.AuditStore, tmp_path: Path
) -> None:
    """The owner adds the missing record by INSERT, with hashes it cannot make chain."""
    row = forged_move(archived, tmp_path / "lake", 31, 40)
    with archived.engine.connect() as conn:
        last = (
            conn.execute(
                select(entries)
                .where(entries.c.organization_id == ORG)
                .order_by(entries.c.seq.desc())
            )
            .mappings()
            .first()
        )
    assert last is not None
    fake = dict(last)
    fake.pop("id")
    details = recorded(row)["details"]
    fake |= {
        "seq": last["seq"] + 1,
        "audit_id": str(uuid.uuid4()),
        "action": APPLIED,
        "details": json.dumps(details),
        "prev_hash": last["entry_hash"],
        "entry_hash": "ab" * 32,  # not SHA-256(prev ‖ content): the owner cannot chain it
    }
    with archived.engine.begin() as conn:
        conn.execute(insert(entries).values(**fake))
    report = al.verify(archived, include_archive=True)
    assert not report.ok
    broken = [p for p in org_result(report).problems if p.kind == "modified"]
    assert [p.seq for p in broken] == [last["seq"] + 1]  # the forged record is named
    # and the move it claims to record is still earlier than the plan allows
    assert [seq for seq, _ in retention_problems(report)] == [31]


def test_a_range_removed_earlier_than_the_plan_allows(
    archived: al.AuditStore, tmp_path: Path
) -> None:
    """Recorded in the trail (a chained entry, appended as anyone with INSERT can), but
    seq 31..40 are 28.5 to 20.5 days old under a 30-day plan — also when the entry claims a
    shorter plan than the plan history (org_plans and plan_changed entries) gives."""
    row = forged_move(archived, tmp_path / "lake", 31, 40)
    archived.append(recorded(row, plan="free", retention_days=7))
    report = al.verify(archived, include_archive=True)
    [(seq, detail)] = retention_problems(report)
    assert seq == 31  # the first entry newer than the cutoff
    assert "earlier than the plan allows" in detail and "30 days" in detail
    assert "retention_log row seq 31..40" in detail


def test_an_entry_with_other_values_does_not_record_the_range(
    archived: al.AuditStore, tmp_path: Path
) -> None:
    """A chained entry naming the range and manifest, but another manifest SHA-256."""
    row = forged_move(archived, tmp_path / "lake", 31, 40)
    archived.append(recorded({**row, "manifest_sha256": "00" * 32}))
    report = al.verify(archived, include_archive=True)
    [(seq, detail)] = retention_problems(report)
    assert seq == 31 and "name it otherwise" in detail


def test_a_retention_entry_whose_row_is_gone_is_reported(archived: al.AuditStore) -> None:
    [entry] = archived.entries(f"action:{APPLIED}")
    with without_triggers(archived, "retention_log") as conn:
        conn.execute(delete(retention_log).where(retention_log.c.organization_id == ORG))
    report = al.verify(archived)
    assert (entry["seq"], entry["seq"]) in {(s, s) for s, _ in retention_problems(report)}
    [detail] = [d for s, d in retention_problems(report) if s == entry["seq"]]
    assert "no retention_log row holds" in detail and "1..30" in detail


def test_a_main_store_never_reads_as_a_restored_copy(
    archived: al.AuditStore, tmp_path: Path
) -> None:
    """A restored side store is one where the organization never had a plan; a store that
    ran retention has its plan rows (append-only), so the check applies to it."""
    forged_move(archived, tmp_path / "lake", 31, 40)
    report = al.verify(archived)
    assert not org_result(report).restored_copy
    assert retention_problems(report)


def test_a_retention_entry_archived_by_a_later_run_still_records_its_range(
    store: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1, 45 days ago (its entry dated then), archives what was older than 75 days; run 2,
    today, archives the rest older than 30 days — run 1's entry too. verify finds that entry
    in the archive, and the plan in force 45 days ago allowed run 1's range."""
    from auditlens.review import review_entries

    store.append([make_entry(timestamp=ago(100 - i), details={"i": i}) for i in range(60)])
    plan_set_at(store, ORG, "starter", datetime.now(UTC) - timedelta(days=120))
    then = datetime.now(UTC) - timedelta(days=45)

    def recorded_then(
        s: al.AuditStore,
        action: str,
        counts: Mapping[str, int],
        details: Mapping[str, Any],
        name: str,
    ) -> int:
        made = review_entries(s, action, counts, details, name)
        s.append([{**e, "timestamp": then.isoformat()} for e in made])
        return len(made)

    monkeypatch.setattr(ret, "record_review", recorded_then)
    [first] = apply_retention(store, tmp_path / "lake", organization_id=ORG, now=then)
    monkeypatch.undo()
    [second] = apply_retention(store, tmp_path / "lake", organization_id=ORG)
    assert first.through_seq is not None and second.through_seq is not None
    assert second.through_seq > first.through_seq + 1  # run 1's entry is archived
    assert store.count(organization_id=ORG, action=APPLIED) == 1  # only run 2's is live
    report = al.verify(store, include_archive=True)
    assert report.ok, report.problems


def test_a_retention_entry_dated_in_the_future_does_not_move_the_cutoff(
    archived: al.AuditStore, tmp_path: Path
) -> None:
    """The entry's timestamp is the producer's to give; the cutoff is judged at the
    verifier's clock at the latest."""
    row = forged_move(archived, tmp_path / "lake", 31, 40)
    future = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    archived.append({**recorded(row), "timestamp": future})
    report = al.verify(archived, include_archive=True)
    [(seq, detail)] = retention_problems(report)
    assert seq == 31 and "earlier than the plan allows" in detail
