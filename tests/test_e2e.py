"""The real `authz-sync run` against the simulator over HTTP, on SQLite, PostgreSQL and MariaDB:
the database must equal the simulator's ground truth, and bad setups must leave it untouched."""

from __future__ import annotations

import os

import pytest
from e2e import assert_synced, authz_sync, command_env, ledger, read_tables
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sync.simulator import ground_truth
from sync.sql import revisions

# The size the issue asks for: past the 1000-user cap, so slicing is exercised.
SIZE = {"users": 3000, "groups": 150, "memberships": 6000, "roles": 12, "permissions": 30}
pytestmark = pytest.mark.tenant(**SIZE)


def test_run_copies_the_tenant_exactly_and_a_rerun_changes_nothing(sim, tenant, database_url):
    env = command_env(sim, database_url)
    first = authz_sync("run", env=env)
    assert first.exit_code == 0, first.output
    assert first.stderr == ""
    assert "3000 users, 150 groups" in first.stdout
    assert_synced(database_url, tenant)
    # Absent JSON values are SQL NULL, not the JSON text 'null'.
    engine = create_engine(database_url)
    with engine.connect() as connection:
        nulls = connection.scalar(
            text("SELECT COUNT(*) FROM authz_users WHERE multifactor IS NULL")
        )
    engine.dispose()
    assert nulls == sum(1 for u in tenant.users.values() if u.get("multifactor") is None) > 0
    # More than 1000 users: the reader had to slice by created_at.
    assert any("created_at" in r.query.get("q", "") for r in sim.api_requests(r"^/api/users$"))
    assert all(r.status == 200 for r in sim.api_requests())

    second = authz_sync("run", env=env)
    assert second.exit_code == 0, second.output
    assert "0 inserted, 0 updated, 0 deleted" in second.stdout
    runs = ledger(database_url)
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"]
    assert runs[0]["rows_inserted"] == sum(len(rows) for rows in ground_truth(tenant).values())
    assert (runs[1]["rows_inserted"], runs[1]["rows_updated"], runs[1]["rows_deleted"]) == (0, 0, 0)
    assert runs[1]["counts"]["authz_users"]["unchanged"] == 3000
    assert runs[1]["warnings"], "dangling references must be reported"


def test_changes_in_the_source_are_inserted_updated_and_deleted(sim, tenant, database_url):
    env = command_env(sim, database_url)
    assert authz_sync("run", env=env).exit_code == 0

    doomed_group = tenant.groups.pop(5)
    tenant.groups[0]["description"] = "Changed 🎉 — now with emoji"
    tenant.groups[1]["members"] = [*tenant.groups[1]["members"], "auth0|brand-new"]
    removed_user = next(iter(tenant.users))
    del tenant.users[removed_user]
    tenant.users["auth0|brand-new"] = {
        "user_id": "auth0|brand-new",
        "name": "Nová Uživatelka 🌱",
        "email": "new@example.com",
        "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0"}],
    }
    tenant.created_at["auth0|brand-new"] = "2026-11-27T10:00:00.000Z"
    tenant.roles[0]["name"] = "Renamed role"

    result = authz_sync("run", env=env)
    assert result.exit_code == 0, result.output
    assert_synced(database_url, tenant)
    counts = ledger(database_url)[-1]["counts"]
    assert counts["authz_groups"]["deleted"] == 1 and counts["authz_groups"]["updated"] == 1
    assert counts["authz_users"]["inserted"] == 1 and counts["authz_users"]["deleted"] == 1
    assert counts["authz_roles"]["updated"] == 1
    assert counts["authz_group_members"]["deleted"] >= len(set(doomed_group["members"]))


def _snapshot_then_fail(sim, database_url, expected_code, message, break_it=None, **env_overrides):
    """Sync once, break something, sync again: one error line, exit code, data untouched."""
    env = command_env(sim, database_url)
    assert authz_sync("run", env=env).exit_code == 0
    before = read_tables(database_url)
    sim.tenant.groups.pop()  # a change that must NOT land
    if break_it:
        break_it()
    result = authz_sync("run", env=env | env_overrides)
    assert result.exit_code == expected_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert "Traceback" not in result.output
    assert read_tables(database_url) == before
    last = ledger(database_url)[-1]
    assert last["status"] == "failed" and last["exit_code"] == expected_code
    assert message in last["error"]
    return result


