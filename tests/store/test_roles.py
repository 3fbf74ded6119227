"""Least privilege and tenant isolation on PostgreSQL (`auditlens.store.roles`).

Each test creates its own group roles (unique prefix) and LOGIN users that are members of
them, connects as those users (trust auth), tries what each role must not do, and drops
every role it made at teardown (roles are cluster-wide).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from auditlens.errors import ConfigError, StoreError
from auditlens.retention import apply_retention, set_plan
from auditlens.store.roles import create_roles, retention_role_name, role_names, scoped_url
from tests.helpers import NOW, ORG, ORG2, append_aged, make_entry

#: these tests need PostgreSQL: the `store_url` fixture's SQLite case does not apply
PG_ONLY = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Cluster:
    """The owner's store URL and one LOGIN user per group role, with their URLs."""

    owner_url: str
    prefix: str
    reader_url: str
    appender_url: str
    admin_url: str
    retention_url: str = ""


@pytest.fixture
def roles(store_url: str) -> Iterator[Cluster]:
    prefix = f"alt_{uuid.uuid4().hex[:10]}"
    groups = (*role_names(prefix), retention_role_name(prefix))
    users = [f"{g}_login" for g in groups]
    with psycopg.connect(_libpq(store_url), autocommit=True) as conn:
        try:
            with al.open_store(store_url) as owner:
                owner.append([make_entry(), make_entry(), make_entry(organization_id=ORG2)])
                create_roles(owner, prefix)
            for group, user in zip(groups, users, strict=True):
                conn.execute(f'CREATE ROLE "{user}" LOGIN IN ROLE "{group}"')
            urls = [make_url(store_url).set(username=u).render_as_string(False) for u in users]
            yield Cluster(store_url, prefix, *urls)
        finally:
            _drop_roles(conn, [*users, *groups])


def _drop_roles(conn: psycopg.Connection[tuple[object, ...]], names: list[str]) -> None:
    """Drop those of ``names`` that exist, with their grants and policies in this database."""
    found = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [names])
    quoted = ", ".join(f'"{row[0]}"' for row in found.fetchall())
    if quoted:
        conn.execute(f"DROP OWNED BY {quoted}")
        conn.execute(f"DROP ROLE {quoted}")


def _refused(url: str, sql: str, why: str) -> None:
    """Running ``sql`` as the user of ``url`` fails with insufficient privilege saying ``why``."""
    engine = create_engine(url)
    try:
        with pytest.raises(ProgrammingError) as info, engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()
    assert isinstance(info.value.orig, psycopg.errors.InsufficientPrivilege)
    assert why in str(info.value.orig)


def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM audit_entries")).scalar_one())
    finally:
        engine.dispose()


@PG_ONLY
def test_create_roles_is_idempotent_and_makes_nologin_groups(roles: Cluster) -> None:
    with al.open_store(roles.owner_url) as owner:
        again = create_roles(owner, roles.prefix)  # a second run changes nothing
    assert (again.reader, again.appender, again.admin) == role_names(roles.prefix)
    with psycopg.connect(_libpq(roles.owner_url)) as conn:
        found = conn.execute(
            "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
            [list(role_names(roles.prefix))],
        ).fetchall()
        policies = conn.execute(
            "SELECT count(*) FROM pg_policies WHERE tablename = 'audit_entries' "
            "AND schemaname = %s",
            [again.schema],
        ).fetchone()
    assert sorted(found) == sorted((r, False) for r in role_names(roles.prefix))
    assert policies == (2,)  # the tenant policy and the admin one, not duplicated


@PG_ONLY
def test_reader_cannot_change_anything(roles: Cluster) -> None:
    url = roles.reader_url
    insert = (
        "INSERT INTO audit_entries (organization_id, seq, audit_id, ts, actor_type, action, "
        "category, details, result, prev_hash, entry_hash) VALUES ('{org}', 99, "
        "'00000000-0000-4000-8000-000000000099', 0, 'user', 'x', 'x', '{{}}', 'success', "
        "'', '')"
    )
    denied = "permission denied for table audit_entries"
    _refused(url, insert.format(org=ORG), denied)
    _refused(url, "UPDATE audit_entries SET action = 'forged'", denied)
    _refused(url, "DELETE FROM audit_entries", denied)
    _refused(url, "TRUNCATE audit_entries", denied)
    _refused(
        url,
        "INSERT INTO checkpoints (organization_id, tree_size, root_hash, created_ms, note) "
        f"VALUES ('{ORG}', 1, 'x', 0, 'forged')",
        "permission denied for table checkpoints",
    )
    _refused(url, "DROP TRIGGER audit_entries_no_update ON audit_entries", "must be owner")
    _refused(url, "ALTER TABLE audit_entries DISABLE ROW LEVEL SECURITY", "must be owner")


