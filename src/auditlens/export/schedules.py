"""Scheduled exports: each run exports the previous complete period, exactly once.

A schedule belongs to one organization on the pro or enterprise plan. ``run_due`` is
made to be called from cron every few minutes: for every schedule it finds each
complete period (yesterday, last ISO week, last month — in the schedule's time zone)
whose run time (the period's end at ``at`` o'clock) has passed since the schedule was
created and that has no successful run, claims it with a row in
``export_runs`` (a unique key makes a second, concurrent caller skip it), exports it
and delivers it. Missed periods are caught up; a run that failed is retried with
backoff (5, 15, 60 minutes, then every 4 hours) and stays visibly ``failed`` after five
attempts; a run left ``running`` by a crash is taken over after an hour.

Destinations: ``file:///folder/``, ``mailto:a@x.io,b@x.io`` (SMTP settings as for
alerts, see :mod:`auditlens.smtp`: TLS is verified; attachments above 10 MB are refused
with a clear error) and
``s3://bucket/prefix/`` (any S3-compatible store: ``AUDITLENS_S3_ENDPOINT_URL``,
``AUDITLENS_S3_REGION`` and the usual ``AWS_*`` credentials) and
``sftp://user@host:port/folder/`` (key auth with ``AUDITLENS_SFTP_KEY``; the host key
must be in ``AUDITLENS_SFTP_KNOWN_HOSTS`` — unknown keys are refused).

A schedule made with ``report="soc2"`` (or ``iso27001``, ``gdpr``, a framework YAML path)
delivers that compliance report for the period as a PDF, with a manifest, instead of a
data export. :func:`deliver` sends any file to these destinations.

Example:
    >>> from datetime import datetime, UTC
    >>> now = datetime(2025, 1, 15, 9, tzinfo=UTC)
    >>> start, end = previous_period("weekly", "Europe/Berlin", now)
    >>> start.isoformat(), end.isoformat()
    ('2025-01-06T00:00:00+01:00', '2025-01-13T00:00:00+01:00')
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError

from auditlens import s3
from auditlens.errors import ConfigError
from auditlens.export.schedule_tables import export_runs, export_schedules
from auditlens.export.writers import FORMATS, ExportResult, export, resolve_fields
from auditlens.smtp import SmtpSettings, send_email

if TYPE_CHECKING:
    from auditlens.store.store import Store

__all__ = [
    "NAME_RULE",
    "Run",
    "Schedule",
    "add_schedule",
    "check_name",
    "deliver",
    "list_runs",
    "list_schedules",
    "previous_period",
    "remove_schedule",
    "run_due",
]

EVERY = ("daily", "weekly", "monthly")
MAX_ATTEMPTS = 5
_RETRY_MIN = [5, 15, 60, 240]
_STALE_MS = 3_600_000
_MAIL_LIMIT = 10 * 1024 * 1024
# schedule names become file names: no separators, no leading dot, nothing to escape
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_RULE = (
    "1 to 100 characters: letters A-Z a-z, digits 0-9, '.', '_' and '-', "
    "starting with a letter or digit"
)


def check_name(name: str) -> str:
    """Return ``name`` when it is a valid schedule name, else raise :class:`ConfigError`.

    Names become part of the delivered file names, so they hold no path separators.

    Example:
        >>> check_name("weekly-soc2")
        'weekly-soc2'
        >>> check_name("../../tmp/x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        auditlens.errors.ConfigError: schedule name '../../tmp/x' is not allowed: use 1 to 100 ...
    """
    if not _NAME.fullmatch(name):
        raise ConfigError(f"schedule name {name!r} is not allowed: use {NAME_RULE}")
    return name


def _inside(folder: Path, name: str) -> Path:
    """``folder / name``, refused when it would resolve anywhere but directly in ``folder``.

    Defence in depth for names that did not pass :func:`check_name` (a row written by
    hand, an older version) and for a symlink in the folder pointing elsewhere.
    """
    base = folder.resolve()
    target = (base / name).resolve()
    if target.parent != base:
        raise ConfigError(f"refusing to write {name!r}: it resolves to {target}, outside {base}")
    return target


_S, _R = export_schedules.c, export_runs.c


@dataclass(frozen=True)
class Schedule:
    """A scheduled export."""

    name: str
    organization_id: str
    every: str
    at: str
    timezone: str
    query: str | None
    format: str
    fields: str | None
    destination: str
    created_ms: int
    #: a framework name or YAML path: the schedule delivers that compliance report (PDF)
    report: str | None = None


@dataclass(frozen=True)
class Run:
    """One period of one schedule."""

    schedule: str
    period_start: datetime
    period_end: datetime
    status: str
    attempts: int
    rows: int | None
    bytes: int | None
    sha256: str | None
    location: str | None
    error: str | None


def previous_period(every: str, timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """The last complete day, ISO week or month before ``now``, in ``timezone`` (start, end)."""
    local = now.astimezone(ZoneInfo(timezone))
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if every == "daily":
        end = today
        start = end - timedelta(days=1)
    elif every == "weekly":
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
    elif every == "monthly":
        end = today.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
    else:
        raise ConfigError(f"every must be one of {', '.join(EVERY)}, got {every!r}")
    zone = ZoneInfo(timezone)
    return (
        start.replace(tzinfo=None).replace(tzinfo=zone),
        end.replace(tzinfo=None).replace(tzinfo=zone),
    )


def _validate(
    every: str, at: str, timezone: str, fmt: str, destination: str, report: str | None
) -> None:
    if every not in EVERY:
        raise ConfigError(f"--every must be one of {', '.join(EVERY)}, got {every!r}")
    try:
        dtime.fromisoformat(at)
    except ValueError:
        raise ConfigError(f"--at must be a time like 02:00, got {at!r}") from None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {timezone!r}") from None
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
    if report is not None:
        from auditlens.reports.frameworks import (
            load_framework,
        )  # lazy: reports load jinja2 and plots; exports do not

        load_framework(report)  # a typo or an invalid YAML fails now, not at 02:00
    if not destination.startswith(("file://", "mailto:", "s3://", "sftp://")):
        raise ConfigError(
            "--to must be file:///folder/, mailto:a@x.io, s3://bucket/prefix/ or "
            "sftp://user@host/path/"
        )


def add_schedule(
    store: Store,
    name: str,
    *,
    organization_id: str,
    every: str,
    destination: str,
    at: str = "02:00",
    timezone: str = "UTC",
    query: str | None = None,
    format: str = "csv",
    fields: str | None = None,
    report: str | None = None,
) -> Schedule:
    """Create a schedule (the organization must be on the pro or enterprise plan).

    With ``report`` (``soc2``, ``iso27001``, ``gdpr`` or a framework YAML path) each
    period delivers that compliance report as a PDF instead of a data export.
    """
    check_name(name)
    if report is not None:
        format, fields, query = "pdf", None, None
        report = report if report.lower() not in ("soc2", "iso27001", "gdpr") else report.lower()
        if report not in ("soc2", "iso27001", "gdpr"):
            report = str(Path(report).resolve())
    _validate(every, at, timezone, format, destination, report)
    if fields:
        resolve_fields(fields)
    from auditlens.retention import require_plan  # lazy: retention loads pyarrow datasets

    require_plan(store, organization_id, ("pro", "enterprise"), "scheduled exports")
    sched = Schedule(
        name,
        organization_id,
        every,
        at,
        timezone,
        query,
        format,
        fields,
        destination,
        int(time.time() * 1000),
        report,
    )
    try:
        with store.transaction() as conn:
            conn.execute(export_schedules.insert().values(**sched.__dict__))
    except Exception as exc:
        if (
            isinstance(exc.__cause__, IntegrityError)
            or "UNIQUE" in str(exc)
            or "duplicate" in str(exc)
        ):
            raise ConfigError(f"a schedule named {name!r} exists; remove it first") from None
        raise
    return sched


def remove_schedule(store: Store, name: str) -> bool:
    """Delete a schedule (its run history stays)."""
    with store.transaction() as conn:
        return bool(conn.execute(delete(export_schedules).where(_S.name == name)).rowcount)


def list_schedules(store: Store) -> list[Schedule]:
    """Every schedule."""
    with store.connect() as conn:
        return [
            Schedule(**r._mapping)
            for r in conn.execute(
                select(
                    _S.name,
                    _S.organization_id,
                    _S.every,
                    _S.at,
                    _S.timezone,
                    _S.query,
                    _S.format,
                    _S.fields,
                    _S.destination,
                    _S.created_ms,
                    _S.report,
                ).order_by(_S.name)
            )
        ]


def list_runs(store: Store, schedule: str | None = None) -> list[Run]:
    """Run history, newest period first."""
    stmt = select(
        _R.schedule,
        _R.period_start_ms,
        _R.period_end_ms,
        _R.status,
        _R.attempts,
        _R.rows,
        _R.bytes,
        _R.sha256,
        _R.location,
        _R.error,
    ).order_by(_R.period_start_ms.desc(), _R.schedule)
    if schedule:
        stmt = stmt.where(_R.schedule == schedule)
    with store.connect() as conn:
        return [
            Run(
                sched,
                datetime.fromtimestamp(a / 1000, UTC),
                datetime.fromtimestamp(b / 1000, UTC),
                status,
                attempts,
                rows,
                size,
                sha,
                location,
                error,
            )
            for sched, a, b, status, attempts, rows, size, sha, location, error in conn.execute(
                stmt
            )
        ]


def _periods(s: Schedule, now: datetime) -> list[tuple[datetime, datetime]]:
    """Complete periods since the schedule was created whose run time has passed, oldest first."""
    created = datetime.fromtimestamp(s.created_ms / 1000, UTC)
    run_at = dtime.fromisoformat(s.at)
    out = []
    cursor = now
    for _ in range(400):  # at most ~a year of daily catch-up per call
        start, end = previous_period(s.every, s.timezone, cursor)
        due = end.replace(hour=run_at.hour, minute=run_at.minute)
        if due <= created:  # the first period is the first one to come due after creation
            break
        if due <= now:
            out.append((start, end))
        cursor = start + timedelta(hours=1)
    return sorted(out)


def _claim(store: Store, s: Schedule, start: datetime, end: datetime, now_ms: int) -> int | None:
    """Claim a period; returns the attempt number, or None when it is done or not due yet."""
    key = and_(_R.schedule == s.name, _R.period_start_ms == int(start.timestamp() * 1000))
    with store.transaction() as conn:
        row = conn.execute(
            select(_R.status, _R.attempts, _R.next_attempt_ms, _R.started_ms).where(key)
        ).first()
        if row is None:
            conn.execute(
                export_runs.insert().values(
                    schedule=s.name,
                    period_start_ms=int(start.timestamp() * 1000),
                    period_end_ms=int(end.timestamp() * 1000),
                    status="running",
                    attempts=1,
                    next_attempt_ms=0,
                    started_ms=now_ms,
                    destination=s.destination,
                )
            )
            return 1
        status, attempts, next_ms, started = row
        stale = status == "running" and now_ms - int(started or 0) > _STALE_MS
        retry = status == "failed" and attempts < MAX_ATTEMPTS and now_ms >= int(next_ms or 0)
        if not (stale or retry):
            return None
        conn.execute(
            update(export_runs)
            .where(key)
            .values(status="running", attempts=attempts + 1, started_ms=now_ms, error=None)
        )
        return int(attempts) + 1


def deliver(path: Path, destination: str, *, subject: str, text: str) -> str:
    """Send a file (and its ``.manifest.json`` beside it, when there is one) to a destination.

    ``destination`` is ``file:///folder/``, ``mailto:a@x.io,b@x.io``, ``s3://bucket/prefix/``
    or ``sftp://user@host:port/folder/``; ``subject``/``text`` are the email's. Returns
    where the file now is.
    """
    dest = destination
    manifest = path.with_name(path.name + ".manifest.json")
    if dest.startswith("file://"):
        folder = Path(dest[len("file://") :])
        if not folder.is_dir():
            raise ConfigError(f"destination folder {folder} does not exist")
        target = _inside(folder, path.name)
        if manifest.is_file():
            manifest_target = _inside(folder, manifest.name)
            target.write_bytes(path.read_bytes())
            manifest_target.write_bytes(manifest.read_bytes())
        else:
            target.write_bytes(path.read_bytes())
        return str(target)
    if dest.startswith("mailto:"):
        cfg = SmtpSettings.from_env()
        if not cfg.host:
            raise ConfigError("mailto: destinations need AUDITLENS_SMTP_HOST")
        size = path.stat().st_size
        if size > _MAIL_LIMIT:
            raise ConfigError(
                f"the export is {size:,} bytes; email attachments are limited to "
                f"{_MAIL_LIMIT:,}: use a file://, s3:// or sftp:// destination"
            )
        msg = EmailMessage()
        msg["Subject"] = f"[auditlens] {subject}"
        msg["From"] = cfg.sender
        msg["To"] = ", ".join(dest[len("mailto:") :].split(","))
        msg.set_content(text)
        msg.add_attachment(
            path.read_bytes(), maintype="application", subtype="octet-stream", filename=path.name
        )
        if manifest.is_file():
            msg.add_attachment(
                manifest.read_bytes(),
                maintype="application",
                subtype="json",
                filename=manifest.name,
            )
        send_email(cfg, msg)
        return dest
    if dest.startswith("s3://"):
        return _to_s3(dest, path)
    if dest.startswith("sftp://"):
        return _to_sftp(dest, path)
    scheme = dest.split(":", 1)[0]
    raise ConfigError(f"{scheme}:// destinations are not available in this version of auditlens")


def _deliver(s: Schedule, path: Path, period: str) -> str:
    what = (
        f"{s.report.upper()} compliance report"
        if s.report and "/" not in s.report
        else ("compliance report" if s.report else "audit log export")
    )
    return deliver(
        path,
        s.destination,
        subject=f"{s.name}: {what} for {period}",
        text=(
            f"Scheduled {what} {s.name} of organization {s.organization_id} for {period}.\n"
            f"Attached: {path.name} and its manifest (SHA-256 and row count).\n"
        ),
    )


def _to_sftp(dest: str, path: Path) -> str:
    """Upload the file and its manifest to ``sftp://user@host:port/folder/`` with key auth.

    The server's host key must be in ``AUDITLENS_SFTP_KNOWN_HOSTS`` (default
    ``~/.ssh/known_hosts``): an unknown key is refused, never accepted silently. The private
    key comes from ``AUDITLENS_SFTP_KEY``.
    """
    import os
    from urllib.parse import urlparse

    try:
        import paramiko  # lazy: paramiko only for sftp:// destinations
    except ImportError:
        raise ConfigError(
            "sftp:// destinations need paramiko: pip install 'auditlens[sftp]'"
        ) from None
    url = urlparse(dest)
    if not url.hostname or not url.username:
        raise ConfigError(f"{dest}: use sftp://user@host[:port]/folder/")
    key = os.environ.get("AUDITLENS_SFTP_KEY")
    if not key:
        raise ConfigError("sftp:// destinations need AUDITLENS_SFTP_KEY (a private key file)")
    known = os.environ.get("AUDITLENS_SFTP_KNOWN_HOSTS") or str(
        Path.home() / ".ssh" / "known_hosts"
    )
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(known)
    except OSError:
        raise ConfigError(
            f"cannot read known hosts {known}; the server's key must be listed there"
        ) from None
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            url.hostname,
            port=url.port or 22,
            username=url.username,
            key_filename=key,
            look_for_keys=False,
            allow_agent=False,
            timeout=30,
        )
        sftp = client.open_sftp()
        folder = url.path.rstrip("/") or "."
        target = f"{folder}/{path.name}"
        sftp.put(str(path), target)
        sftp.put(str(path.with_name(path.name + ".manifest.json")), target + ".manifest.json")
        sftp.close()
    except paramiko.SSHException as exc:
        raise ConfigError(f"SFTP to {url.hostname}:{url.port or 22}: {exc}") from None
    finally:
        client.close()
    return f"sftp://{url.username}@{url.hostname}:{url.port or 22}{target}"


def _to_s3(dest: str, path: Path) -> str:
    """Upload the file and its manifest to ``s3://bucket/prefix/`` (see :mod:`auditlens.s3`)."""

    conn = s3.client()
    location = s3.upload(path, dest, s3=conn)
    manifest = path.with_name(path.name + ".manifest.json")
    if manifest.is_file():
        s3.upload(manifest, dest, s3=conn)
    return location