def test_a_wrong_secret_fails_cleanly_and_never_shows_the_secret(sim, database_url):
    result = _snapshot_then_fail(
        sim,
        database_url,
        77,
        "Auth0 refused the client credentials",
        AUTHZ_SYNC_CLIENT_SECRET="wrong-secret-value-123",
    )
    assert "wrong-secret-value-123" not in result.output
    assert "wrong-secret-value-123" not in str(ledger(database_url))


def test_a_missing_scope_says_which_and_where(sim, database_url):
    def revoke_read_roles():
        sim.scopes = ("read:users", "read:groups", "read:permissions")

    result = _snapshot_then_fail(sim, database_url, 77, "read:roles", revoke_read_roles)
    assert "Machine to Machine Applications" in result.stderr


def test_an_unauthorized_audience_says_what_to_grant(sim, database_url):
    _snapshot_then_fail(
        sim,
        database_url,
        77,
        "not authorized for the API urn:other",
        AUTHZ_SYNC_AUDIENCE="urn:other",
    )


def test_an_unreachable_api_gives_up_with_exit_69(sim, database_url):
    def break_groups():
        sim.add_fault(r"^/api/groups$", "status", status=503, times=None)

    _snapshot_then_fail(
        sim,
        database_url,
        69,
        "/api/groups failed with 503",
        break_groups,
        AUTHZ_SYNC_RETRY_MAX_ATTEMPTS="3",
    )


def test_bad_config_exits_2_before_touching_the_database(sim, sqlite_url):
    env = command_env(sim, sqlite_url, AUTHZ_SYNC_EXTENSION_URL="https://example.com/no-api")
    result = authz_sync("run", env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: extension.url must end in /api")
    assert not sim.requests
    assert not os.path.exists(sqlite_url.database)


def test_a_database_at_an_unknown_revision_is_refused(sim, database_url):
    env = command_env(sim, database_url)
    assert authz_sync("db", "upgrade", env=env).exit_code == 0
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff_future'"))
    engine.dispose()
    result = authz_sync("run", env=env)
    assert result.exit_code == 78
    assert "a newer authz-sync migrated it" in result.stderr
    assert not sim.api_requests()


def test_db_commands_create_report_and_drop_the_schema(sim, database_url):
    env = command_env(sim, database_url)
    head = revisions.head_revision()
    current = authz_sync("db", "current", env=env).stdout
    assert f"database revision: none; needed: {head} (run `authz-sync db upgrade`)" in current
    assert authz_sync("db", "upgrade", env=env).exit_code == 0
    assert "up to date" in authz_sync("db", "current", env=env).stdout
    assert "0001" in authz_sync("db", "history", env=env).stdout
    assert authz_sync("db", "downgrade", "base", env=env).exit_code == 0
    assert "database revision: none" in authz_sync("db", "current", env=env).stdout


def test_a_database_behind_is_refused_until_upgraded(sim, tenant, database_url):
    env = command_env(sim, database_url)
    assert authz_sync("db", "upgrade", "0001", env=env).exit_code == 0
    refused = authz_sync("run", env=env)
    assert refused.exit_code == 78
    assert (
        "is at revision 0001" in refused.stderr and "run `authz-sync db upgrade`" in refused.stderr
    )
    assert not sim.api_requests()
    assert authz_sync("db", "upgrade", env=env).exit_code == 0
    assert authz_sync("run", env=env).exit_code == 0
    assert_synced(database_url, tenant)


def test_an_unreachable_database_exits_74_without_showing_its_password(sim):
    url = make_url("postgresql://authz:db-pass-987@127.0.0.1:1/authz")
    result = authz_sync("run", env=command_env(sim, url))
    assert result.exit_code == 74, result.output
    assert result.stderr.startswith(
        "Error: cannot use the database postgresql+psycopg://authz:***@"
    )
    assert "db-pass-987" not in result.output
    assert not sim.api_requests()
