"""What the ledger (authz_sync_runs) keeps about runs that did not succeed: the retries and
429s of a failed run, and for a run killed with kill -9 its last sign of life."""

from __future__ import annotations

import pytest
from e2e import authz_sync, command_env, ledger

EXIT_UNAVAILABLE = 69


def test_a_failed_run_keeps_its_retries_and_429s(sim, database_url):
    env = command_env(sim, database_url, AUTHZ_SYNC_RETRY_MAX_ATTEMPTS="3")
    sim.add_fault(r"^/api/roles$", "rate_limit", times=2, retry_after=0)
    sim.add_fault(r"^/api/users$", "status", status=503, times=None)
    result = authz_sync("run", env=env)
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    (run,) = ledger(database_url)
    assert run["status"] == "failed"
    assert run["api_rate_limited"] == 2
    assert run["api_retries"] == 2 + 2  # two 429s on roles; attempts 2 and 3 on users
    assert run["api_requests"] == len(sim.api_requests())


def test_a_run_that_died_before_heartbeats_existed_ends_at_a_time_unknown(sim, database_url):
    """A `running` row without a heartbeat (left by a version before schema 0005)."""
    from sqlalchemy import insert

    from sync.sql import revisions, schema
    from sync.sql.engine import open_engine
    from sync.sql.ledger import utcnow

    engine = open_engine(database_url)
    try:
        revisions.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                insert(schema.sync_runs).values(started_at=utcnow(), status="running")
            )
    finally:
        engine.dispose()
    assert authz_sync("run", env=command_env(sim, database_url)).exit_code == 0
    dead, _ = ledger(database_url)
    assert dead["status"] == "abandoned"
    assert dead["finished_at"] is None and dead["duration_seconds"] is None
    assert "at a time unknown (no heartbeat recorded)" in dead["error"]
    status = authz_sync("status", env=command_env(sim, database_url))
    line = next(line for line in status.stdout.splitlines() if "abandoned" in line)
    assert line.split()[4] == "-"  # duration: unknown, not the time until it was found


@pytest.mark.timeout(20)
def test_a_heartbeat_never_waits_for_a_lock(database_url):
    """A lock on the run's row (or on the whole SQLite file) makes a beat give up at once,
    and the pooled connection keeps its own lock wait afterwards."""
    from sqlalchemy import text

    from sync.sql import revisions
    from sync.sql.engine import open_engine
    from sync.sql.ledger import record_heartbeat, start_run

    engine = open_engine(database_url)
    try:
        revisions.upgrade(engine)
        run_id = start_run(engine, "test")
        assert record_heartbeat(engine, run_id)
        with engine.connect() as holder:
            if engine.dialect.name == "sqlite":
                holder.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                holder.execute(
                    text("SELECT run_id FROM authz_sync_runs WHERE run_id = :id FOR UPDATE"),
                    {"id": run_id},
                )
            assert not record_heartbeat(engine, run_id)
            holder.rollback()
        with engine.connect() as connection:
            # Back to the engine's own lock wait (database.lock_timeout, 60 s by default).
            assert connection.exec_driver_sql(LOCK_WAIT[engine.dialect.name]).scalar() in (
                60000,
                "1min",
                60,
            )
    finally:
        engine.dispose()


LOCK_WAIT = {
    "sqlite": "PRAGMA busy_timeout",
    "postgresql": "SHOW lock_timeout",
    "mysql": "SELECT @@SESSION.innodb_lock_wait_timeout",
    "mariadb": "SELECT @@SESSION.innodb_lock_wait_timeout",
}


def test_heartbeats_at_each_phase_and_every_interval_within_one(sqlite_url):
    from sync.runner.heartbeat import Heartbeat
    from sync.sql import revisions
    from sync.sql.engine import open_engine
    from sync.sql.ledger import start_run

    now = [0.0]
    engine = open_engine(sqlite_url)
    try:
        revisions.upgrade(engine)
        heartbeat = Heartbeat(interval=10, clock=lambda: now[0])
        heartbeat.update("groups", 0)  # not armed yet: no ledger row to beat on
        heartbeat.arm(engine, start_run(engine, "test"))
        for second, phase in [(1, "groups"), (2, "roles"), (3, "users"), (9, "users")]:
            now[0] = second
            heartbeat.update(phase, 1)
        assert heartbeat.beats == 3  # groups, roles, users (9 s: within the interval)
        now[0] = 13.5
        heartbeat.update("users", 2)
        assert heartbeat.beats == 4
    finally:
        engine.dispose()