def _report_pdf(
    store: Store, s: Schedule, start: datetime, end: datetime, path: Path
) -> ExportResult:
    """Render the schedule's compliance report for the period, with a manifest beside it."""
    import hashlib
    import json

    from auditlens.reports import (
        build_report,
    )  # lazy: reports load jinja2 and plots; exports do not

    report = build_report(
        store,
        s.report or "soc2",
        s.organization_id,
        start.astimezone(UTC),
        (end - timedelta(milliseconds=1)).astimezone(UTC),
    )
    report.to_pdf(path)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    manifest = {
        "kind": "compliance_report",
        "framework": report.framework.framework,
        "summary": report.summary,
        "provenance": report.provenance,
        "file": path.name,
        "bytes": len(data),
        "sha256": sha,
    }
    path.with_name(path.name + ".manifest.json").write_text(
        json.dumps(manifest, indent=2, default=str), encoding="utf-8"
    )
    return ExportResult(
        path=path,
        format="pdf",
        rows=report.provenance["rows"],
        bytes=len(data),
        sha256=sha,
        fields=[],
        first=report.provenance["parameters"]["start"],
        last=report.provenance["parameters"]["end"],
        organizations={s.organization_id: report.provenance["rows"]},
        manifest=path.with_name(path.name + ".manifest.json"),
    )


