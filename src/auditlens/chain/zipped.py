"""The zip plumbing that bundles and evidence packages share.

A SHA-256 for every member (what a manifest lists), one deflated zip with the manifest
first and the other members in name order, and opening a zip for verification.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

from auditlens.errors import IngestError

__all__ = ["member_digests", "open_zip", "write_zip"]


def member_digests(files: dict[str, bytes]) -> dict[str, str]:
    """The SHA-256 (hex) of every member, in name order."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}


def write_zip(path: Path, manifest_name: str, manifest: bytes, files: dict[str, bytes]) -> str:
    """Write ``manifest`` then ``files`` (in name order) to a deflated zip at ``path``.

    Returns:
        The SHA-256 (hex) of the zip written.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(manifest_name, manifest)
        for name in sorted(files):
            zf.writestr(name, files[name])
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def open_zip(path: str | os.PathLike[str]) -> zipfile.ZipFile:
    """Open ``path`` for reading.

    Raises:
        IngestError: ``path`` is not a readable zip.
    """
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise IngestError(f"{path}: not a readable zip file ({exc})") from None
