"""Scheduled exports: plan gating, the previous complete period, exactly once, catch-up,
failures retried and visible, delivery to a folder and by email (real SMTP on loopback)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import auditlens as al
from auditlens.export import add_schedule, list_runs, previous_period, run_due
from auditlens.retention import set_plan
from tests.alerts.servers import make_certificates, smtp_env
from tests.helpers import ORG, ORG2, make_entry

NOW = datetime(2025, 3, 12, 3, 0, tzinfo=UTC)  # a Wednesday, after the 02:00 run time


@pytest.fixture
def pro(store: al.AuditStore) -> al.AuditStore:
    set_plan(store, ORG, "pro")
    days = [NOW - timedelta(days=d, hours=12) for d in range(11)]  # one a day, at 15:00 UTC
    store.append(
        [make_entry(timestamp=t.isoformat(), details={"d": i}) for i, t in enumerate(days)]
    )
    store.append([make_entry(organization_id=ORG2, timestamp=days[0].isoformat())])
    return store


def _created(store: al.AuditStore, name: str, when: datetime) -> None:
    from sqlalchemy import update

    from auditlens.export.schedule_tables import export_schedules

    with store.transaction() as conn:
        conn.execute(
            update(export_schedules)
            .where(export_schedules.c.name == name)
            .values(created_ms=int(when.timestamp() * 1000))
        )


def test_periods_are_the_previous_complete_ones() -> None:
    at = datetime(2025, 3, 1, 12, tzinfo=UTC)  # a Saturday
    assert previous_period("daily", "UTC", at) == (
        datetime(2025, 2, 28, tzinfo=UTC),
        datetime(2025, 3, 1, tzinfo=UTC),
    )
    start, end = previous_period("weekly", "UTC", at)
    assert (start.weekday(), (end - start).days, end.date().isoformat()) == (0, 7, "2025-02-24")
    start, end = previous_period("monthly", "America/New_York", at)
    assert (start.isoformat(), end.isoformat()) == (
        "2025-02-01T00:00:00-05:00",
        "2025-03-01T00:00:00-05:00",
    )


def test_scheduling_needs_pro_or_enterprise(store: al.AuditStore, tmp_path: Path) -> None:
    with pytest.raises(al.ConfigError, match="requires the pro or enterprise plan"):
        add_schedule(
            store, "x", organization_id=ORG, every="daily", destination=f"file://{tmp_path}/"
        )
    set_plan(store, ORG, "starter")
    with pytest.raises(al.ConfigError, match="is on starter"):
        add_schedule(
            store, "x", organization_id=ORG, every="daily", destination=f"file://{tmp_path}/"
        )
    set_plan(store, ORG, "enterprise")
    with pytest.raises(al.ConfigError, match="--every"):
        add_schedule(
            store, "x", organization_id=ORG, every="hourly", destination=f"file://{tmp_path}/"
        )
    with pytest.raises(al.ConfigError, match="--to"):
        add_schedule(store, "x", organization_id=ORG, every="daily", destination="ftp://x")


def test_daily_runs_once_per_period_and_catches_up(pro: al.AuditStore, tmp_path: Path) -> None:
    add_schedule(
        pro,
        "daily-csv",
        organization_id=ORG,
        every="daily",
        destination=f"file://{tmp_path}/",
        fields="timestamp,actor.email,action",
        format="csv",
    )
    _created(pro, "daily-csv", NOW - timedelta(days=3, hours=12))
    runs = run_due(pro, now=NOW)  # created mid-day on the 8th: the 8th to the 11th are due
    assert len(runs) == 4 and {r.status for r in runs} == {"succeeded"}
    assert all(r.rows == 1 for r in runs)  # one entry per day, the other org's left out
    files = sorted(p.name for p in tmp_path.glob("*.csv"))
    assert files == [
        "daily-csv-20250308.csv",
        "daily-csv-20250309.csv",
        "daily-csv-20250310.csv",
        "daily-csv-20250311.csv",
    ]
    assert pl.read_csv(tmp_path / files[-1]).columns == ["timestamp", "actor.email", "action"]
    assert run_due(pro, now=NOW) == []  # called again: nothing twice
    assert run_due(pro, now=NOW + timedelta(days=1)) != []  # the next day brings one more
    assert len([r for r in list_runs(pro) if r.status == "succeeded"]) == 5
    assert pro.count("action:audit_log.exported") == 5


def test_concurrent_callers_do_not_run_a_period_twice(pro: al.AuditStore, tmp_path: Path) -> None:
    add_schedule(pro, "d", organization_id=ORG, every="daily", destination=f"file://{tmp_path}/")
    _created(pro, "d", NOW - timedelta(days=2, hours=12))
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(len(run_due(pro, now=NOW))))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 3 and len(list_runs(pro)) == 3  # each period ran in exactly one caller
    assert pro.count("action:audit_log.exported") == 3


def test_failures_are_recorded_retried_and_end_visible(pro: al.AuditStore, tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    add_schedule(pro, "f", organization_id=ORG, every="daily", destination=f"file://{missing}/")
    _created(pro, "f", NOW - timedelta(days=1))
    [run] = run_due(pro, now=NOW)
    assert run.status == "failed" and "does not exist" in (run.error or "") and run.attempts == 1
    assert run_due(pro, now=NOW + timedelta(minutes=1)) == []  # backoff: not yet
    missing.mkdir()
    [run] = run_due(pro, now=NOW + timedelta(minutes=6))
    assert run.status == "succeeded" and run.attempts == 2


def test_mailto_delivers_the_file_as_an_attachment(
    pro: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_env(monkeypatch) as box:
        add_schedule(
            pro,
            "weekly-mail",
            organization_id=ORG,
            every="weekly",
            format="jsonl",
            destination="mailto:auditor@company.com,ciso@company.com",
        )
        _created(pro, "weekly-mail", NOW - timedelta(days=9))
        [run] = run_due(pro, now=NOW)
        assert run.status == "succeeded", run.error
        [mail] = box.messages
        assert box.recipients == [["auditor@company.com", "ciso@company.com"]]
        names = [part.get_filename() for part in mail.iter_attachments()]
        assert names == ["weekly-mail-20250303.jsonl", "weekly-mail-20250303.jsonl.manifest.json"]
        body = next(mail.iter_attachments()).get_payload(decode=True)
        assert len(body.splitlines()) == run.rows == 7


def test_mailto_verifies_the_servers_certificate(
    pro: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certs = make_certificates(tmp_path)
    monkeypatch.setenv("AUDITLENS_SMTP_USER", "exports")
    monkeypatch.setenv("AUDITLENS_SMTP_PASSWORD", "s3cret-pw")
    with smtp_env(monkeypatch, certs) as box:  # STARTTLS with a certificate of a private CA
        add_schedule(
            pro, "m", organization_id=ORG, every="daily", destination="mailto:a@company.com"
        )
        _created(pro, "m", NOW - timedelta(days=1))
        [run] = run_due(pro, now=NOW)
        assert run.status == "failed" and "CERTIFICATE_VERIFY_FAILED" in (run.error or "")
        assert "s3cret-pw" not in (run.error or "")
        assert box.messages == [] and box.logins == []  # neither the export nor the password
        monkeypatch.setenv("AUDITLENS_SMTP_CA_FILE", str(certs.ca_file))
        [run] = run_due(pro, now=NOW + timedelta(minutes=6))
        assert run.status == "succeeded", run.error
    assert box.encrypted == [True] and box.logins == [("exports", "s3cret-pw")]


def test_mailto_over_smtps(
    pro: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certs = make_certificates(tmp_path)
    monkeypatch.setenv("AUDITLENS_SMTP_CA_FILE", str(certs.ca_file))
    with smtp_env(monkeypatch, certs, implicit_tls=True) as box:
        add_schedule(
            pro, "m", organization_id=ORG, every="daily", destination="mailto:a@company.com"
        )
        _created(pro, "m", NOW - timedelta(days=1))
        [run] = run_due(pro, now=NOW)
        assert run.status == "succeeded", run.error
    assert box.encrypted == [True] and box.recipients == [["a@company.com"]]


@pytest.mark.parametrize(
    "name", ["../../../../tmp/x", "a/b", "..", ".hidden", "-rf", "", "x" * 101, "sp ace", "é"]
)
def test_schedule_names_that_are_not_plain_file_names_are_refused(
    pro: al.AuditStore, tmp_path: Path, name: str
) -> None:
    with pytest.raises(al.ConfigError, match=r"schedule name .* letters .* digits"):
        add_schedule(
            pro, name, organization_id=ORG, every="daily", destination=f"file://{tmp_path}/"
        )
    assert add_schedule(
        pro,
        "Weekly_soc2-v1.2",
        organization_id=ORG,
        every="daily",
        destination=f"file://{tmp_path}/",
    )


def test_cli_names_the_rule_for_schedule_names(store_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from auditlens.cli import app

    with al.open_store(store_url) as s:
        set_plan(s, ORG, "pro")
    args = ["schedule", "add", "../x", "--org", ORG, "--every", "daily", "--to"]
    res = CliRunner().invoke(app, [*args, f"file://{tmp_path}/", "--db", store_url])
    assert res.exit_code == 3
    assert "schedule name '../x' is not allowed" in res.stderr and "'_' and '-'" in res.stderr


def test_a_stored_name_with_a_path_never_writes_outside_the_folders(
    pro: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name written by raw SQL (an older version, a hand edit) is refused when writing."""
    import tempfile

    from sqlalchemy import update

    from auditlens.export.schedule_tables import export_schedules

    root = tmp_path / "root"
    work = root / "work"  # where run_due's temporary folder goes
    dest = root / "dest"
    work.mkdir(parents=True)
    dest.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    add_schedule(pro, "ok", organization_id=ORG, every="daily", destination=f"file://{dest}/")
    with pro.transaction() as conn:  # ../../ leaves the temporary folder and work/
        conn.execute(
            update(export_schedules)
            .where(export_schedules.c.name == "ok")
            .values(
                name="../../escaped", created_ms=int((NOW - timedelta(days=1)).timestamp() * 1000)
            )
        )
    [run] = run_due(pro, now=NOW)
    assert run.status == "failed" and "outside" in (run.error or "")
    assert sorted(p.name for p in root.iterdir()) == ["dest", "work"]  # no root/escaped-…
    assert list(dest.iterdir()) == [] and list(work.iterdir()) == []


