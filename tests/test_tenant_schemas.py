"""Several tenants, one PostgreSQL database: `database.schema` puts every table of a tenant, and
Alembic's version table, in that tenant's schema.

Two simulated tenants are synced by the installed command into two schemas of one database;
each schema must equal its own tenant's ground truth, `public` must stay empty, each job's run
lock covers its schema only, and the commands that read (status, graph, db current, dry runs)
read the configured schema and never create it. Tables are read back through the search_path,
not through authz-sync's own schema_translate_map, so a table written elsewhere is not found.
"""

from __future__ import annotations

import json
import uuid

import pytest
from e2e import assert_synced, authz_sync, command_env, finish, ledger, read_engine, start
from sqlalchemy import create_engine, func, insert, inspect, select, text

from sync.simulator import Simulator, generate_tenant
from sync.sql import lock, revisions, schema
from sync.sql.engine import open_engine

# Tenant A is past the 1000-user cap (read in created_at windows, staged with COPY); B is small.
SIZE_A = {"users": 1100, "groups": 30, "memberships": 1500, "roles": 8, "permissions": 20}
SIZE_B = {"users": 250, "groups": 12, "memberships": 400, "roles": 5, "permissions": 10}


@pytest.fixture
def sim_a():
    with Simulator(generate_tenant(**SIZE_A, seed=1)) as simulator:
        yield simulator


@pytest.fixture
def sim_b():
    with Simulator(generate_tenant(**SIZE_B, seed=2)) as simulator:
        yield simulator


def tenant_env(sim: Simulator, url, schema: str) -> dict[str, str]:
    return command_env(sim, url, AUTHZ_SYNC_DATABASE_SCHEMA=schema)


def relations(url, schema: str) -> list[str]:
    """Every relation (table, sequence, index, view) in `schema`."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :schema ORDER BY c.relname"
            )
            return list(connection.scalars(query, {"schema": schema}))
    finally:
        engine.dispose()


def schemas(url) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_schema_names())
    finally:
        engine.dispose()


def revision_in(url, schema: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = text(f'SELECT version_num FROM "{schema}".alembic_version')
            return connection.scalar(query)
    finally:
        engine.dispose()


def test_two_tenants_sync_into_two_schemas_of_one_database(sim_a, sim_b, postgresql_url):
    env_a = tenant_env(sim_a, postgresql_url, "tenant_a")
    env_b = tenant_env(sim_b, postgresql_url, "tenant_b")
    for env in (env_a, env_b):
        result = authz_sync("run", env=env)
        assert result.exit_code == 0, result.output
    assert_synced(postgresql_url, sim_a.tenant, "tenant_a")
    assert_synced(postgresql_url, sim_b.tenant, "tenant_b")

    head = revisions.head_revision()
    assert (
        revision_in(postgresql_url, "tenant_a") == revision_in(postgresql_url, "tenant_b") == head
    )
    assert relations(postgresql_url, "public") == []  # no table, sequence or version table
    expected = {*schema.metadata.tables, "alembic_version"}
    for name in ("tenant_a", "tenant_b"):
        engine = create_engine(postgresql_url)
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names(schema=name)) == expected
        engine.dispose()

    # A second run of A compares with A's own rows: nothing to do. Reading B's would not be.
    again = authz_sync("run", env=env_a)
    assert again.exit_code == 0, again.output
    assert "0 inserted, 0 updated, 0 deleted" in again.stdout
    assert authz_sync("run", "--dry-run", env=env_b).exit_code == 0  # no changes pending
    assert [run["source"] for run in ledger(postgresql_url, "tenant_a")] == [sim_a.api_url] * 2
    assert [run["source"] for run in ledger(postgresql_url, "tenant_b")] == [sim_b.api_url]

    # The commands that read show each tenant its own schema.
    for env, sim, runs in ((env_a, sim_a, 2), (env_b, sim_b, 1)):
        status = authz_sync("status", "--json", env=env)
        assert status.exit_code == 0, status.output
        assert [run["source"] for run in json.loads(status.stdout)] == [sim.api_url] * runs
        current = authz_sync("db", "current", env=env).stdout
        assert f"database revision: {head} (schema {env['AUTHZ_SYNC_DATABASE_SCHEMA']})" in current
    graph_a, graph_b = (authz_sync("graph", env=env) for env in (env_a, env_b))
    assert graph_a.exit_code == graph_b.exit_code == 0
    groups_a = {group["_id"] for group in sim_a.tenant.groups}
    groups_b = {group["_id"] for group in sim_b.tenant.groups}
    assert all(f'"{group_id}"' in graph_a.stdout for group_id in groups_a)
    assert not any(group_id in graph_a.stdout for group_id in groups_b)
    assert all(f'"{group_id}"' in graph_b.stdout for group_id in groups_b)


def test_the_run_lock_covers_one_schema_only(sim_a, sim_b, postgresql_url):
    """A job holding tenant_a's lock blocks tenant_a's next run (75), never tenant_b's."""
    holder = open_engine(postgresql_url, schema="tenant_a")
    try:
        with lock.run_lock(holder, "a test holding tenant_a"):
            other = authz_sync("run", env=tenant_env(sim_b, postgresql_url, "tenant_b"))
            same = authz_sync("run", env=tenant_env(sim_a, postgresql_url, "tenant_a"))
    finally:
        holder.dispose()
    assert other.exit_code == 0, other.output
    assert same.exit_code == 75, same.output
    assert "another authz-sync run is using" in same.stderr and "(schema tenant_a)" in same.stderr
    assert not sim_a.api_requests()  # the refused run did nothing
    after = authz_sync("run", env=tenant_env(sim_a, postgresql_url, "tenant_a"))
    assert after.exit_code == 0, after.output


