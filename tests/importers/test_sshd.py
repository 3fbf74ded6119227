"""sshd import: syslog times without year or zone, the year wrap, DST, events and rejects."""

from __future__ import annotations

from pathlib import Path

import pytest

import auditlens as al
from auditlens.errors import ConfigError
from auditlens.importers import import_files, sshd
from auditlens.ingest import SourceRecord
from auditlens.resources import samples_dir

DATA = Path(__file__).parent / "data" / "sshd"
ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"


def _records(name: str, **options: object) -> list[SourceRecord]:
    return list(sshd.records(DATA / name, organization_id=ORG, **options))  # type: ignore[arg-type]


def test_the_year_wraps_at_new_year_in_the_hosts_zone() -> None:
    recs = _records("newyear.log", year=2023, timezone="America/New_York")
    times = [r.value["timestamp"] for r in recs if isinstance(r.value, dict)]
    # Dec 31 23:59:58 in New York (2023) and Jan 1 (2024): 5 hours behind UTC
    assert times == [
        "2024-01-01T04:59:58.000Z",
        "2024-01-01T05:00:01.000Z",
        "2024-01-01T05:00:02.000Z",
    ]
    login = recs[3].value
    assert login["action"] == "auth.login"
    assert login["ip_address"] is None  # sshd wrote a host name (UseDNS yes)
    assert login["details"]["remote_host"] == "ops-laptop.example.net"
    assert login["details"]["syslog_time"] == "Jan 1 00:00:02"
    # sudo and "Server listening" are not sshd audit events: skipped, not rejected
    assert recs[1].value is None and recs[5].value is None
    assert isinstance(recs[4].value, Exception) and recs[4].line == 5


def test_the_repeated_autumn_hour_is_resolved_by_order() -> None:
    recs = _records("dst.log", year=2024, timezone="Europe/Berlin")
    assert [r.value["timestamp"] for r in recs] == [
        "2024-10-27T00:10:00.000Z",  # 02:10 CEST
        "2024-10-27T00:50:00.000Z",  # 02:50 CEST
        "2024-10-27T01:05:00.000Z",  # 02:05 CET: the second pass, not 00:05Z
        "2024-10-27T02:00:00.000Z",
    ]


def test_a_time_in_the_skipped_spring_hour_is_rejected_and_rfc3339_needs_no_year() -> None:
    recs = _records("gap.log", year=2024, timezone="Europe/Berlin")
    assert "does not exist in Europe/Berlin" in str(recs[1].value)
    last = recs[3].value
    assert last["timestamp"] == "2024-03-31T01:00:02.123Z"
    assert last["ip_address"] == "2001:db8::7"
    assert last["details"]["program"] == "sshd-session"


def test_classic_lines_need_a_year_and_an_organization() -> None:
    with pytest.raises(ConfigError, match=r"newyear.log:1: .*pass --year"):
        _records("newyear.log")
    with pytest.raises(ConfigError, match="pass --org"):
        list(sshd.records(DATA / "newyear.log", year=2024))
    with pytest.raises(ConfigError, match="not an IANA time zone"):
        _records("newyear.log", year=2024, timezone="Mars/Olympus")


def test_sample_brute_force_then_spray_is_what_the_detectors_expect() -> None:
    entries = list(
        sshd.read(samples_dir() / "sshd", year=2024, timezone="Europe/Berlin", organization_id=ORG)
    )
    failed = [e for e in entries if e["action"] == "auth.failed"]
    assert {e["actor"]["user_id"] for e in failed} == {
        "sshd:web-1:root",
        "sshd:web-1:admin",
        "sshd:web-1:oracle",
        "sshd:web-1:deploy",
    }
    # two identical lines in the same second stay two events
    root = [e for e in failed if e["actor"]["user_id"] == "sshd:web-1:root"]
    assert len(root) == 3 and len({e["audit_id"] for e in root}) == 3
    assert any(e.get("details", {}).get("invalid_user") for e in failed)
    actions = {e["action"] for e in entries}
    assert {"auth.login", "auth.logout", "ssh.session_opened", "ssh.session_closed"} <= actions
    assert {"ssh.max_auth_attempts", "ssh.connection_closed", "ssh.no_identification"} <= actions


def test_import_rejects_with_file_line_and_reimport_is_a_no_op(
    store: al.AuditStore, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.log"
    opts = {"year": 2023, "timezone": "America/New_York"}
    report = import_files(
        store, "sshd", [DATA / "newyear.log"], organization=ORG, rejects=rejects, **opts
    )
    assert (report.appended, report.skipped) == (3, 2)
    assert [r.where for r in report.rejected] == [f"{DATA / 'newyear.log'}:5"]
    assert rejects.read_text() == "this is not a syslog line\n"
    again = import_files(store, "sshd", [DATA / "newyear.log"], organization=ORG, **opts)
    assert (again.appended, again.duplicates) == (0, 3)
    found = store.query(actor="sshd:bastion:test", backend="polars")
    assert found.height == 2
