"""Building entries from native records: stable ids, names, addresses, bounded details.

The rules every importer shares (``docs/IMPORTERS.md``):

* **audit_id** = UUID5 over ``(format, the source's own id)`` (:func:`stable_id`), so a
  re-import of the same record is the same entry (the store counts it as already
  stored) and a record changed at the source is refused as a conflict, never stored twice.
* **organization_id** = the ``--org`` given, else UUID5 over the source's own tenant id
  (:func:`organization_for`: an AWS account, an Okta org, a Workspace customer).
* **action** = ``category.verb`` in lower snake case (:func:`action_name`).
* **ip_address** only when the source wrote an address; a host or service name
  ("AWS Internal", ``ssm.amazonaws.com``, a reverse-resolved ``sshd`` peer) stays in
  ``details`` (:func:`split_address`).
* **details** keep the native record; when it is larger than the store's limit the
  bulky parts are dropped, largest first, and ``details.truncated`` names them, their
  size and the SHA-256 of the whole native record (:func:`fit_details`).

Example:
    >>> stable_id("cloudtrail", "3038ebd2-c98a-4c65-9b6e-e22506292313")
    '8e519f9d-2370-5537-98c4-42db7d1a8e73'
    >>> action_name("iam.amazonaws.com", "CreateAccessKey")
    'iam.create_access_key'
    >>> split_address("AWS Internal"), split_address("2001:DB8::1")
    ((None, 'AWS Internal'), ('2001:db8::1', None))
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from auditlens.schema import IPV4_CANONICAL_RE, format_timestamp, parse_timestamp

__all__ = [
    "IMPORT_NAMESPACE",
    "FieldRule",
    "SourceMapping",
    "action_name",
    "first_text",
    "fit_details",
    "iso_ms",
    "obj",
    "organization_for",
    "snake",
    "split_address",
    "stable_id",
]

#: the UUID5 namespace of every id an importer derives (fixed forever: changing it
#: would turn every re-import into new entries)
IMPORT_NAMESPACE = uuid.UUID("6f1c3a52-8a4e-4c1b-9d0e-2b7f5e9a3c11")
_NAMESPACE_BYTES = IMPORT_NAMESPACE.bytes

_CAMEL_1 = re.compile(r"(.)([A-Z][a-z]+)")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9_]+")
_WHOLE_SECONDS_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def stable_id(source: str, *native: str) -> str:
    """The audit_id of a native record: UUID5 over the format and the source's own id
    (``uuid.uuid5``'s value, computed without building a ``UUID`` object)."""
    name = "\x1f".join((source, *native)).encode()
    h = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest())
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h[:16].hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


@functools.lru_cache(maxsize=4096)
def organization_for(kind: str, native_id: str) -> str:
    """The organization id derived from a source's tenant (``aws-account``, ``okta-org``,
    ``github-org``, ``google-customer``) and its id.

    Example:
        >>> organization_for("aws-account", "123456789012")
        '19e1f581-09ef-53d0-a1f1-bd5fd73e63a0'
    """
    return str(uuid.uuid5(IMPORT_NAMESPACE, f"organization\x1f{kind}\x1f{native_id}"))


@functools.lru_cache(maxsize=8192)
def snake(name: str) -> str:
    """``CreateAccessKey`` → ``create_access_key``, ``GetBucketACL`` → ``get_bucket_acl``,
    ``login-failure`` → ``login_failure``."""
    s = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name)).lower()
    return _NOT_WORD.sub("_", s).strip("_")


@functools.lru_cache(maxsize=8192)
def action_name(category: str, verb: str) -> str:
    """``category.verb`` in the entry's form: the category's first DNS label (an AWS
    ``eventSource``) or itself, both in lower snake case; a leading digit gets ``x``."""
    cat = snake(category.split(".amazonaws.com")[0].split(".")[0] or "unknown")
    v = snake(verb) or "unknown"
    if not cat[:1].isalpha():
        cat = f"x{cat}"
    if not v[:1].isalpha():
        v = f"x{v}"
    return f"{cat}.{v}"[:128]


