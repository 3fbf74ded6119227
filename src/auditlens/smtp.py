"""Sending email over SMTP: the one sender for alert notifications and scheduled exports.

Settings come from the environment (or an :class:`SmtpSettings` built in code). The
password is never logged, shown in ``repr`` or put in an error message:

===================================  ====================================================
``AUDITLENS_SMTP_HOST``/``_PORT``    SMTP server (port default 25; 465 with ``ssl``)
``AUDITLENS_SMTP_SECURITY``          ``starttls``, ``ssl`` (SMTPS) or ``none`` (default);
                                     ``ssl`` is also chosen when the port is 465 and no
                                     security is set
``AUDITLENS_SMTP_CA_FILE``           PEM file of the CA certificates to trust (a private
                                     CA); default: the system's trust store
``AUDITLENS_SMTP_USER``/``_PASSWORD``  credentials, when the server wants them
``AUDITLENS_SMTP_FROM``              sender address (default ``auditlens@localhost``)
===================================  ====================================================

With ``starttls`` and ``ssl`` the server's certificate and host name are verified
(:func:`ssl.create_default_context`); a certificate that does not verify stops the
delivery before any credentials or content are sent.

Example:
    >>> s = SmtpSettings(host="mail.example.com", port=465, password="hunter2")
    >>> s.security, s.effective_port
    ('ssl', 465)
    >>> "hunter2" in repr(s)
    False
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

from auditlens.errors import ConfigError, DeliveryError

__all__ = ["SECURITY", "SmtpSettings", "send_email"]

SECURITY = ("none", "starttls", "ssl")
_SMTPS_PORT = 465


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send email.

    ``security`` is ``None`` for "not set": ``ssl`` on port 465, else ``none``.
    """

    host: str | None = None
    port: int | None = None
    security_setting: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "auditlens@localhost"
    ca_file: str | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.security_setting is not None and self.security_setting not in SECURITY:
            raise ConfigError(
                f"AUDITLENS_SMTP_SECURITY must be none, starttls or ssl, "
                f"got {self.security_setting!r}"
            )

    @property
    def security(self) -> str:
        """``none``, ``starttls`` or ``ssl`` — the setting, or what the port implies."""
        if self.security_setting is not None:
            return self.security_setting
        return "ssl" if self.port == _SMTPS_PORT else "none"

    @property
    def effective_port(self) -> int:
        """The port to connect to (25, or 465 for SMTPS, when none is set)."""
        return self.port or (_SMTPS_PORT if self.security == "ssl" else 25)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read the ``AUDITLENS_SMTP_*`` variables above (from ``env``, default ``os.environ``)."""
        env = os.environ if env is None else env
        port = env.get("AUDITLENS_SMTP_PORT")
        try:
            port_number = int(port) if port else None
        except ValueError:
            raise ConfigError(f"AUDITLENS_SMTP_PORT must be a number, got {port!r}") from None
        security = env.get("AUDITLENS_SMTP_SECURITY")
        return cls(
            host=env.get("AUDITLENS_SMTP_HOST") or None,
            port=port_number,
            security_setting=security.strip().lower() if security else None,
            user=env.get("AUDITLENS_SMTP_USER") or None,
            password=env.get("AUDITLENS_SMTP_PASSWORD"),
            sender=env.get("AUDITLENS_SMTP_FROM", "auditlens@localhost"),
            ca_file=env.get("AUDITLENS_SMTP_CA_FILE") or None,
        )

    def tls_context(self) -> ssl.SSLContext:
        """A verifying TLS context: the CA file's certificates, else the system's."""
        if self.ca_file is not None and not os.path.isfile(self.ca_file):
            raise ConfigError(f"AUDITLENS_SMTP_CA_FILE {self.ca_file} is not a file")
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"AUDITLENS_SMTP_CA_FILE {self.ca_file} holds no usable PEM certificates: {exc}"
            ) from None


def send_email(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send one message (its ``From`` defaults to ``settings.sender``), verifying TLS.

    Raises:
        ConfigError: no host is set, or the CA file is unusable.
        DeliveryError: the server could not be reached, the certificate did not verify,
            or the server refused the login or the message.
    """
    if not settings.host:
        raise ConfigError("sending email needs AUDITLENS_SMTP_HOST")
    if message["From"] is None:
        message["From"] = settings.sender
    security = settings.security
    port = settings.effective_port
    context = settings.tls_context() if security != "none" else None
    try:
        server: smtplib.SMTP
        if security == "ssl":
            server = smtplib.SMTP_SSL(
                settings.host, port, timeout=settings.timeout, context=context
            )
        else:
            server = smtplib.SMTP(settings.host, port, timeout=settings.timeout)
        with server:
            if security == "starttls":
                server.starttls(context=context)
            if settings.user:
                server.login(settings.user, settings.password or "")
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        # smtplib's messages hold the server's words, never the password we sent
        raise DeliveryError(
            f"SMTP {settings.host}:{port} ({security}): {type(exc).__name__}: {exc}"
        ) from None
