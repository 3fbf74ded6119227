"""Shared fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL: each test run creates its own database (``auditlens_test_<random>``) on
the server named by ``AUDITLENS_TEST_PG_URL`` (default: the local trust-auth server)
and each test its own schema inside it, so runs and tests never collide. When the
server is unreachable, PostgreSQL cases are skipped with the reason — unless
``AUDITLENS_REQUIRE_PG`` is set (CI sets it), in which case they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

import auditlens as al
from auditlens.retention import set_plan
from tests.alerts.servers import s3_server
from tests.helpers import ORG, S3_BUCKET, append_aged

PG_BASE_URL = os.environ.get(
    "AUDITLENS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test run (URL), or None if unreachable."""
    try:
        import psycopg

        admin = psycopg.connect(_libpq(PG_BASE_URL), autocommit=True, connect_timeout=5)
    except Exception as exc:
        if os.environ.get("AUDITLENS_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL required (AUDITLENS_REQUIRE_PG) but unreachable: {exc}")
        yield None
        return
    name = f"auditlens_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_BASE_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _pg_schema_url(base: str) -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    import psycopg

    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema},public"})
    return url.render_as_string(hide_password=False), schema


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store location, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    base = request.getfixturevalue("pg_database")
    if base is None:
        pytest.skip(
            f"PostgreSQL unreachable at {make_url(PG_BASE_URL).render_as_string()} "
            "(set AUDITLENS_REQUIRE_PG=1 to make this a failure)"
        )
    url, schema = _pg_schema_url(base)
    yield url
    import psycopg

    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def store(store_url: str) -> Iterator[al.AuditStore]:
    """An empty store on each backend."""
    s = al.open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's S3 server over HTTP with the bucket ``S3_BUCKET``; yields a boto3 client."""
    with s3_server(monkeypatch, S3_BUCKET) as client:
        yield client


@pytest.fixture
def s3_lake(s3: Any) -> str:
    """A lake URL on the ``s3`` fixture's bucket: a prefix of its own per test (moto keeps
    its state per process)."""
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}/lake"


@pytest.fixture
def aged(store: al.AuditStore) -> al.AuditStore:
    """The retention tests' store: ORG and ORG2 each 40 entries from 60 to 21 days ago, then
    10 recent ones; ORG on the starter plan (30 days: ``set_plan`` appends ORG's 51st entry,
    plan_changed, now), ORG2 on none. tests/chain/conftest.py puts both on starter."""
    append_aged(store)
    set_plan(store, ORG, "starter")
    return store
