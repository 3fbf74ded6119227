"""Notification channels: email over SMTP, Slack incoming webhooks, signed HTTPS webhooks.

Settings come from the environment (or a :class:`NotifierConfig` built in code);
secrets are never logged or put in messages:

=================================  =====================================================
``AUDITLENS_SMTP_*``               the SMTP server, TLS (``starttls`` or ``ssl``, always
                                   verified; ``AUDITLENS_SMTP_CA_FILE`` for a private
                                   CA) and credentials: see :mod:`auditlens.smtp`
``AUDITLENS_SLACK_WEBHOOKS``       ``#channel=https://hooks.slack.com/…`` pairs, ``;``-separated
``AUDITLENS_WEBHOOK_SECRET``       HMAC-SHA256 key for the ``X-AuditLens-Signature`` header
=================================  =====================================================

A webhook request carries ``X-AuditLens-Timestamp: <unix seconds>`` and
``X-AuditLens-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``.

Example:
    >>> sign_payload(b"secret", b'{"a":1}', 1700000000)[:16]
    'sha256=49f24e537'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from auditlens.alerts.evaluate import Alert
from auditlens.errors import ConfigError, DeliveryError
from auditlens.smtp import SmtpSettings, send_email

__all__ = ["DeliveryError", "NotifierConfig", "send", "sign_payload"]


@dataclass
class NotifierConfig:
    """Where and how to send notifications."""

    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None  # none, starttls or ssl; unset: ssl on port 465
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = "auditlens@localhost"
    smtp_ca_file: str | None = None
    slack_webhooks: dict[str, str] = field(default_factory=dict, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    attempts: int = 3
    backoff: float = 0.5

    @classmethod
    def from_env(cls) -> NotifierConfig:
        """Read the ``AUDITLENS_*`` variables above."""
        env = os.environ
        hooks: dict[str, str] = {}
        for pair in filter(
            None, (p.strip() for p in env.get("AUDITLENS_SLACK_WEBHOOKS", "").split(";"))
        ):
            if "=" not in pair:
                raise ConfigError(
                    "AUDITLENS_SLACK_WEBHOOKS holds '#channel=URL' pairs separated by ';'"
                )
            name, url = pair.split("=", 1)
            hooks[name.strip()] = url.strip()
        smtp = SmtpSettings.from_env(env)
        return cls(
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security=smtp.security_setting,
            smtp_user=smtp.user,
            smtp_password=smtp.password,
            smtp_from=smtp.sender,
            smtp_ca_file=smtp.ca_file,
            slack_webhooks=hooks,
            webhook_secret=env.get("AUDITLENS_WEBHOOK_SECRET"),
        )


def _smtp(cfg: NotifierConfig) -> SmtpSettings:
    return SmtpSettings(
        host=cfg.smtp_host,
        port=cfg.smtp_port,
        security_setting=cfg.smtp_security.lower() if cfg.smtp_security else None,
        user=cfg.smtp_user,
        password=cfg.smtp_password,
        sender=cfg.smtp_from,
        ca_file=cfg.smtp_ca_file,
        timeout=cfg.timeout,
    )


def sign_payload(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-AuditLens-Signature`` value for a body sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def _text(alert: Alert) -> str:
    ids = alert.audit_ids[:50]
    more = f"\n… and {len(alert.audit_ids) - 50} more" if len(alert.audit_ids) > 50 else ""
    return (
        f"{alert.summary}\n\n"
        f"Rule:         {alert.rule}\nSeverity:     {alert.severity}\n"
        f"Organization: {alert.organization_id}\n{alert.group_by.capitalize():13} {alert.group}\n"
        f"Window:       {alert.window_start.isoformat()} → {alert.window_end.isoformat()}\n"
        f"Count:        {alert.count}\nAlert id:     {alert.alert_id}\n\n"
        f"Evidence (audit_id):\n" + "\n".join(f"  {i}" for i in ids) + more + "\n\n"
        "Look them up with: auditlens show <audit_id>\n"
    )


def _email(cfg: NotifierConfig, to: str, alert: Alert) -> None:
    if not cfg.smtp_host:
        raise ConfigError("email notification needs AUDITLENS_SMTP_HOST")
    msg = EmailMessage()
    msg["Subject"] = f"[auditlens {alert.severity}] {alert.rule}: {alert.group} ({alert.count})"
    msg["From"] = cfg.smtp_from
    msg["To"] = to
    msg["X-AuditLens-Alert-Id"] = alert.alert_id
    msg.set_content(_text(alert))
    send_email(_smtp(cfg), msg)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    if not url.startswith(("https://", "http://")):
        raise DeliveryError(f"refusing to post to a non-HTTP URL {_host(url)}")
    req = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            if resp.status >= 300:
                raise DeliveryError(f"POST {_host(url)}: HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        exc.close()  # the error carries the open response
        raise DeliveryError(f"POST {_host(url)}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"POST {_host(url)}: {exc}") from None


def _host(url: str) -> str:
    """The URL without its path (webhook paths often embed secrets)."""
    return "/".join(url.split("/")[:3])


def _slack(cfg: NotifierConfig, channel: str, alert: Alert) -> None:
    url = cfg.slack_webhooks.get(channel)
    if url is None:
        raise ConfigError(f"no Slack webhook URL for {channel}; set AUDITLENS_SLACK_WEBHOOKS")
    icon = {"critical": ":rotating_light:", "high": ":warning:"}.get(
        alert.severity, ":information_source:"
    )
    payload = {
        "channel": channel,
        "text": f"{icon} *{alert.rule}* ({alert.severity}) — {alert.summary}",
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{icon} *{alert.rule}*\n{alert.summary}"},
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{alert.count} entries · "
                        f"{alert.window_start:%Y-%m-%d %H:%M}–{alert.window_end:%H:%M} UTC"
                        f" · evidence: {', '.join(alert.audit_ids[:10])}",
                    }
                ],
            },
        ],
    }
    _post(url, json.dumps(payload).encode(), {}, cfg.timeout)


def _webhook(cfg: NotifierConfig, url: str, alert: Alert) -> None:
    body = json.dumps({"type": "auditlens.alert", "alert": alert.to_json()}).encode()
    ts = int(time.time())
    headers = {"X-AuditLens-Timestamp": str(ts), "X-AuditLens-Alert-Id": alert.alert_id}
    if cfg.webhook_secret:
        headers["X-AuditLens-Signature"] = sign_payload(cfg.webhook_secret.encode(), body, ts)
    _post(url, body, headers, cfg.timeout)


_SENDERS: dict[str, Any] = {"email": _email, "slack": _slack, "webhook": _webhook}


def send(cfg: NotifierConfig, channel: str, target: str, alert: Alert) -> None:
    """Deliver once, retrying ``cfg.attempts`` times with exponential backoff.

    Raises:
        DeliveryError: every attempt failed.
        ConfigError: the channel is not configured.
    """
    last: DeliveryError | None = None
    for attempt in range(cfg.attempts):
        try:
            _SENDERS[channel](cfg, target, alert)
            return
        except DeliveryError as exc:
            last = exc
            if attempt + 1 < cfg.attempts:
                time.sleep(cfg.backoff * 2**attempt)
    assert last is not None
    raise last
