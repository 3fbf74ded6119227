"""Burst detectors: fire / no-fire timelines at the edges of their thresholds and windows."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest

import auditlens as al
from auditlens.detect import (
    brute_force_success,
    bulk_deletions,
    failed_login_spikes,
    password_spray,
)
from tests.detect.timeline import fails, timeline


def ids(findings: pl.DataFrame) -> list[list[str]]:
    return [sorted(x) for x in findings["audit_ids"].to_list()]


def test_spike_fires_above_the_threshold_only() -> None:
    assert failed_login_spikes(timeline(*fails(5))).height == 0  # exactly 5: not "more than 5"
    f = failed_login_spikes(timeline(*fails(6)))
    assert f.height == 1
    assert f["count"][0] == 6 and f["subject"][0] == "jane@x.io" and f["severity"][0] == "high"


def test_spike_uses_true_sliding_windows_not_buckets() -> None:
    # 3 failures at 12:03-12:04 and 3 at 12:05-12:06 straddle a 5-minute bucket edge
    f = failed_login_spikes(timeline(*fails(3, start=3), *fails(3, start=5.1)))
    assert f.height == 1 and f["count"][0] == 6


def test_a_gap_just_outside_the_window_does_not_fire() -> None:
    # 0.0, 0.1, 0.2 then three more: the window (t − 5 min, t] excludes its start
    early = fails(3, start=0, step=0.1)
    assert failed_login_spikes(timeline(*early, *fails(3, start=5.0, step=0.04))).height == 0
    assert failed_login_spikes(timeline(*early, *fails(3, start=4.9, step=0.04))).height == 1


def test_overlapping_windows_of_one_burst_merge_into_one_finding() -> None:
    f = failed_login_spikes(timeline(*fails(30, step=0.5)))  # 15 minutes of failures
    assert f.height == 1 and f["count"][0] == 30 and len(f["audit_ids"][0]) == 30
    assert f["severity"][0] == "critical"  # ≥ 4× the threshold


def test_other_users_do_not_add_up_but_by_ip_does() -> None:
    tl = timeline(*fails(3, actor="a@x.io"), *fails(3, actor="b@x.io"))
    assert failed_login_spikes(tl).height == 0
    f = failed_login_spikes(tl, by="ip")
    assert f.height == 1 and f["subject_type"][0] == "ip" and f["subject"][0] == "1.2.3.4"


def test_finding_ids_are_deterministic_and_frames_round_trip_pandas() -> None:
    tl = timeline(*fails(8))
    a, b = failed_login_spikes(tl), failed_login_spikes(tl)
    assert a["finding_id"].to_list() == b["finding_id"].to_list()
    pdf = failed_login_spikes(tl.to_pandas())
    assert isinstance(pdf, pd.DataFrame)
    assert pdf["finding_id"].tolist() == a["finding_id"].to_list()


def test_brute_force_needs_the_success_within_the_window() -> None:
    tl = timeline(*fails(5), (10, "auth.login", "success", "jane@x.io", "1.2.3.4"))
    f = brute_force_success(tl)
    assert f.height == 1 and f["severity"][0] == "critical" and f["count"][0] == 6
    assert ids(f)[0][-1] == "e005"
    assert (
        brute_force_success(
            timeline(*fails(4), (3, "auth.login", "success", "jane@x.io", "1.2.3.4"))
        ).height
        == 0
    )
    late = timeline(*fails(5), (31, "auth.login", "success", "jane@x.io", "1.2.3.4"))
    assert brute_force_success(late).height == 0
    failed_login = timeline(*fails(5), (10, "auth.login", "failure", "jane@x.io", "1.2.3.4"))
    assert brute_force_success(failed_login).height == 0


def test_brute_force_from_one_ip_against_the_account_is_reported_once() -> None:
    tl = timeline(*fails(6, ip="9.9.9.9"), (8, "auth.login", "success", "jane@x.io", "9.9.9.9"))
    f = brute_force_success(tl)
    assert f.height == 1 and f["subject_type"][0] == "actor"


def test_password_spray_counts_distinct_accounts() -> None:
    spray = [(i * 0.5, "auth.failed", "failure", f"user{i}@x.io", "6.6.6.6") for i in range(10)]
    f = password_spray(timeline(*spray))
    assert f.height == 1 and f["subject"][0] == "6.6.6.6" and f["count"][0] == 10
    assert password_spray(timeline(*spray[:9])).height == 0
    same_user = [(i * 0.5, "auth.failed", "failure", "jane@x.io", "6.6.6.6") for i in range(20)]
    assert password_spray(timeline(*same_user)).height == 0
    slow = [(i * 1.2, "auth.failed", "failure", f"user{i}@x.io", "6.6.6.6") for i in range(10)]
    assert password_spray(timeline(*slow)).height == 0  # 10 accounts over 10.8 minutes


def test_bulk_deletions() -> None:
    dels = [(i * 0.5, "webhook.deleted", "success", "bob@x.io", "1.1.1.1") for i in range(11)]
    f = bulk_deletions(timeline(*dels))
    assert f.height == 1 and f["count"][0] == 11 and "bob@x.io deleted 11" in f["summary"][0]
    assert bulk_deletions(timeline(*dels[:10])).height == 0
    mixed = dels[:6] + [(4, "user.removed", "success", "bob@x.io", "1.1.1.1")] * 5
    assert bulk_deletions(timeline(*mixed)).height == 1
    failed = [(m, a, "failure", u, ip) for m, a, _, u, ip in dels]
    assert bulk_deletions(timeline(*failed)).height == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda tl: failed_login_spikes(tl, threshold=0), "threshold must be a whole number"),
        (lambda tl: failed_login_spikes(tl, window="soon"), "not a duration"),
        (lambda tl: failed_login_spikes(tl, by="planet"), "by must be"),
        (lambda tl: password_spray(tl, accounts=-1), "accounts must be"),
        (lambda tl: brute_force_success(tl, by=("moon",)), "by must be"),
        (lambda tl: failed_login_spikes(tl.drop("action")), "lacks column"),
    ],
)
def test_parameters_are_validated(call, message: str) -> None:
    with pytest.raises(al.FilterError, match=message):
        call(timeline(*fails(2)))