def test_public_and_no_schema_share_one_lock_other_schemas_do_not(postgresql_url):
    engines = {
        name: open_engine(postgresql_url, schema=name)
        for name in (None, "public", "tenant_a", "tenant_b")
    }
    try:
        with lock.run_lock(engines[None], "default"), lock.run_lock(engines["tenant_a"], "a"):
            with pytest.raises(lock.RunLockedError), lock.run_lock(engines["public"], "public"):
                pass
            with pytest.raises(lock.RunLockedError), lock.run_lock(engines["tenant_a"], "a"):
                pass
            with lock.run_lock(engines["tenant_b"], "b"):
                pass
    finally:
        for engine in engines.values():
            engine.dispose()


def test_two_tenants_run_at_the_same_moment_and_a_second_job_per_tenant_is_refused(
    sim_a, sim_b, postgresql_url
):
    env_a = tenant_env(sim_a, postgresql_url, "tenant_a")
    env_b = tenant_env(sim_b, postgresql_url, "tenant_b")
    # The schemas first, so that the three jobs below race for locks, not for CREATE SCHEMA.
    for env in (env_a, env_b):
        assert authz_sync("db", "upgrade", env=env).exit_code == 0
    sim_a.latency = sim_b.latency = 0.1  # every run reads for well over a second
    processes = [start("run", env=env) for env in (env_a, env_a, env_b)]
    first_a, second_a, only_b = (finish(process) for process in processes)

    assert sorted([first_a.exit_code, second_a.exit_code]) == [0, 75], [
        first_a.output,
        second_a.output,
    ]
    assert only_b.exit_code == 0, only_b.output
    (run_a,) = ledger(postgresql_url, "tenant_a")  # the refused job left no row
    (run_b,) = ledger(postgresql_url, "tenant_b")
    # Both ran at once, each under its own schema's lock.
    assert run_a["started_at"] < run_b["finished_at"] and run_b["started_at"] < run_a["finished_at"]
    assert_synced(postgresql_url, sim_a.tenant, "tenant_a")
    assert_synced(postgresql_url, sim_b.tenant, "tenant_b")


