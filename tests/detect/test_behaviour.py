"""Off-hours and unusual-access detectors on small timelines."""

from __future__ import annotations

import polars as pl
import pytest

import auditlens as al
from auditlens.detect import off_hours, run_all, unusual_access
from tests.detect.timeline import timeline

ROLE = ("user", "u-1", "x@x.io")


def test_off_hours_by_local_time_and_sensitivity() -> None:
    # T0 is Monday 12:00 UTC: 19:00 in Bangkok, 07:00 in New York
    tl = timeline(
        (0, "auth.login", "success", "a@x.io", "1.1.1.1"),
        (1, "user.role_changed", "success", "a@x.io", "1.1.1.1", None, ROLE),
        (0, "auth.login", "success", "b@x.io", "1.1.1.2"),
    )
    assert off_hours(tl).height == 0  # noon UTC
    f = off_hours(tl, timezones={"a@x.io": "Asia/Bangkok", "b@x.io": "America/New_York"})
    rows = {r["subject"]: r for r in f.iter_rows(named=True)}
    assert rows["a@x.io"]["severity"] == "high" and "user.role_changed" in rows["a@x.io"]["summary"]
    assert rows["b@x.io"]["severity"] == "low" and rows["b@x.io"]["count"] == 1


def test_off_hours_weekends_holidays_and_machines() -> None:
    saturday = timeline((5 * 24 * 60, "webhook.updated", "success", "a@x.io", "1.1.1.1"))
    assert off_hours(saturday)["severity"].to_list() == ["medium"]
    assert off_hours(saturday, weekends=False).height == 0
    assert (
        off_hours(
            timeline((0, "auth.login", "success", "a@x.io", "1.1.1.1")), holidays=["2025-01-06"]
        ).height
        == 1
    )
    machine = timeline((600, "webhook.tested", "success", None, None))  # 22:00 UTC, system actor
    assert off_hours(machine).height == 0
    with pytest.raises(al.FilterError, match="unknown time zone"):
        off_hours(saturday, timezone="Mars/Olympus")
    with pytest.raises(al.FilterError, match="business_hours"):
        off_hours(saturday, business_hours="18:00-08:00")


def history(n: int, actor: str = "a@x.io", ip: str = "10.0.0.5") -> list[tuple]:
    return [(i, "webhook.tested", "success", actor, ip) for i in range(n)]


def test_new_network_and_agent_after_enough_history() -> None:
    tl = timeline(
        *history(25),
        (30, "auth.login", "success", "a@x.io", "102.1.1.1", "curl/8.5.0"),
        (31, "webhook.updated", "success", "a@x.io", "102.1.1.1", "curl/8.5.0"),
    )
    f = unusual_access(tl)
    assert f.height == 1 and f["severity"][0] == "high" and f["count"][0] == 2
    assert "new network (102.1.1)" in f["summary"][0] and "curl" in f["summary"][0]
    same_net = timeline(*history(25), (30, "auth.login", "success", "a@x.io", "10.0.0.77"))
    assert unusual_access(same_net).height == 0  # same /24
    short = timeline(*history(5), (30, "auth.login", "success", "a@x.io", "102.1.1.1"))
    assert unusual_access(short).height == 0  # not enough history to call it unusual
    failed = timeline(*history(25), (30, "auth.failed", "failure", "a@x.io", "102.1.1.1"))
    assert unusual_access(failed).height == 0  # a failed attempt is not access


def test_dormant_account_waking_up() -> None:
    tl = timeline(*history(25), (25 + 20 * 24 * 60, "auth.login", "success", "a@x.io", "10.0.0.5"))
    f = unusual_access(tl)
    assert f.height == 1 and "after 20 days" in f["summary"][0]


def test_activity_after_suspension_is_critical() -> None:
    tl = timeline(
        (
            0,
            "user.suspended",
            "success",
            "admin@x.io",
            "1.1.1.1",
            None,
            ("user", "u-9", "Eve@x.io"),
        ),
        (-5, "webhook.updated", "success", "eve@x.io", "2.2.2.2"),  # before: fine
        (90, "auth.failed", "failure", "eve@x.io", "2.2.2.2"),  # a failed try is not activity
        (95, "auth.login", "success", "eve@x.io", "2.2.2.2"),
    )
    f = unusual_access(tl)
    assert f["severity"].to_list() == ["critical"]
    assert f["audit_ids"].to_list() == [["e003"]]
    assert "after user.suspended" in f["summary"][0]


def test_run_all_with_config() -> None:
    tl = timeline((0, "auth.login", "success", "a@x.io", "1.1.1.1"))
    out = run_all(
        tl, {"off_hours": {"timezones": {"a@x.io": "Asia/Bangkok"}}, "unusual_access": False}
    )
    assert out["detector"].to_list() == ["off_hours"]
    with pytest.raises(al.FilterError, match="unknown detector"):
        run_all(tl, {"nope": {}})
    with pytest.raises(al.FilterError, match="detector off_hours"):
        run_all(tl, {"off_hours": {"colour": "red"}})
    assert isinstance(run_all(tl.to_pandas()), type(tl.to_pandas()))
    assert set(out.columns) >= {"finding_id", "audit_ids", "summary", "window_start"}
    assert out.schema["audit_ids"] == pl.List(pl.Utf8)


def test_off_hours_ignores_guessed_accounts_of_failed_sign_ins() -> None:
    # a sprayer's guesses at 03:00 UTC are failures: not people working late
    guesses = [
        (-9 * 60 + i, "auth.failed", "failure", f"guess{i}@x.io", "6.6.6.6") for i in range(5)
    ]
    assert off_hours(timeline(*guesses)).height == 0
    worked = timeline((-9 * 60, "auth.login", "success", "guess0@x.io", "6.6.6.6"))
    assert off_hours(worked).height == 1


def test_entries_in_one_millisecond_are_ordered_by_seq_in_any_row_order() -> None:
    """Back after three days with two entries in the same millisecond: the one with the lower
    seq is the wake-up (the evidence, part of the finding id), whatever the row order."""
    tl = timeline(
        *[(m, "doc.viewed", "success", "ann@x.io", "10.0.0.1") for m in (0, 1, 2)],
        (3 * 24 * 60, "doc.viewed", "success", "ann@x.io", "10.0.0.1"),
        (3 * 24 * 60, "doc.updated", "success", "ann@x.io", "10.0.0.1"),
    ).with_columns(pl.Series("seq", [1, 2, 3, 5, 4]))
    found = {
        unusual_access(
            tl.sample(fraction=1.0, shuffle=True, seed=seed), min_history=2, dormant="1d"
        )["audit_ids"].to_list()[0][0]
        for seed in range(8)
    }
    assert found == {"e004"}  # seq 4
