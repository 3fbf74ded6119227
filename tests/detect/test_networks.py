"""Network grouping: one guesser spread over a /24 (or a /64) is one source."""

from __future__ import annotations

import pytest

import auditlens as al
from auditlens.detect import failed_login_spikes, password_spray
from auditlens.detect.networks import network_of
from tests.detect.timeline import fails, timeline


@pytest.mark.parametrize(
    ("ip", "prefix", "net"),
    [
        ("203.0.113.77", (24, 64), "203.0.113.0/24"),
        ("203.0.113.77", (16, 64), "203.0.0.0/16"),
        ("2001:db8:1:2:3:4:5:6", (24, 64), "2001:db8:1:2::/64"),
        ("2001:db8:1:2:3:4:5:6", (24, 48), "2001:db8:1::/48"),
        ("::ffff:198.51.100.9", (24, 64), "198.51.100.0/24"),
        ("unknown", (24, 64), "unknown"),
        (None, (24, 64), None),
    ],
)
def test_network_of(ip: str | None, prefix: tuple[int, int], net: str | None) -> None:
    assert network_of(ip, prefix) == net


def test_spikes_from_three_addresses_of_one_network() -> None:
    spread = [
        *fails(2, ip="198.51.100.7", actor="a@x.io"),
        *fails(2, start=0.1, ip="198.51.100.8", actor="b@x.io"),
        *fails(2, start=0.2, ip="198.51.100.250", actor="c@x.io"),
    ]
    tl = timeline(*spread)
    assert failed_login_spikes(tl, by="ip").height == 0
    f = failed_login_spikes(tl, by="ip", group_by_network=True)
    assert f["subject"].to_list() == ["198.51.100.0/24"] and f["subject_type"][0] == "network"
    assert f["count"][0] == 6
    # by actor, networks do not apply
    assert failed_login_spikes(tl, group_by_network=True).height == 0
    # the next /24 is another network
    other = timeline(*spread[:4], *fails(2, start=0.2, ip="198.51.101.1", actor="c@x.io"))
    assert failed_login_spikes(other, by="ip", group_by_network=True).height == 0


def test_spray_rotating_addresses() -> None:
    spray = [
        (i * 0.5, "auth.failed", "failure", f"user{i}@x.io", f"45.155.205.{10 + i % 3}")
        for i in range(10)
    ]
    assert password_spray(timeline(*spray)).height == 0
    f = password_spray(timeline(*spray), group_by_network=True)
    assert f["subject"].to_list() == ["45.155.205.0/24"] and f["subject_type"][0] == "network"
    v6 = [
        (i * 0.5, "auth.failed", "failure", f"user{i}@x.io", f"2001:db8:0:7::{i + 1:x}")
        for i in range(10)
    ]
    assert password_spray(timeline(*v6), group_by_network=True)["subject"].to_list() == [
        "2001:db8:0:7::/64"
    ]
    with pytest.raises(al.FilterError, match="network_prefix"):
        password_spray(timeline(*spray), group_by_network=True, network_prefix=(24, 0))


def test_through_the_store_with_a_parameter(store: al.AuditStore) -> None:
    from tests.detect.timeline import as_entries

    spray = [
        (i * 0.5, "auth.failed", "failure", f"user{i}@x.io", f"45.155.205.{10 + i % 3}")
        for i in range(10)
    ]
    store.append(as_entries(timeline(*spray)))
    assert store.detect("password_spray").height == 0
    f = store.detect("password_spray", config={"group_by_network": True})
    assert f["subject"].to_list() == ["45.155.205.0/24"]