def _finish(store: Store, key: Any, **values: Any) -> None:
    """Record how a claimed run ended."""
    with store.transaction() as conn:
        conn.execute(
            update(export_runs).where(key).values(finished_ms=int(time.time() * 1000), **values)
        )


def run_due(store: Store, *, now: datetime | None = None) -> list[Run]:
    """Run every due period of every schedule (exactly once per period); returns the runs made."""
    now = now or datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    made: list[Run] = []
    for s in list_schedules(store):
        for start, end in _periods(s, now):
            attempt = _claim(store, s, start, end, now_ms)
            if attempt is None:
                continue
            key = and_(_R.schedule == s.name, _R.period_start_ms == int(start.timestamp() * 1000))
            period = f"{start:%Y-%m-%d}..{(end - timedelta(seconds=1)):%Y-%m-%d}"
            suffix = {
                "csv": "csv",
                "json": "json",
                "jsonl": "jsonl",
                "parquet": "parquet",
                "pdf": "pdf",
            }[s.format]
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    path = _inside(Path(tmp), f"{s.name}-{start:%Y%m%d}.{suffix}")
                    if s.report:
                        res = _report_pdf(store, s, start, end, path)
                    else:
                        res = export(
                            store,
                            path,
                            format=s.format,
                            fields=s.fields,
                            where=s.query,
                            organization_id=s.organization_id,
                            start=start.astimezone(UTC),
                            end=(end - timedelta(milliseconds=1)).astimezone(UTC),
                        )
                    location = _deliver(s, path, period)
                _finish(
                    store,
                    key,
                    status="succeeded",
                    rows=res.rows,
                    bytes=res.bytes,
                    sha256=res.sha256,
                    location=location,
                )
            except Exception as exc:
                wait = _RETRY_MIN[min(attempt - 1, len(_RETRY_MIN) - 1)] * 60_000
                _finish(
                    store,
                    key,
                    status="failed",
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                    next_attempt_ms=now_ms + wait,
                )
            made.extend(
                r for r in list_runs(store, s.name) if r.period_start == start.astimezone(UTC)
            )
    return made
