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
    backfill_says(
        env,
        r"backfill 1 resumed and finished: \d+ profiles fetched this time, 1 user gone since "
        r"the last sync\n",
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


def backfill_says(env: dict[str, str], summary: str) -> None:
    """`backfill --user-details` succeeds with exactly this summary (a regular expression)."""
    done = authz_sync("backfill", "--user-details", env=env)
    assert done.exit_code == 0, done.output
    assert re.fullmatch(summary, done.stdout), done.stdout


GRANTED = pytest.mark.simulator(management_scopes=("read:users",))
FAST_POLLS = {"AUTHZ_SYNC_USERS_EXPORT_POLL_INTERVAL": "0.1"}


def management_requests(sim) -> int:
    return len(sim.api_requests(r"^/api/v2/"))


@GRANTED
def test_backfill_through_the_export_job_gives_the_per_user_profiles(sim, database_url):
    env = command_env(sim, database_url, **FAST_POLLS)
    assert authz_sync("run", env=env).exit_code == 0
    sim.tenant.delete_user(next(iter(sim.tenant.users)))  # gone since the sync: skipped
    before = management_requests(sim)
    backfill_says(
        env,
        r"backfill 1 finished: 259 profiles fetched, 1 user gone since the last sync; "
        r"\d API requests \(export job job_\w+\)\n",
    )
    assert profile_requests(sim) == 0 and management_requests(sim) - before <= 10
    from_export = profiles(database_url)
    assert set(from_export) == set(sim.tenant.users)

    per_user_env = env | {"AUTHZ_SYNC_USERS_SOURCE": "extension"}
    again = authz_sync("backfill", "--user-details", "--restart", env=per_user_env)
    assert again.exit_code == 0, again.output
    assert profile_requests(sim) == 260  # the deleted user too: a 404
    per_user = profiles(database_url)
    for user_id, profile in from_export.items():
        shared = set(profile) & set(per_user[user_id])
        assert {"user_id", "identities"} <= shared
        assert {key: profile[key] for key in shared} == {k: per_user[user_id][k] for k in shared}
    assert sum("email" in profile for profile in from_export.values()) > 200


@GRANTED
def test_a_backfill_resumed_through_the_export_job_stores_only_what_is_missing(sim, sqlite_url):
    env = command_env(sim, sqlite_url, **FAST_POLLS)
    assert authz_sync("run", env=env).exit_code == 0
    sim.latency = 0.01
    per_user = env | {"AUTHZ_SYNC_USERS_SOURCE": "extension"}
    process = subprocess.Popen(["authz-sync", "backfill", "--user-details"], env=per_user)
    deadline = time.monotonic() + 60
    while profile_requests(sim) < CHECKPOINT + 10:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    committed = len(profiles(sqlite_url))
    assert CHECKPOINT <= committed < 260
    sim.latency = 0
    resumed = authz_sync("backfill", "--user-details", env=env)
    assert resumed.exit_code == 0, resumed.output
    assert f"{260 - committed} profiles fetched this time" in resumed.stdout
    assert set(profiles(sqlite_url)) == set(sim.tenant.users)


def test_backfill_with_source_export_and_no_grant_is_refused(sim, sqlite_url):
    env = command_env(sim, sqlite_url, AUTHZ_SYNC_USERS_SOURCE="export")
    assert authz_sync("run", env=env | {"AUTHZ_SYNC_USERS_SOURCE": "auto"}).exit_code == 0
    refused = authz_sync("backfill", "--user-details", env=env)
    assert refused.exit_code == 77, refused.output
    assert "read:users" in refused.stderr and profile_requests(sim) == 0


@GRANTED
def test_a_failing_export_job_falls_back_to_one_request_per_user(sim, sqlite_url):
    env = command_env(sim, sqlite_url, **FAST_POLLS)
    assert authz_sync("run", env=env).exit_code == 0
    sim.jobs.fail_next(2)
    done = authz_sync("backfill", "--user-details", env=env)
    assert done.exit_code == 0, done.output
    assert "the export job failed, so" in done.stdout and "WARNING" in done.stderr
    assert profile_requests(sim) == 260 and len(profiles(sqlite_url)) == 260
    sim.jobs.fail_next(2)
    off = env | {"AUTHZ_SYNC_USERS_EXPORT_FALLBACK": "false"}
    stopped = authz_sync("backfill", "--user-details", "--restart", env=off)
    assert stopped.exit_code == 69 and "users.export_fallback is off" in stopped.stderr