def test_reading_commands_never_create_the_schema_upgrade_and_downgrade_do(sim_b, postgresql_url):
    env = tenant_env(sim_b, postgresql_url, "tenant_new")
    for command in (["status"], ["graph"]):
        refused = authz_sync(*command, env=env)
        assert refused.exit_code == 78, refused.output
        assert "(schema tenant_new) has no authz-sync tables yet" in refused.stderr
        assert "run `authz-sync db upgrade`" in refused.stderr
    assert authz_sync("run", "--dry-run", env=env).exit_code == 4  # all pending, nothing written
    assert (
        "database revision: none (schema tenant_new)" in authz_sync("db", "current", env=env).stdout
    )
    checked = authz_sync("check", env=env)
    assert checked.exit_code == 0, checked.output
    assert "(schema tenant_new) is empty" in checked.stdout
    assert "tenant_new" not in schemas(postgresql_url)

    upgraded = authz_sync("db", "upgrade", env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"(schema tenant_new) is at revision {revisions.head_revision()}" in upgraded.stdout
    assert revision_in(postgresql_url, "tenant_new") == revisions.head_revision()
    assert relations(postgresql_url, "public") == []
    assert authz_sync("db", "downgrade", "base", env=env).exit_code == 0
    left = relations(postgresql_url, "tenant_new")
    assert "alembic_version" in left and not [name for name in left if "authz" in name]


def test_migrations_alter_the_tenants_tables_only(postgresql_url):
    """0002 alters authz_sync_runs and copies links with text SQL: in the tenant's schema, even
    with a same-named table at an older revision in public."""
    public = open_engine(postgresql_url)
    tenant = open_engine(postgresql_url, schema="tenant_a")
    try:
        revisions.upgrade(public, "0001")
        revisions.upgrade(tenant, "0001")
        with tenant.begin() as connection:
            row = {"group_id": "g1", "user_id": "auth0|1", "is_orphan": False}
            connection.execute(insert(schema.group_members), [row])
        revisions.upgrade(tenant)
        with tenant.connect() as connection:
            history = connection.execute(select(schema.group_members_history)).mappings().all()
            assert revisions.current_revision(connection) == revisions.head_revision()
        with public.connect() as connection:
            assert revisions.current_revision(connection) == "0001"
            columns = {c["name"] for c in inspect(connection).get_columns("authz_sync_runs")}
    finally:
        public.dispose()
        tenant.dispose()
    assert [(h["group_id"], h["user_id"], h["valid_from_run_id"]) for h in history] == [
        ("g1", "auth0|1", 0)
    ]
    assert "api_retries" not in columns  # public's table was not altered
    assert "authz_group_members_history" not in relations(postgresql_url, "public")


def test_a_user_without_create_on_the_database_syncs_into_a_schema_made_for_it(
    sim_b, postgresql_url
):
    """A DBA creates the schema for a less trusted role: run and backfill must not ask to
    create it (CREATE SCHEMA IF NOT EXISTS alone needs CREATE on the database)."""
    role = f"authz_tenant_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgresql_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
        connection.execute(text(f"CREATE SCHEMA tenant_b AUTHORIZATION {role}"))
        connection.execute(
            text(f'REVOKE CREATE ON DATABASE "{postgresql_url.database}" FROM PUBLIC')
        )
    try:
        as_role = postgresql_url.set(username=role, password=None)
        result = authz_sync("run", env=tenant_env(sim_b, as_role, "tenant_b"))
        assert result.exit_code == 0, result.output
        assert_synced(postgresql_url, sim_b.tenant, "tenant_b")
        backfill = authz_sync(
            "backfill", "--user-details", env=tenant_env(sim_b, as_role, "tenant_b")
        )
        assert backfill.exit_code == 0, backfill.output
        engine = read_engine(postgresql_url, "tenant_b")
        with engine.connect() as connection:
            details = connection.scalar(select(func.count()).select_from(schema.user_details))
        engine.dispose()
        assert details == len(sim_b.tenant.users)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP OWNED BY {role} CASCADE"))
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_a_schema_with_sqlite_is_a_config_error(sim_b, sqlite_url):
    result = authz_sync("run", env=tenant_env(sim_b, sqlite_url, "tenant_b"))
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "Error: database.schema is for PostgreSQL only: SQLite has no schemas"
    )
    assert not sim_b.requests
    status = authz_sync("status", env=tenant_env(sim_b, sqlite_url, "tenant_b"))
    assert status.exit_code == 2 and "for PostgreSQL only" in status.stderr