@PG_ONLY
def test_scoped_reader_sees_only_its_organization(roles: Cluster) -> None:
    assert _count(roles.owner_url) == 3  # the owner is not subject to the policies
    assert _count(roles.reader_url) == 0  # a reader without a scope sees nothing
    assert _count(scoped_url(roles.reader_url, ORG)) == 2  # raw SQL, scoped to ORG
    assert _count(scoped_url(roles.reader_url, ORG2)) == 1
    with al.open_store(roles.reader_url) as reader, reader.scoped(ORG2) as scoped:
        assert reader.count() == 0
        assert scoped.count() == 1
        frame = scoped.query()  # Arrow reads (ADBC) carry the scope too
        assert frame["organization_id"].to_list() == [ORG2]
        assert [o["organization_id"] for o in scoped.organizations()] == [ORG2]


@PG_ONLY
def test_auditlens_org_scopes_every_store_opened(
    roles: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITLENS_ORG", ORG)
    with al.open_store(roles.reader_url) as reader:
        assert reader.count() == 2
        assert set(reader.query()["organization_id"].to_list()) == {ORG}


@PG_ONLY
def test_appender_appends_its_organization_only_and_changes_nothing(roles: Cluster) -> None:
    with al.open_store(scoped_url(roles.appender_url, ORG)) as appender:
        [added] = appender.append(make_entry())
        assert (added.organization_id, added.seq) == (ORG, 3)  # chained on the visible head
        with pytest.raises(StoreError, match="row-level security"):
            appender.append(make_entry(organization_id=ORG2))
    with (
        al.open_store(roles.appender_url) as unscoped,
        pytest.raises(StoreError, match="row-level security"),
    ):
        unscoped.append(make_entry())  # fail closed: no scope, no append
    url = scoped_url(roles.appender_url, ORG)
    denied = "permission denied for table audit_entries"
    _refused(url, "UPDATE audit_entries SET action = 'forged'", denied)
    _refused(url, "DELETE FROM audit_entries", denied)
    _refused(url, "DELETE FROM checkpoints", "permission denied for table checkpoints")
    _refused(url, "DROP TRIGGER audit_entries_no_delete ON audit_entries", "must be owner")
    with al.open_store(roles.owner_url) as owner:
        assert owner.count(organization_id=ORG) == 3
        assert owner.count(organization_id=ORG2) == 1
        assert al.verify(owner).ok


@PG_ONLY
def test_admin_sees_every_organization_but_the_log_stays_append_only(roles: Cluster) -> None:
    assert _count(roles.admin_url) == 3
    engine = create_engine(roles.admin_url)
    try:
        with pytest.raises(ProgrammingError) as info, engine.begin() as conn:
            conn.execute(text("UPDATE audit_entries SET action = 'forged'"))
    finally:
        engine.dispose()
    assert "append-only" in str(info.value.orig)  # the trigger, not a missing grant


@PG_ONLY
def test_retention_runs_as_admin_and_appender_cannot_authorize_removal(
    roles: Cluster, tmp_path: Path
) -> None:
    with al.open_store(roles.owner_url) as owner:
        append_aged(owner)  # ORG: + 50 entries, 40 of them older than 30 days
    # the appender cannot open the retention path: no INSERT on retention_authorizations
    _refused(
        scoped_url(roles.appender_url, ORG),
        f"INSERT INTO retention_authorizations VALUES ('{ORG}', 10, 'x')",
        "permission denied for table retention_authorizations",
    )
    with al.open_store(roles.admin_url) as admin:
        set_plan(admin, ORG, "starter")
        [done] = apply_retention(admin, tmp_path, now=NOW)
        assert (done.organization_id, done.first_seq) == (ORG, 1)
        assert done.rows > 0
        assert admin.count(organization_id=ORG2) == 51  # no plan: untouched
        assert al.verify(admin).ok


def _removal(org: str, first: int, through: int, last_hash: str, rows: int) -> str:
    return (
        f"SELECT auditlens_remove_archived('{org}', {first}, {through}, '{last_hash}', {rows}, "
        f"'/archive/manifest.json', '{'0' * 64}', 0)"
    )


@PG_ONLY
def test_retention_role_removes_only_through_the_archive_first_function(
    roles: Cluster, tmp_path: Path
) -> None:
    with al.open_store(roles.owner_url) as owner:
        append_aged(owner)  # ORG: + 50 entries, 40 of them older than 30 days
        set_plan(owner, ORG, "starter")
        with owner.engine.connect() as conn:
            rows = dict(
                conn.execute(
                    text("SELECT seq, entry_hash FROM audit_entries WHERE organization_id = :o"),
                    {"o": ORG},
                ).all()
            )
    url, last = roles.retention_url, max(rows)
    denied = "permission denied for table"
    _refused(url, f"DELETE FROM audit_entries WHERE organization_id = '{ORG}'", denied)
    _refused(url, "UPDATE audit_entries SET action = 'forged'", denied)
    _refused(url, "TRUNCATE audit_entries", denied)
    _refused(url, f"INSERT INTO retention_authorizations VALUES ('{ORG}', 10, 'x')", denied)
    _refused(
        url,
        "INSERT INTO retention_log (organization_id, first_seq, through_seq, last_entry_hash, "
        f"rows, manifest, manifest_sha256, applied_ms) VALUES ('{ORG}', 1, 5, 'x', 5, 'm', "
        "'x', 0)",
        denied,
    )
    _refused(url, "DELETE FROM retention_log", denied)
    # the function: only a range that continues the archive, matches it, and is old enough
    _refused(url, _removal(ORG, 2, 5, rows[5], 4), "must continue the archived prefix at seq 1")
    _refused(url, _removal(ORG, 1, 5, "f" * 64, 5), "do not match the archive")
    _refused(url, _removal(ORG, 1, 5, rows[5], 4), "do not match the archive")
    _refused(url, _removal(ORG, 1, last, rows[last], last), "newer than the starter plan keeps")
    _refused(url, _removal(ORG2, 1, 5, rows[5], 5), "has no plan")
    assert _count(roles.owner_url) == 104  # nothing removed (ORG's plan change is an entry)
    # the whole retention path runs as the retention role: archive, check, remove, record
    with al.open_store(url) as retention:
        [done] = apply_retention(retention, tmp_path, organization_id=ORG, now=NOW)
    assert (done.organization_id, done.first_seq) == (ORG, 1) and done.rows > 0
    with al.open_store(roles.owner_url) as owner:
        assert owner.count(organization_id=ORG) < 53
        assert owner.count(organization_id=ORG2) == 51  # untouched
        report = al.verify(owner)
        assert report.ok and report.archived == done.rows


@PG_ONLY
def test_cli_db_roles(store_url: str) -> None:
    prefix = f"alt_{uuid.uuid4().hex[:10]}"
    names = role_names(prefix)
    try:
        result = CliRunner().invoke(app, ["db", "roles", "--db", store_url, "--prefix", prefix])
        assert result.exit_code == 0, result.output
        assert f"roles {names[0]}, {names[1]}, {names[2]}" in result.output
        assert retention_role_name(prefix) in result.output
    finally:
        with psycopg.connect(_libpq(store_url), autocommit=True) as conn:
            _drop_roles(conn, [*names, retention_role_name(prefix)])


def test_invalid_prefix_and_organization_are_refused() -> None:
    with pytest.raises(ConfigError, match="invalid role prefix"):
        role_names('x"; DROP TABLE audit_entries; --')
    with pytest.raises(ConfigError, match="invalid organization id"):
        scoped_url("postgresql+psycopg://u@h/db", "a -c search_path=evil")


def test_sqlite_has_no_roles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with al.open_store(str(tmp_path / "audit.db")) as store:
        with pytest.raises(ConfigError, match="SQLite has no roles"):
            create_roles(store)
        with pytest.raises(ConfigError, match="needs PostgreSQL"):
            store.scoped(ORG)
    monkeypatch.setenv("AUDITLENS_ORG", ORG)  # an isolation setting is never ignored silently
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        al.open_store(str(tmp_path / "audit.db"))
