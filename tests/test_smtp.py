"""The one SMTP sender: TLS is verified (STARTTLS and SMTPS), a private CA is trusted only
when configured, credentials come from the environment and never leak into errors.

Real aiosmtpd servers on loopback with a CA and certificate generated per test."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from auditlens.alerts import NotifierConfig
from auditlens.alerts.channels import send
from auditlens.alerts.evaluate import Alert
from auditlens.errors import ConfigError, DeliveryError
from auditlens.smtp import SmtpSettings, send_email
from tests.alerts.servers import Certificates, make_certificates, smtp_env, smtp_server


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path)


def message(to: str = "security@company.com") -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "hello"
    msg["To"] = to
    msg.set_content("body")
    return msg


def test_starttls_refuses_a_certificate_it_cannot_verify(
    certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITLENS_SMTP_USER", "alerts")
    monkeypatch.setenv("AUDITLENS_SMTP_PASSWORD", "s3cret-pw")
    with smtp_env(monkeypatch, certs) as box:
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED") as err:
            send_email(SmtpSettings.from_env(), message())
        assert box.messages == [] and box.logins == []  # the password never left
        assert "s3cret-pw" not in str(err.value)


def test_starttls_with_the_private_ca_delivers_over_tls_and_logs_in(
    certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITLENS_SMTP_CA_FILE", str(certs.ca_file))
    monkeypatch.setenv("AUDITLENS_SMTP_USER", "alerts")
    monkeypatch.setenv("AUDITLENS_SMTP_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("AUDITLENS_SMTP_FROM", "auditlens@company.com")
    with smtp_env(monkeypatch, certs) as box:
        send_email(SmtpSettings.from_env(), message())
    assert box.logins == [("alerts", "s3cret-pw")]
    assert box.encrypted == [True]
    assert box.recipients == [["security@company.com"]]
    assert box.messages[0]["From"] == "auditlens@company.com"


def test_smtps_verifies_and_delivers(certs: Certificates, monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_env(monkeypatch, certs, implicit_tls=True) as box:
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            send_email(SmtpSettings.from_env(), message())
        assert box.messages == []
        monkeypatch.setenv("AUDITLENS_SMTP_CA_FILE", str(certs.ca_file))
        send_email(SmtpSettings.from_env(), message())
    assert box.encrypted == [True] and len(box.messages) == 1


def test_a_certificate_for_another_host_name_is_refused(
    certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the certificate names 127.0.0.1 and localhost, not the address we dial
    with smtp_server(certs) as (box, port):
        settings = SmtpSettings(
            host="127.0.0.2", port=port, security_setting="starttls", ca_file=str(certs.ca_file)
        )
        with pytest.raises(DeliveryError):
            send_email(settings, message())
    assert box.messages == []


def test_alert_email_uses_the_same_verifying_sender(
    certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    alert = Alert(
        alert_id="a1",
        rule="Failed Login Spike",
        severity="high",
        organization_id="org-1",
        group_by="actor",
        group="jane@company.com",
        window_start=datetime(2025, 1, 1, tzinfo=UTC),
        window_end=datetime(2025, 1, 1, 0, 5, tzinfo=UTC),
        count=7,
        audit_ids=["e1"],
        summary="7 failed logins",
    )
    with smtp_server(certs) as (box, port):
        base = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "starttls"}
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            send(NotifierConfig(**base, attempts=1), "email", "sec@company.com", alert)
        send(NotifierConfig(**base, smtp_ca_file=str(certs.ca_file)), "email", "sec@x.io", alert)
    assert box.encrypted == [True] and box.recipients == [["sec@x.io"]]


def test_settings_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AUDITLENS_SMTP_SECURITY"):
        SmtpSettings.from_env({"AUDITLENS_SMTP_SECURITY": "tls1.3"})
    with pytest.raises(ConfigError, match="AUDITLENS_SMTP_PORT"):
        SmtpSettings.from_env({"AUDITLENS_SMTP_PORT": "smtp"})
    missing = SmtpSettings(host="127.0.0.1", security_setting="ssl", ca_file=str(tmp_path / "x"))
    with pytest.raises(ConfigError, match="AUDITLENS_SMTP_CA_FILE"):
        send_email(missing, message())
    with pytest.raises(ConfigError, match="AUDITLENS_SMTP_HOST"):
        send_email(SmtpSettings.from_env({}), message())


def test_port_465_means_smtps_unless_told_otherwise() -> None:
    assert SmtpSettings.from_env({"AUDITLENS_SMTP_PORT": "465"}).security == "ssl"
    assert SmtpSettings.from_env({"AUDITLENS_SMTP_SECURITY": "ssl"}).effective_port == 465
    env = {"AUDITLENS_SMTP_PORT": "465", "AUDITLENS_SMTP_SECURITY": "none"}
    assert SmtpSettings.from_env(env).security == "none"
    assert SmtpSettings.from_env({}).effective_port == 25
