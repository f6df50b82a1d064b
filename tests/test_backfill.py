"""`backfill --user-details`: every profile stored; a killed backfill resumes without
fetching again what it had committed."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest
from e2e import authz_sync, command_env
from sqlalchemy import create_engine, select

from sync.runner.backfill import CHECKPOINT
from sync.sql import schema

pytestmark = pytest.mark.tenant(users=260, groups=10, memberships=300)


def profiles(database_url) -> dict[str, dict]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(schema.user_details.c.user_id, schema.user_details.c.profile)
        )
        found = {user_id: profile for user_id, profile in rows}
    engine.dispose()
    return found


def profile_requests(sim) -> int:
    return len(sim.api_requests(r"^/api/users/[^/]+$"))


def test_a_killed_backfill_resumes_where_it_stopped(sim, database_url):
    env = command_env(sim, database_url)
    assert authz_sync("run", env=env).exit_code == 0
    sim.tenant.delete_user(next(iter(sim.tenant.users)))  # gone since the sync: skipped
    sim.latency = 0.01
    process = subprocess.Popen(["authz-sync", "backfill", "--user-details"], env=env)
    deadline = time.monotonic() + 60
    while profile_requests(sim) < 2 * CHECKPOINT + 10:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    committed = profiles(database_url)
    assert CHECKPOINT <= len(committed) < 260

    sim.latency = 0
    resumed = authz_sync("backfill", "--user-details", env=env)
    assert resumed.exit_code == 0, resumed.output
    assert re.fullmatch(
        r"backfill 1 resumed and finished: \d+ profiles fetched this time, 1 user gone since "
        r"the last sync\n",
        resumed.stdout,
    )
    stored = profiles(database_url)
    assert set(stored) == set(sim.tenant.users)
    some = next(iter(sim.tenant.users))
    assert (
        stored[some]["user_id"] == some and stored[some]["name"] == sim.tenant.users[some]["name"]
    )
    # Only the chunk in flight when it was killed was fetched twice.
    assert profile_requests(sim) <= 260 + CHECKPOINT


def test_backfill_needs_a_synced_database_and_an_option(sim, sqlite_url):
    env = command_env(sim, sqlite_url)
    assert authz_sync("backfill", env=env).exit_code == 2
    result = authz_sync("backfill", "--user-details", env=env)
    assert result.exit_code == 78 and "run `authz-sync run`" in result.stderr
