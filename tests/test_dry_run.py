"""`run --dry-run`: the full diff, printed; nothing written at all; exit 0 / 4 / 3."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from e2e import authz_sync, command_env, ledger, read_tables
from sqlalchemy import create_engine, inspect, select

from sync.sql import schema

SIZE = {"users": 250, "groups": 20, "memberships": 500, "roles": 6, "permissions": 12}
pytestmark = pytest.mark.tenant(**SIZE)


def everything(database_url) -> dict:
    """Every row of every table, the ledger, history and change log included."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            names = [n for n in inspect(connection).get_table_names() if n.startswith("authz_")]
            return {
                name: sorted(map(repr, connection.execute(select(schema.metadata.tables[name]))))
                for name in names
            }
    finally:
        engine.dispose()


def file_digest(database_url) -> str | None:
    if database_url.get_backend_name() != "sqlite":
        return None
    path = Path(database_url.database)
    data = b"".join(
        p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")) if "-shm" not in p.name
    )
    return hashlib.sha256(data).hexdigest()


def test_dry_run_prints_the_diff_and_writes_nothing(sim, database_url):
    env = command_env(sim, database_url)
    assert authz_sync("run", env=env).exit_code == 0
    unchanged = authz_sync("run", "--dry-run", env=env)
    assert unchanged.exit_code == 0, unchanged.output
    assert "dry run: no changes" in unchanged.stdout

    tenant = sim.tenant
    tenant.groups[3]["description"] = "Dry 🏜️"
    removed = tenant.groups.pop(15)
    tenant.add_user({"user_id": "auth0|dry-new", "name": "Dry New", "email": "d@x.io"})
    before, digest = everything(database_url), file_digest(database_url)

    pending = authz_sync("run", "--dry-run", env=env)
    assert pending.exit_code == 4, pending.output
    out = pending.stdout
    assert "authz_groups: 0 to insert, 1 to update, 1 to delete" in out
    assert "authz_users: 1 to insert, 0 to update, 0 to delete" in out
    assert "  + auth0|dry-new" in out
    assert f"  - {removed['_id']}" in out
    assert f"  ~ {tenant.groups[3]['_id']}: description: " in out and "'Dry 🏜️'" in out
    assert "authz_effective_group_members:" in out
    assert "dry run: changes pending" in out and "nothing was written" in out

    assert everything(database_url) == before  # not even a ledger row
    assert file_digest(database_url) == digest  # SQLite: the file, byte for byte
    assert len(ledger(database_url)) == 1


def test_dry_run_on_an_empty_database_plans_everything_and_creates_nothing(sim, sqlite_url):
    result = authz_sync("run", "--dry-run", env=command_env(sim, sqlite_url))
    assert result.exit_code == 4, result.output
    assert "authz_users: 250 to insert" in result.stdout
    assert not Path(sqlite_url.database).exists()


def test_dry_run_reports_that_the_safeguard_would_stop_a_run(sim, database_url):
    env = command_env(sim, database_url)
    assert authz_sync("run", env=env).exit_code == 0
    before = read_tables(database_url)
    sim.add_fault(r"^/api/groups$", "status", status=200, body={"groups": [], "total": 0}, times=2)
    result = authz_sync("run", "--dry-run", env=env)
    assert result.exit_code == 3, result.output
    assert "a run would stop: refusing to delete" in result.stderr
    assert "authz_groups: 0 to insert, 0 to update, 20 to delete" in result.stdout
    assert authz_sync("run", "--dry-run", "--allow-deletes", env=env).exit_code == 4
    assert read_tables(database_url) == before
