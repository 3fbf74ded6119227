"""Settings read from the environment.

=====================  ===========================================  =======================
variable               meaning                                      default
=====================  ===========================================  =======================
``AUDITLENS_URL``      SQLAlchemy URL (or path) of the store        ``sqlite:///auditlens.db``
=====================  ===========================================  =======================

Example:
    >>> resolve_url("audit.db")
    'sqlite:///audit.db'
    >>> resolve_url("postgresql+psycopg://u@db/audit")
    'postgresql+psycopg://u@db/audit'
"""

from __future__ import annotations

import os

from auditlens.errors import ConfigError

__all__ = ["DEFAULT_URL", "absolute_url", "redact_url", "resolve_url"]

DEFAULT_URL = "sqlite:///auditlens.db"


def resolve_url(url: str | os.PathLike[str] | None = None) -> str:
    """The store URL: ``url``, else ``$AUDITLENS_URL``, else ``sqlite:///auditlens.db``.

    A plain file path is taken as a SQLite file.
    """
    if url is None:
        url = os.environ.get("AUDITLENS_URL") or DEFAULT_URL
    text = os.fspath(url).strip()
    if not text:
        raise ConfigError("the store URL is empty; pass a SQLAlchemy URL or set AUDITLENS_URL")
    if "://" not in text:
        return f"sqlite:///{text}"
    scheme = text.split("://", 1)[0]
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ConfigError(
            f"unsupported store URL scheme {scheme!r}: use sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST/DB"
        )
    if scheme.startswith("postgresql") and scheme not in ("postgresql+psycopg",):
        raise ConfigError(
            f"use the psycopg 3 driver for PostgreSQL: postgresql+psycopg://… (got {scheme}://…)"
        )
    return text


def absolute_url(url: str | os.PathLike[str] | None = None) -> str:
    """:func:`resolve_url`, with a relative SQLite file made absolute — for handing the store
    to another process that may run in another folder (a notebook kernel, say).

    Example:
        >>> absolute_url("sqlite://")
        'sqlite://'
        >>> absolute_url("/srv/audit.db")
        'sqlite:////srv/audit.db'
    """
    text = resolve_url(url)
    scheme, _, rest = text.partition("://")
    if not scheme.startswith("sqlite") or not rest.startswith("/") or rest.startswith("//"):
        return text
    path, sep, query = rest[1:].partition("?")
    if not path or path == ":memory:":
        return text
    return f"{scheme}:///{os.path.abspath(path)}{sep}{query}"


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs.

    Example:
        >>> redact_url("postgresql+psycopg://app:s3cret@db:5432/audit")
        'postgresql+psycopg://app:***@db:5432/audit'
    """
    from sqlalchemy.engine import make_url  # lazy: no SQLAlchemy at CLI start-up

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
