"""OpenSSH server logs (``/var/log/auth.log``, ``/var/log/secure``, ``journalctl -o
short`` output): sign-ins, failures, invalid users, disconnects and sessions.

Classic syslog lines carry neither the year nor the time zone (``Mar 10 02:30:00``):
``year`` is the year of each file's first line (it increases when the month wraps
from December to January) and ``timezone`` is the host's IANA zone (default UTC).
Lines with an RFC 3339 time (rsyslog's high-precision format) need neither. In a zone
with daylight saving time, the repeated hour of the autumn change is resolved by order
(the first pass is the earlier one), and a time inside the skipped spring hour is
rejected (it cannot have been written by a clock in that zone).

Lines of other programs (``sudo``, ``CRON``, ``systemd-logind``) and sshd messages that
are not audit events (``Server listening on``, PAM's duplicate ``authentication
failure`` lines) are skipped and counted.

Example:
    >>> from auditlens.resources import samples_dir
    >>> es = list(read(samples_dir() / "sshd", year=2024, timezone="Europe/Berlin",
    ...                organization_id="2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"))
    >>> es[0]["actor"], es[0]["action"], es[0]["result"]
    ({'user_id': 'sshd:web-1:root', 'email': None, 'type': 'user'}, 'auth.failed', 'failure')
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from auditlens.errors import ConfigError, IngestError
from auditlens.importers import entries_only
from auditlens.importers.entries import (
    FieldRule,
    SourceMapping,
    iso_ms,
    split_address,
    stable_id,
)
from auditlens.importers.files import iter_files, open_text
from auditlens.ingest import SourceRecord
from auditlens.schema import DEFAULT_MAX_DETAILS_BYTES, format_timestamp

__all__ = ["FORMAT", "MAPPING", "read", "records"]

FORMAT = "sshd"
PROGRAMS = frozenset({"sshd", "sshd-session", "sshd-auth"})
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

_CLASSIC = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)? "
    r"(?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$"
)
_RFC3339 = re.compile(
    r"^(?P<iso>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})) "
    r"(?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$"
)
_ADDR = r"(?P<addr>\S+) port (?P<port>\d+)"
_PRE = r"(?P<preauth> \[preauth\])?$"

#: (sshd event, action, result, message pattern), first match wins
EVENTS: tuple[tuple[str, str, str, re.Pattern[str]], ...] = tuple(
    (name, action, result, re.compile(pattern))
    for name, action, result, pattern in (
        (
            "accepted",
            "auth.login",
            "success",
            rf"^Accepted (?P<method>\S+) for (?P<user>.+?) from {_ADDR}(?: ssh2)?"
            r"(?:: (?P<key>.+))?$",
        ),
        (
            "failed",
            "auth.failed",
            "failure",
            rf"^Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from {_ADDR}"
            r"(?: ssh2)?$",
        ),
        (
            "invalid_user",
            "auth.failed",
            "failure",
            r"^Invalid user (?P<user>.*?) from (?P<addr>\S+)(?: port (?P<port>\d+))?$",
        ),
        (
            "max_auth_attempts",
            "ssh.max_auth_attempts",
            "failure",
            rf"^error: maximum authentication attempts exceeded for (?P<invalid>invalid user )?"
            rf"(?P<user>.*?) from {_ADDR}(?: ssh2)?{_PRE}",
        ),
        (
            "connection_closed",
            "ssh.connection_closed",
            "failure",
            rf"^Connection closed by (?:(?P<kind>authenticating|invalid) user (?P<user>.*?) )?"
            rf"{_ADDR}{_PRE}",
        ),
        (
            "disconnected",
            "ssh.disconnected",
            "failure",
            rf"^Disconnected from (?:(?:(?P<kind>authenticating|invalid) )?user (?P<user>.*?) )?"
            rf"{_ADDR}{_PRE}",
        ),
        (
            "disconnect_received",
            "ssh.disconnect_received",
            "success",
            rf"^Received disconnect from {_ADDR}:(?P<code>\d+): (?P<reason>.*?){_PRE}",
        ),
        (
            "no_identification",
            "ssh.no_identification",
            "failure",
            r"^Did not receive identification string from (?P<addr>\S+)(?: port (?P<port>\d+))?$",
        ),
        (
            "negotiation_failed",
            "ssh.negotiation_failed",
            "failure",
            rf"^Unable to negotiate with {_ADDR}: (?P<reason>.*?){_PRE}",
        ),
        (
            "session",
            "ssh.session_opened",
            "success",
            r"^pam_unix\(sshd:session\): session (?P<what>opened|closed) for user "
            r"(?P<user>[^\s(]+)",
        ),
    )
)

MAPPING = SourceMapping(
    format=FORMAT,
    title="sshd / auth.log",
    inputs="syslog files (`auth.log`, `secure`, rotated `.1` and `.gz`, folders), classic "
    "`Mon DD HH:MM:SS host sshd[pid]: …` lines (need `--year`, `--timezone`) or RFC 3339 "
    "times; `sshd`, `sshd-session` and `sshd-auth` lines are read, other programs skipped.",
    fields=(
        FieldRule(
            "host, pid, time, line text",
            "audit_id",
            "UUID5 over (`sshd`, UTC time, the whole line, its occurrence number among "
            "identical lines of the file): repeated identical lines stay separate events",
        ),
        FieldRule(
            "syslog time",
            "timestamp",
            "`--year` for the first line (+1 when December wraps to January), local time "
            "in `--timezone`; the text as written in `details.syslog_time`",
        ),
        FieldRule(
            "message",
            "action",
            "`Accepted …` → `auth.login`; `Failed …`, `Invalid user …` → `auth.failed`; "
            "`Disconnected from user …` (after sign-in) → `auth.logout`; "
            "`maximum authentication attempts exceeded` → `ssh.max_auth_attempts`; "
            "`Connection closed by …` → `ssh.connection_closed`; `Disconnected from "
            "(authenticating|invalid) user …` → `ssh.disconnected`; `Received disconnect` → "
            "`ssh.disconnect_received`; `Did not receive identification string` → "
            "`ssh.no_identification`; `Unable to negotiate` → `ssh.negotiation_failed`; "
            "`pam_unix(sshd:session)` → `ssh.session_opened` / `ssh.session_closed`",
        ),
        FieldRule(
            "message",
            "result",
            "`success` for sign-ins, logouts, sessions and client disconnects; `failure` "
            "for failures, invalid users and anything ending before authentication "
            "(`[preauth]`)",
        ),
        FieldRule(
            "user name, host",
            "actor.user_id",
            "`sshd:<host>:<user>` (an account exists per host); no user → "
            "`sshd:<host>` with type `system`",
        ),
        FieldRule("—", "actor.email", "never set"),
        FieldRule("—", "actor.type", "`user` when the line names a user, else `system`"),
        FieldRule(
            "`from <addr>`",
            "ip_address",
            "when an IP address; a host name (sshd with `UseDNS yes`) goes to "
            "`details.remote_host`",
        ),
        FieldRule("host", "resource", "`{type: host, id: host, name: host}`"),
        FieldRule("—", "organization_id", "`--org` (required: syslog names no tenant)"),
        FieldRule(
            "the rest",
            "details",
            "`sshd_event`, `host`, `program`, `pid`, `port`, `method`, `key`, "
            "`invalid_user`, `preauth`, `reason`, `syslog_time`, `message`",
        ),
    ),
    notes=(
        "`Invalid user x` and the `Failed password for invalid user x` lines that follow "
        "it are both `auth.failed` (key-only servers log only the first), so a brute force "
        "shows one more failure per connection than password attempts.",
        "`pam_unix(sshd:auth): authentication failure` repeats `Failed password` and is "
        "skipped, as are `Server listening`, `Received signal` and other non-events.",
        "Import rotated files of different years in separate runs, each with its `--year`.",
    ),
)


@dataclass
class _Clock:
    """Turns syslog times into UTC, file by file (year wrap, DST repeated hour)."""

    year: int | None
    zone: ZoneInfo
    year_now: int | None = None
    month: int = 0
    last_utc: datetime | None = None
    seen: dict[str, int] = field(default_factory=dict)
    second: str = ""

    def utc(self, mon: str, day: str, clock: str, shown: str) -> str:
        if self.year is None:
            raise ConfigError(
                f"{shown}: syslog time has no year; pass --year (the year of the file's "
                "first line) and --timezone (the host's zone)"
            )
        month = _MONTHS.get(mon)
        if month is None:
            raise ValueError(f"{mon!r} is not a month")
        if self.year_now is None:
            self.year_now = self.year
        elif month < self.month and self.month - month >= 6:
            self.year_now += 1
        self.month = month
        h, m, s = (int(x) for x in clock.split(":"))
        naive = datetime(self.year_now, month, int(day), h, m, s)
        early = naive.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        late = naive.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if early.astimezone(self.zone).replace(tzinfo=None) != naive:
            raise ValueError(
                f"{naive:%Y-%m-%d %H:%M:%S} does not exist in {self.zone.key} (the clocks "
                "skipped it); is --timezone the host's zone?"
            )
        chosen = early
        if early != late and self.last_utc is not None and early < self.last_utc:
            chosen = late  # the repeated hour, second pass
        self.last_utc = chosen
        return format_timestamp(int(chosen.timestamp() * 1000))


def records(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    organization_id: str | None = None,
    year: int | None = None,
    timezone: str = "UTC",
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
) -> Iterator[SourceRecord]:
    """Every line as an entry, ``None`` (skipped: not an sshd audit event) or why it
    cannot be one.

    Raises:
        ConfigError: no organization, an unknown time zone, or a classic line without
            ``year``.
    """
    if organization_id is None:
        raise ConfigError("syslog names no organization: pass --org (organization_id=)")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--timezone {timezone!r} is not an IANA time zone") from None
    for path in iter_files(paths):
        clock = _Clock(year, zone)
        name = str(path)
        with open_text(path) as fh:
            for lineno, text in enumerate(fh, 1):
                text = text.rstrip("\r\n")
                if not text.strip() or text.startswith("-- "):  # journalctl's "-- Boot …"
                    continue
                raw = text.encode()
                try:
                    value = _entry(text, clock, organization_id, f"{name}:{lineno}")
                except ValueError as exc:
                    if isinstance(exc, ConfigError):
                        raise
                    yield SourceRecord(name, lineno, IngestError(str(exc)), raw)
                    continue
                yield SourceRecord(name, lineno, value, raw)


def read(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """The entries of sshd log files (options as :func:`records`).

    Raises:
        IngestError: at the first line that cannot be an entry (file:line: reason).
    """

    return entries_only(records(paths, **options))


def _entry(text: str, clock: _Clock, org: str, where: str) -> dict[str, Any] | None:
    m = _CLASSIC.match(text)
    if m is not None:
        if m["prog"] not in PROGRAMS:
            return None
        shown = f"{m['mon']} {m['day']} {m['time']}"
        event = _event(m["msg"])
        if event is None:
            return None
        timestamp = clock.utc(m["mon"], m["day"], m["time"], where)
    else:
        m = _RFC3339.match(text)
        if m is None:
            raise ValueError("not a syslog line (expected 'Mon DD HH:MM:SS host program[pid]: …')")
        if m["prog"] not in PROGRAMS:
            return None
        shown = m["iso"]
        event = _event(m["msg"])
        if event is None:
            return None
        timestamp = iso_ms(m["iso"])
    name, action, result, g = event
    host, pid = m["host"], m["pid"]
    preauth = bool(g.get("preauth"))
    user = g.get("user")
    if name == "disconnected" and not g.get("kind") and not preauth and user is not None:
        action, result = "auth.logout", "success"
    elif name == "session":
        action = f"ssh.session_{g['what']}"
    details: dict[str, Any] = {"sshd_event": name, "host": host, "program": m["prog"]}
    if pid is not None:
        details["pid"] = int(pid)
    for key in ("method", "key", "reason", "code"):
        if g.get(key):
            details[key] = g[key]
    if g.get("port"):
        details["port"] = int(g["port"])
    if g.get("invalid") or g.get("kind") == "invalid" or name == "invalid_user":
        details["invalid_user"] = True
    if preauth:
        details["preauth"] = True
    ip, remote = split_address(g.get("addr"))
    if remote is not None:
        details["remote_host"] = remote
    details["syslog_time"] = shown
    details["message"] = m["msg"][:4096]
    if user is not None:
        details["user"] = user
        actor = {"user_id": f"sshd:{host}:{user}"[:256], "email": None, "type": "user"}
    else:
        actor = {"user_id": f"sshd:{host}"[:256], "email": None, "type": "system"}
    if clock.second != timestamp:
        clock.second, clock.seen = timestamp, {}
    occurrence = clock.seen.get(text, 0)
    clock.seen[text] = occurrence + 1
    return {
        "audit_id": stable_id(FORMAT, timestamp, text, str(occurrence)),
        "timestamp": timestamp,
        "actor": actor,
        "action": action,
        "resource": {"type": "host", "id": host[:256], "name": host[:512]},
        "organization_id": org,
        "ip_address": ip,
        "details": details,
        "result": result,
    }


def _event(msg: str) -> tuple[str, str, str, dict[str, Any]] | None:
    for name, action, result, pattern in EVENTS:
        m = pattern.match(msg)
        if m is not None:
            return name, action, result, m.groupdict()
    return None
