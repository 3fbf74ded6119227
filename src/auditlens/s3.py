"""S3 (and S3-compatible) access for scheduled exports and the retention archive.

Endpoint, region and credentials come from the environment: ``AUDITLENS_S3_ENDPOINT_URL``
for S3-compatible stores (MinIO, Ceph, R2 …), ``AUDITLENS_S3_REGION``, then the usual
``AWS_*`` variables or profiles. Nothing is logged.

Example:
    >>> split_url("s3://audit-bucket/archive/acme/")
    ('audit-bucket', 'archive/acme')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from auditlens.errors import ArchiveError, ConfigError

__all__ = ["client", "download", "split_url", "upload"]


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` → ``(bucket, prefix)`` (prefix without slashes at the ends)."""
    if not url.startswith("s3://"):
        raise ConfigError(f"{url}: not an s3:// URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ConfigError(f"{url}: no bucket name")
    return bucket, prefix.strip("/")


def client() -> Any:
    """A boto3 S3 client configured from the environment."""
    try:
        import boto3  # lazy: boto3 only for s3:// destinations
    except ImportError:
        raise ConfigError("s3:// locations need boto3: pip install 'auditlens[s3]'") from None
    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("AUDITLENS_S3_ENDPOINT_URL") or None,
        region_name=os.environ.get("AUDITLENS_S3_REGION") or None,
    )


def _key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}".lstrip("/") if prefix else name


def upload(path: Path, url: str, name: str | None = None, *, s3: Any = None) -> str:
    """Upload a file under ``url`` (a bucket/prefix); returns the object's s3:// URL."""
    bucket, prefix = split_url(url)
    key = _key(prefix, name or path.name)
    (s3 or client()).upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


def download(url: str, path: Path, *, s3: Any = None) -> Path:
    """Download one object (an s3:// URL of the object itself) to ``path``."""
    bucket, key = split_url(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        (s3 or client()).download_file(bucket, key, str(path))
    except Exception as exc:  # botocore's errors: a missing object, no access, no network
        raise ArchiveError(f"{url}: cannot download ({type(exc).__name__}: {exc})") from None
    return path
