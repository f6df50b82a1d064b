"""Runs that read users through Auth0's bulk export job (users.source), against the simulator
over real sockets on SQLite, PostgreSQL and MariaDB: the same rows as the windows, the choice
of `auto`, the cross-check against the extension's total, the fallback, no credential on the
download."""

from __future__ import annotations

import json

import pytest
from e2e import assert_synced, authz_sync, command_env, ledger, read_tables

from sync.errors import EXIT_DATA, EXIT_NOPERM, EXIT_UNAVAILABLE

# Past the 1000-user cap, so the windows path has to slice, and the export is one file.
pytestmark = pytest.mark.tenant(users=3000, groups=150, memberships=6000, roles=12, permissions=30)
GRANTED = pytest.mark.simulator(management_scopes=("read:users",))
FAST_POLLS = {"AUTHZ_SYNC_USERS_EXPORT_POLL_INTERVAL": "0.1"}
NOTHING_CHANGED = "0 inserted, 0 updated, 0 deleted"


def env_for(sim, database_url, source: str, **extra: str) -> dict[str, str]:
    return command_env(sim, database_url, AUTHZ_SYNC_USERS_SOURCE=source, **FAST_POLLS, **extra)


def management_requests(sim) -> int:
    return len(sim.api_requests(r"^/api/v2/"))


@GRANTED
def test_export_run_equals_the_windows_run_and_switching_writes_nothing(sim, tenant, database_url):
    exported = authz_sync("run", env=env_for(sim, database_url, "export"))
    assert exported.exit_code == 0, exported.output
    assert_synced(database_url, tenant)
    # Users in a handful of requests: a create, a few polls; one /api/users for the total.
    assert management_requests(sim) <= 10
    assert len(sim.api_requests(r"^/api/users$")) == 1
    assert sim.storage.requests and not any(r.authorization for r in sim.storage.requests)
    source = ledger(database_url)[-1]["source"]
    assert source.startswith(sim.api_url) and "users: export job job_" in source
    after_export = read_tables(database_url)

    windows = authz_sync("run", "--compare-all", env=env_for(sim, database_url, "extension"))
    assert windows.exit_code == 0, windows.output
    assert NOTHING_CHANGED in windows.stdout  # every table compared: the same rows
    assert ledger(database_url)[-1]["source"] == sim.api_url  # the windows: the plain label
    back = authz_sync("run", "--compare-all", env=env_for(sim, database_url, "export"))
    assert back.exit_code == 0 and NOTHING_CHANGED in back.stdout, back.output
    assert read_tables(database_url) == after_export


@GRANTED
def test_auto_takes_the_export_job_when_the_grant_is_there(sim, tenant, sqlite_url):
    done = authz_sync("run", "--json", env=env_for(sim, sqlite_url, "auto"))
    assert done.exit_code == 0, done.output
    assert '"users_source": "users: export job job_' in done.stdout
    assert management_requests(sim) > 0
    assert_synced(sqlite_url, tenant)
    status = authz_sync("status", "--json", env=env_for(sim, sqlite_url, "auto"))
    assert json.loads(status.stdout)[0]["source"].endswith(f"(users: export job {sim_job(sim)})")


def sim_job(sim) -> str:
    (job_id,) = sim.jobs.jobs
    return job_id


def test_auto_reads_the_windows_without_a_grant_and_says_why(sim, tenant, sqlite_url):
    done = authz_sync("-v", "run", env=env_for(sim, sqlite_url, "auto"))
    assert done.exit_code == 0, done.output
    assert "users.source = auto" in done.stderr and "no grant on the Management API" in done.stderr
    assert management_requests(sim) == 0  # only the token endpoint was asked
    assert ledger(sqlite_url)[-1]["source"] == sim.api_url  # the windows: the plain label
    assert_synced(sqlite_url, tenant)


def test_export_without_a_grant_is_refused_with_the_fix(sim, sqlite_url):
    done = authz_sync("run", env=env_for(sim, sqlite_url, "export"))
    assert done.exit_code == EXIT_NOPERM, done.output
    assert "Management API" in done.stderr and "read:users" in done.stderr
    assert read_tables(sqlite_url)["authz_users"] == []


@GRANTED
def test_an_export_short_by_more_than_the_tolerance_fails_and_writes_nothing(sim, database_url):
    sim.jobs.leave_out = 100  # 3000 users: the tolerance is max(10, 0.5 % = 15)
    done = authz_sync("run", env=env_for(sim, database_url, "export"))
    assert done.exit_code == EXIT_DATA, done.output
    assert "the export job gave 2900 users, the extension counts 3000" in done.stderr
    assert "users.export_tolerance" in done.stderr
    assert read_tables(database_url)["authz_users"] == []
    assert ledger(database_url)[-1]["status"] == "failed"


@GRANTED
def test_a_small_difference_is_a_warning(sim, sqlite_url):
    sim.jobs.leave_out = 5
    done = authz_sync("run", "--json", env=env_for(sim, sqlite_url, "export"))
    assert done.exit_code == 0, done.output
    assert "a difference of 5, within the tolerance of 15" in done.stdout
    assert len(read_tables(sqlite_url)["authz_users"]) == 2995


@GRANTED
def test_a_job_failing_twice_falls_back_to_the_windows(sim, tenant, database_url, tmp_path):
    sim.jobs.fail_next(2)
    metrics = tmp_path / "authz.prom"
    done = authz_sync(
        "run", "--metrics-file", str(metrics), env=env_for(sim, database_url, "export")
    )
    assert done.exit_code == 0, done.output
    assert "export job failed" in done.stderr and "through the extension instead" in done.stderr
    assert_synced(database_url, tenant)
    run = ledger(database_url)[-1]
    assert "after the export job failed" in run["source"]
    assert any("export job failed" in warning for warning in run["warnings"])
    assert 'authz_sync_last_run_users_export_fallback{source="export"} 1.0' in metrics.read_text()


@GRANTED
def test_with_the_fallback_off_a_failing_job_stops_the_run(sim, database_url):
    sim.jobs.fail_next(2)
    env = env_for(sim, database_url, "export", AUTHZ_SYNC_USERS_EXPORT_FALLBACK="false")
    done = authz_sync("run", env=env)
    assert done.exit_code == EXIT_UNAVAILABLE, done.output
    assert "users.export_fallback is off" in done.stderr
    assert read_tables(database_url)["authz_users"] == []
    assert len(sim.api_requests(r"^/api/users$")) == 0  # no window was read