@functools.lru_cache(maxsize=65_536)
def split_address(value: str | None) -> tuple[str | None, str | None]:
    """``(ip, None)`` for an IP address, ``(None, text)`` for a host or service name."""
    if value is None or not value.strip():
        return None, None
    if IPV4_CANONICAL_RE.fullmatch(value):  # its own canonical form: no parse needed
        return value, None
    try:
        return str(ipaddress.ip_address(value.strip())), None
    except ValueError:
        return None, value


def iso_ms(value: object) -> str:
    """An ISO 8601 time (with zone) in the entry's form ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    Whole seconds in UTC (``2024-03-01T10:00:00Z``, CloudTrail's form) only need checking
    that they are a real time; anything else is parsed and formatted.

    Example:
        >>> iso_ms("2024-03-01T10:00:00Z"), iso_ms("2024-03-01T11:00:00.1234+01:00")
        ('2024-03-01T10:00:00.000Z', '2024-03-01T10:00:00.123Z')

    Raises:
        ValueError: not a timestamp, or no time zone.
    """
    if type(value) is str and _WHOLE_SECONDS_UTC.fullmatch(value):
        try:
            datetime.fromisoformat(value)  # a real date and time (year 0000 and 24:00 fail)
        except ValueError:
            pass  # parse_timestamp says why
        else:
            return f"{value[:19]}.000Z"
    return format_timestamp(parse_timestamp(value))


def fit_details(
    details: dict[str, Any],
    limit: int,
    bulky: Sequence[str],
    *,
    raw: bytes | None = None,
) -> dict[str, Any]:
    """Details that fit the store's limit: the ``bulky`` keys are dropped, largest first,
    until the rest fits; ``details.truncated`` says what was cut.

    The marker holds the dropped keys, the size of the details before (bytes of compact
    JSON) and the SHA-256 of the native record (``raw``), so the original can be found
    and checked at the source. Identifying and security-relevant fields are never in
    ``bulky``; if they alone are too large the entry is rejected by validation.

    Example:
        >>> record = {"eventID": "e1", "responseElements": {"x": "y" * 500}}
        >>> d = fit_details(dict(record), 200, ["responseElements"], raw=orjson.dumps(record))
        >>> d["eventID"], d["truncated"]["dropped"], d["truncated"]["bytes"]
        ('e1', ['responseElements'], 544)
    """
    if raw is not None and len(raw) <= limit:
        return details  # a part of the native record is never larger than all of it
    size = len(orjson.dumps(details))
    if size <= limit:
        return details
    out = dict(details)
    sizes = sorted(
        ((len(orjson.dumps(out[k])), k) for k in bulky if k in out),
        reverse=True,
    )
    dropped: list[str] = []
    marker: dict[str, Any] = {"dropped": dropped, "bytes": size, "limit": limit}
    if raw is not None:
        marker["record_sha256"] = hashlib.sha256(raw).hexdigest()
    out["truncated"] = marker
    for _, key in sizes:
        del out[key]
        dropped.append(key)
        if len(orjson.dumps(out)) <= limit:
            break
    return out


@dataclass(frozen=True)
class FieldRule:
    """One row of a source's mapping table: where a native field goes and how."""

    source: str
    entry: str
    rule: str


@dataclass(frozen=True)
class SourceMapping:
    """A source's documented mapping (rendered into ``docs/IMPORTERS.md``)."""

    format: str
    title: str
    inputs: str
    fields: tuple[FieldRule, ...]
    notes: tuple[str, ...] = field(default=())

    def markdown(self) -> str:
        """The mapping as the Markdown section of ``docs/IMPORTERS.md``."""
        lines = [
            f"## {self.title} (`{self.format}`)",
            "",
            f"Input: {self.inputs}",
            "",
            "| source field | entry field | rule |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {r.source} | `{r.entry}` | {r.rule} |" for r in self.fields]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def obj(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (absent or malformed parts)."""
    return value if isinstance(value, dict) else {}


def first_text(record: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` holding non-empty text."""
    for k in keys:
        v = record.get(k)
        if isinstance(v, str) and v.strip():
            return v
    return None