def test_file_delivery_refuses_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    from auditlens.export import deliver

    dest, outside = tmp_path / "dest", tmp_path / "precious.txt"
    dest.mkdir()
    outside.write_text("keep me")
    (dest / "r.csv").symlink_to(outside)
    src = tmp_path / "r.csv"
    src.write_text("a,b\n")
    with pytest.raises(al.ConfigError, match="outside"):
        deliver(src, f"file://{dest}/", subject="s", text="t")
    assert outside.read_text() == "keep me"


def test_cli_schedule_flow(store_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from auditlens.cli import app

    run = CliRunner().invoke
    with al.open_store(store_url) as s:
        set_plan(s, ORG, "pro")
        s.append(make_entry(timestamp=(datetime.now(UTC) - timedelta(days=1)).isoformat()))
    res = run(
        app,
        [
            "schedule",
            "add",
            "nightly",
            "--org",
            ORG,
            "--every",
            "daily",
            "--to",
            f"file://{tmp_path}/",
            "--db",
            store_url,
        ],
    )
    assert res.exit_code == 0, res.output
    with al.open_store(store_url) as s:
        _created(s, "nightly", datetime.now(UTC) - timedelta(days=2))
    res = run(app, ["schedule", "run-due", "--db", store_url])
    assert res.exit_code == 0 and "succeeded" in res.stdout
    res = run(app, ["schedule", "list", "--db", store_url])
    assert "nightly" in res.stdout and "succeeded" in res.stdout
    res = run(
        app,
        [
            "schedule",
            "add",
            "x",
            "--org",
            ORG2,
            "--every",
            "daily",
            "--to",
            f"file://{tmp_path}/",
            "--db",
            store_url,
        ],
    )
    assert res.exit_code == 3 and "pro or enterprise" in res.stderr
    assert run(app, ["schedule", "remove", "nightly", "--db", store_url]).exit_code == 0
    assert run(app, ["schedule", "remove", "nightly", "--db", store_url]).exit_code == 1


def test_s3_destination_against_moto_over_http(
    pro: al.AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import json

    from tests.alerts.servers import s3_server

    with s3_server(monkeypatch, "audit-exports") as s3:
        add_schedule(
            pro,
            "to-s3",
            organization_id=ORG,
            every="daily",
            format="jsonl",
            destination="s3://audit-exports/acme/daily/",
        )
        _created(pro, "to-s3", NOW - timedelta(days=1))
        [run] = run_due(pro, now=NOW)
        assert run.status == "succeeded", run.error
        assert run.location == "s3://audit-exports/acme/daily/to-s3-20250311.jsonl"
        body = s3.get_object(Bucket="audit-exports", Key="acme/daily/to-s3-20250311.jsonl")[
            "Body"
        ].read()
        assert len(body.splitlines()) == run.rows == 1
        manifest = s3.get_object(
            Bucket="audit-exports", Key="acme/daily/to-s3-20250311.jsonl.manifest.json"
        )
        assert (
            json.loads(manifest["Body"].read())["sha256"]
            == hashlib.sha256(body).hexdigest()
            == run.sha256
        )


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """A real OpenSSH server on a loopback port, with a fresh host key and a client key."""
    import getpass
    import os
    import shutil
    import socket
    import subprocess
    import time as _time

    from tests.alerts.servers import free_port

    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd_bin):
        pytest.fail("openssh-server is missing: `make test` installs it (scripts/system-deps.sh)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
        )
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen(
        [sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = _time.time() + 10
    while _time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        _time.sleep(0.05)
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (d / "empty_known_hosts").write_text("")
    yield {
        "port": port,
        "key": d / "client_key",
        "known": d / "known_hosts",
        "unknown": d / "empty_known_hosts",
        "user": getpass.getuser(),
    }
    proc.terminate()
    proc.wait(10)


def test_sftp_upload_to_a_real_sshd_and_unknown_host_keys_refused(
    pro: al.AuditStore, sshd: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("AUDITLENS_SFTP_KEY", str(sshd["key"]))
    monkeypatch.setenv("AUDITLENS_SFTP_KNOWN_HOSTS", str(sshd["unknown"]))
    add_schedule(
        pro,
        "to-sftp",
        organization_id=ORG,
        every="daily",
        format="csv",
        destination=f"sftp://{sshd['user']}@127.0.0.1:{sshd['port']}{inbox}/",
    )
    _created(pro, "to-sftp", NOW - timedelta(days=1))
    [run] = run_due(pro, now=NOW)
    assert run.status == "failed" and "not found in known_hosts" in (run.error or "")
    assert list(inbox.iterdir()) == []
    monkeypatch.setenv("AUDITLENS_SFTP_KNOWN_HOSTS", str(sshd["known"]))
    [run] = run_due(pro, now=NOW + timedelta(minutes=6))
    assert run.status == "succeeded", run.error
    received = inbox / "to-sftp-20250311.csv"
    import hashlib

    assert hashlib.sha256(received.read_bytes()).hexdigest() == run.sha256
    assert len(received.read_text().splitlines()) == 2  # header + the day's entry
    assert (inbox / "to-sftp-20250311.csv.manifest.json").exists()


def test_a_schedule_can_deliver_a_compliance_report(
    pro: al.AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from pypdf import PdfReader

    with pytest.raises(al.AuditLensError, match="no such file"):
        add_schedule(
            pro,
            "bad",
            organization_id=ORG,
            every="weekly",
            destination=f"file://{tmp_path}/",
            report="nope.yaml",
        )
    with smtp_env(monkeypatch) as box:
        sched = add_schedule(
            pro,
            "soc2-weekly",
            organization_id=ORG,
            every="weekly",
            destination="mailto:auditor@company.com",
            report="SOC2",
        )
        assert (sched.report, sched.format) == ("soc2", "pdf")
        _created(pro, "soc2-weekly", NOW - timedelta(days=9))
        [run] = run_due(pro, now=NOW)
        assert run.status == "succeeded", run.error
        week = pro.count(organization_id=ORG, start="2025-03-03", end="2025-03-09")
        assert run.rows == week == 7
        [mail] = box.messages
        assert "SOC2 compliance report for 2025-03-03..2025-03-09" in mail["Subject"]
        pdf, manifest = list(mail.iter_attachments())
        assert pdf.get_filename() == "soc2-weekly-20250303.pdf"
        path = tmp_path / "r.pdf"
        path.write_bytes(pdf.get_payload(decode=True))
        text = "".join(p.extract_text() for p in PdfReader(str(path)).pages)
        assert "CC6.1" in text and "2025-03-03 00:00" in text
        meta = json.loads(manifest.get_payload(decode=True))
        assert meta["provenance"]["rows"] == 7 and meta["framework"] == "SOC2"
        import hashlib

        assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() == run.sha256
    # the report run is in the trail like any export
    assert pro.count(actions="audit_log.exported", organization_id=ORG) == 1


def test_cli_schedule_add_report(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from auditlens.cli import app

    db = f"sqlite:///{tmp_path / 'a.db'}"
    with al.open_store(db) as s:
        set_plan(s, ORG, "enterprise")
    run = CliRunner().invoke
    base = [
        "schedule",
        "add",
        "q",
        "--org",
        ORG,
        "--every",
        "monthly",
        "--to",
        f"file://{tmp_path}/",
        "--db",
        db,
    ]
    res = run(app, [*base, "--report", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "missing.yaml" in res.output
    res = run(app, [*base, "--report", "gdpr"])
    assert res.exit_code == 0, res.output
    assert "gdpr report monthly" in res.output
    res = run(app, ["schedule", "list", "--db", db])
    assert res.exit_code == 0 and "gdpr" in res.output
    with al.open_store(db) as s:
        [sched] = al.export.list_schedules(s)
    assert (sched.report, sched.format, sched.every) == ("gdpr", "pdf", "monthly")
