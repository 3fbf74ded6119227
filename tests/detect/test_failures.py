"""failure_bursts: fire / no-fire timelines at the edges of its threshold and window."""

from __future__ import annotations

import json

import polars as pl
import pytest

import auditlens as al
from auditlens.detect import failure_bursts
from tests.detect.timeline import as_entries, evidence_back, timeline

DENIED = {"error_code": "AccessDenied"}


def denied(
    n: int,
    start: float = 0,
    step: float = 0.05,
    actor: str | None = "ci@x.io",
    ip: str | None = "198.51.100.7",
    action: str = "ec2.get_password_data",
) -> list[tuple]:
    return [(start + i * step, action, "failure", actor, ip, None, None, DENIED) for i in range(n)]


def test_fires_above_the_threshold_only() -> None:
    assert failure_bursts(timeline(*denied(10))).height == 0  # exactly 10: not "more than 10"
    f = failure_bursts(timeline(*denied(11)))
    assert f.height == 1  # the source finding tells the same storm: left out
    row = f.row(0, named=True)
    assert row["subject_type"] == "actor" and row["subject"] == "ci@x.io"
    assert row["count"] == 11 and row["severity"] == "medium"
    assert "ec2.get_password_data ×11" in row["summary"]
    assert json.loads(row["details"]) == {
        "actions": [{"action": "ec2.get_password_data", "count": 11}],
        "errors": ["AccessDenied"],
    }


def test_the_window_excludes_its_start() -> None:
    # 6 failures at 12:00:00, 5 at exactly 12:05:00: the window (t − 5 min, t] of the later
    # ones no longer holds the first six; 0.6 s earlier it holds all eleven
    early = denied(6, step=0)
    assert failure_bursts(timeline(*early, *denied(5, start=5.0, step=0))).height == 0
    f = failure_bursts(timeline(*early, *denied(5, start=4.99, step=0)))
    assert f.height == 1 and f["count"][0] == 11


def test_ties_at_one_instant_count_each_entry() -> None:
    f = failure_bursts(timeline(*denied(11, step=0)))
    assert f.height == 1 and f["count"][0] == 11


def test_successes_sign_in_failures_and_other_organizations_do_not_add_up() -> None:
    ok = [
        (i * 0.05, "ec2.get_password_data", "success", "ci@x.io", "198.51.100.7") for i in range(5)
    ]
    assert failure_bursts(timeline(*denied(10), *ok)).height == 0
    logins = [(i * 0.05, "auth.failed", "failure", "ci@x.io", "198.51.100.7") for i in range(30)]
    assert failure_bursts(timeline(*logins)).height == 0  # failed_login_spikes' business
    assert failure_bursts(timeline(*logins), exclude=()).height == 1
    two_orgs = pl.concat([timeline(*denied(6), org="org-a"), timeline(*denied(6), org="org-b")])
    assert failure_bursts(two_orgs).height == 0


def test_storms_of_many_actions_and_severity() -> None:
    mixed = denied(12, action="iam.list_users") + denied(24, start=0.01, action="s3.get_object")
    f = failure_bursts(timeline(*mixed))
    assert f["severity"].to_list() == ["high"]  # 36 ≥ 3 × 10
    assert "s3.get_object ×24, iam.list_users ×12" in f["summary"][0]


def test_one_source_many_actors_and_null_actor_or_ip() -> None:
    # two credentials from one address, 6 failures each: a source burst, no actor burst
    tl = timeline(*denied(6, actor="a@x.io"), *denied(6, start=0.02, actor="b@x.io"))
    f = failure_bursts(tl)
    assert f["subject_type"].to_list() == ["ip"] and f["count"][0] == 12
    # no actor: only the source can carry it; no address: only the actor
    assert failure_bursts(timeline(*denied(12, actor=None)))["subject_type"].to_list() == ["ip"]
    assert failure_bursts(timeline(*denied(12, actor=None)), by="actor").height == 0
    assert failure_bursts(timeline(*denied(12, ip=None)))["subject_type"].to_list() == ["actor"]
    assert failure_bursts(timeline(*denied(12, ip=None)), by="ip").height == 0


def test_sources_grouped_by_network() -> None:
    spread = [
        *denied(4, ip="203.0.113.5", actor="a@x.io"),
        *denied(4, start=0.01, ip="203.0.113.77", actor="b@x.io"),
        *denied(4, start=0.02, ip="203.0.113.200", actor="c@x.io"),
    ]
    assert failure_bursts(timeline(*spread)).height == 0
    f = failure_bursts(timeline(*spread), group_by_network=True)
    assert f["subject_type"].to_list() == ["network"]
    assert f["subject"].to_list() == ["203.0.113.0/24"] and f["count"][0] == 12
    v6 = [
        *denied(6, ip="2001:db8:1:2::10", actor="a@x.io"),
        *denied(6, start=0.01, ip="2001:db8:1:2:ffff::1", actor="b@x.io"),
    ]
    f6 = failure_bursts(timeline(*v6), group_by_network=True)
    assert f6["subject"].to_list() == ["2001:db8:1:2::/64"]
    assert (
        failure_bursts(timeline(*v6), group_by_network=True, network_prefix=(24, 128)).height == 0
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0}, "threshold must be"),
        ({"window": "soon"}, "not a duration"),
        ({"by": ("moon",)}, "by must be"),
        ({"network_prefix": (33, 64)}, "network_prefix"),
    ],
)
def test_parameters_are_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(al.FilterError, match=message):
        failure_bursts(timeline(*denied(2)), **kwargs)


def test_through_the_store(store: al.AuditStore) -> None:
    tl = timeline(*denied(11), *denied(10, start=30))
    store.append(as_entries(tl))
    f = store.detect("failure_bursts")
    assert f.height == 1 and evidence_back(f, tl) == [[f"e{i:03d}" for i in range(11)]]
    assert store.detect("failure_bursts", config={"threshold": 11}).height == 0
