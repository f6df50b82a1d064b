"""The fault matrix: every failure a nightly run meets, on SQLite, PostgreSQL and MariaDB.

Each scenario first syncs a tenant (yesterday's copy), then changes the tenant (so that a partial
write would show), injects the fault and runs the real command again. The outcome is one of two:
- the run completes and the database equals the simulator's ground truth; or
- the database is exactly yesterday's, the ledger row says failed/aborted with the reason, and
  the exit code is the documented one.
Every byte the command prints, and every table, is searched for the client secret and tokens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
from e2e import Result, assert_synced, authz_sync, command_env, finish, ledger, read_tables, start
from sqlalchemy import create_engine, text

from sync.simulator import Simulator

SECRET = "fault-matrix-client-secret-0451"
SIZE = {"users": 400, "groups": 30, "memberships": 800, "roles": 8, "permissions": 20}
EMPTY_USERS = {"users": [], "start": 0, "limit": 100, "length": 0, "total": 0}
pytestmark = [pytest.mark.tenant(**SIZE), pytest.mark.simulator(client_secret=SECRET)]


class Scenario:
    """Yesterday's sync, a change in the source, then the run under test."""

    def __init__(self, sim: Simulator, database_url, **env: str):
        self.sim, self.url = sim, database_url
        self.env = command_env(sim, database_url, **env)
        self.outputs: list[str] = []
        baseline = self.run()
        assert baseline.exit_code == 0, baseline.output
        self.yesterday = read_tables(database_url)
        self.change_source()

    def change_source(self) -> None:
        tenant = self.sim.tenant
        tenant.groups.pop()
        tenant.groups[0]["description"] = "Changed tonight 🌙"
        tenant.users.pop(next(iter(tenant.users)))

    def run(self, *args: str) -> Result:
        result = authz_sync("run", *args, env=self.env)
        self.outputs.append(result.output)
        return result

    def start(self) -> subprocess.Popen:
        """The run under test, in the background (to signal, block or race it)."""
        return start("run", env=self.env)

    def finish(self, process: subprocess.Popen) -> Result:
        result = finish(process, timeout=60)
        self.outputs.append(result.output)
        return result

    def assert_completed(self, result: Result) -> None:
        assert result.exit_code == 0, result.output
        assert_synced(self.url, self.sim.tenant)
        assert ledger(self.url)[-1]["status"] == "succeeded"
        self.assert_no_secrets()

    def assert_untouched(self, result: Result, exit_code: int, reason: str, status="failed"):
        assert result.exit_code == exit_code, result.output
        assert "Traceback" not in result.output
        assert read_tables(self.url) == self.yesterday
        run = ledger(self.url)[-1]
        assert (run["status"], run["exit_code"]) == (status, exit_code)
        assert reason in run["error"], run["error"]
        assert reason in result.stderr
        self.assert_no_secrets()

    def assert_no_secrets(self) -> None:
        everything = "\n".join(self.outputs) + repr(read_tables(self.url)) + repr(ledger(self.url))
        for secret in [SECRET, *self.sim.issued_tokens()]:
            assert secret not in everything


# --- transient faults: the run completes -----------------------------------------------------

TRANSIENT = {
    "429 with Retry-After": dict(path=r"^/api/users$", kind="rate_limit", times=2),
    "429 with only X-RateLimit-Reset": dict(
        path=r"^/api/groups$", kind="rate_limit", times=2, retry_after_header=False
    ),
    "500": dict(path=r"^/api/roles$", kind="status", status=500, times=2),
    "502": dict(path=r"^/api/users$", kind="status", status=502, times=2, after=1),
    "503": dict(path=r"^/api/permissions$", kind="status", status=503, times=2),
    "504": dict(path=r"^/api/users$", kind="status", status=504, times=1, after=2),
    "read timeout": dict(path=r"^/api/users$", kind="delay", delay=1.5, times=1, after=1),
    "dropped connection": dict(path=r"^/api/groups$", kind="drop", times=2),
    "dropped mid-body": dict(path=r"^/api/users$", kind="truncate", times=2, after=1),
    "invalid JSON": dict(path=r"^/api/roles$", kind="invalid_json", times=1),
    "429 on the token endpoint": dict(
        path=r"^/oauth/token$", kind="rate_limit", times=1, method="POST"
    ),
    "503 on the token endpoint": dict(
        path=r"^/oauth/token$", kind="status", status=503, times=1, method="POST"
    ),
}


@pytest.mark.parametrize("name", TRANSIENT)
def test_transient_faults_are_retried_and_the_run_completes(sim, database_url, name):
    scenario = Scenario(sim, database_url, AUTHZ_SYNC_EXTENSION_READ_TIMEOUT="0.5")
    spec = dict(TRANSIENT[name])
    fault = sim.add_fault(spec.pop("path"), spec.pop("kind"), **spec)
    scenario.assert_completed(scenario.run())
    assert fault.fired == spec.get("times", 1)
    run = ledger(database_url)[-1]  # the ledger counts what happened
    assert run["api_retries"] >= fault.fired and run["duration_seconds"] > 0
    if spec.get("method", "GET") == "GET" and fault.kind == "rate_limit":
        assert run["api_rate_limited"] == fault.fired


def test_a_token_expiring_mid_run_is_refreshed(sim, database_url):
    scenario = Scenario(sim, database_url)
    tokens_before = sim.tokens_issued
    served = []

    def expire_after_two(record):
        served.append(record)
        if len(served) == 2:
            sim.expire_tokens()

    sim.before_response = expire_after_two
    scenario.assert_completed(scenario.run())
    assert sim.tokens_issued == tokens_before + 2


def test_users_moving_between_pages_are_read_exactly_once(sim, database_url):
    scenario = Scenario(sim, database_url)
    tenant = sim.tenant
    pages = []

    def logins_and_signups(record):
        if record.path == "/api/users":
            pages.append(record)
            if len(pages) == 1:  # after the first page: the last user logs in (moves to the
                last = min(tenant.users, key=lambda u: tenant.users[u].get("last_login") or "")
                tenant.login(last)  # front, shifting everyone: a duplicate and a skip)
            if len(pages) == 2:  # total changes between pages: a user signs up
                tenant.add_user(
                    {
                        "user_id": "auth0|signed-up-mid-sync",
                        "name": "Late Comer",
                        "email": "late@example.com",
                        "identities": [{"connection": "Username-Password-Authentication"}],
                    }
                )

    sim.before_response = logins_and_signups
    scenario.assert_completed(scenario.run())


# --- bad data: nothing is written ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "break_it", "message"),
    [
        ("wrong type", lambda t: t.groups[1].update(name=5), "field 'name' must be"),
        ("missing field", lambda t: t.groups[1].pop("name"), "field 'name' is missing"),
        ("non-GUID id", lambda t: t.groups[1].update(_id="group-7"), "'group-7': field '_id'"),
        ("wrong user type", lambda t: _first_user(t).update(logins_count="many"), "logins_count"),
        ("placeholder", lambda t: _first_user(t).update(name="<Error: X>"), "placeholder"),
    ],
)
def test_a_bad_record_fails_the_run_naming_it(sim, database_url, name, break_it, message):
    scenario = Scenario(sim, database_url)
    break_it(sim.tenant)
    scenario.assert_untouched(scenario.run(), 65, message)


def _first_user(tenant):
    return next(iter(tenant.users.values()))


# --- refusals: auth, empty source, persistent failure ----------------------------------------


def test_a_401_right_after_a_refresh_is_fatal(sim, database_url):
    scenario = Scenario(sim, database_url)
    body = {"statusCode": 401, "error": "Unauthorized", "message": "Invalid credentials"}
    sim.add_fault(r"^/api/groups$", "status", status=401, body=body, times=None)
    scenario.assert_untouched(scenario.run(), 77, "refused a fresh token")


def test_insufficient_scope_on_a_route_names_the_scope(sim, database_url):
    scenario = Scenario(sim, database_url)
    body = {"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope"}
    sim.add_fault(r"^/api/permissions$", "status", status=403, body=body, times=None)
    scenario.assert_untouched(scenario.run(), 77, "lacks the scope read:permissions")


def test_a_scope_missing_from_the_grant_stops_before_reading(sim, database_url):
    scenario = Scenario(sim, database_url)
    sim.scopes = ("read:users", "read:groups", "read:roles")
    scenario.assert_untouched(scenario.run(), 77, "lacks the scope read:permissions")


def test_an_api_that_keeps_failing_gives_up(sim, database_url):
    scenario = Scenario(sim, database_url, AUTHZ_SYNC_RETRY_MAX_ATTEMPTS="3")
    sim.add_fault(r"^/api/users$", "status", status=503, times=None, after=1)
    scenario.assert_untouched(scenario.run(), 69, "gave up after 3 tries")


def test_an_empty_group_list_is_refused_unless_allowed(sim, database_url):
    scenario = Scenario(sim, database_url)
    sim.add_fault(r"^/api/groups$", "status", status=200, body={"groups": [], "total": 0}, times=1)
    scenario.assert_untouched(scenario.run(), 3, "the extension answered none at all")

    sim.tenant.groups.clear()  # and if it is true, the operator says so
    scenario.assert_completed(scenario.run("--allow-deletes"))


def test_an_empty_user_page_is_refused(sim, database_url):
    scenario = Scenario(sim, database_url)
    sim.add_fault(r"^/api/users$", "status", status=200, body=EMPTY_USERS, times=None)
    result = scenario.run()
    scenario.assert_untouched(result, 3, "refusing to delete")
    assert "of authz_users" in result.stderr and "--allow-deletes" in result.stderr


def test_too_many_deletes_are_refused_with_a_sample(sim, database_url):
    scenario = Scenario(sim, database_url, AUTHZ_SYNC_SAFEGUARD_MAX_DELETES="5")
    doomed = list(sim.tenant.users)[:20]
    for user_id in doomed:
        sim.tenant.users.pop(user_id)
    result = scenario.run()
    scenario.assert_untouched(result, 3, "more than max_deletes = 5")
    deleted = {row["user_id"] for row in scenario.yesterday["authz_users"]} - set(sim.tenant.users)
    assert f"e.g. {min(deleted)}, " in result.stderr and "and 16 more" in result.stderr


# --- the database fails, signals, kill -9, two runs ------------------------------------------


def _wait_for(condition, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")]
)
def test_a_signal_during_fetch_aborts_cleanly(sim, database_url, sig, code, name):
    scenario = Scenario(sim, database_url)
    sim.latency = 0.3
    pages_before = len(sim.api_requests(r"^/api/users$"))
    process = scenario.start()
    _wait_for(lambda: len(sim.api_requests(r"^/api/users$")) >= pages_before + 2)
    process.send_signal(sig)
    result = scenario.finish(process)
    scenario.assert_untouched(result, code, f"interrupted by {name}", status="aborted")


class TableBlocker:
    """Holds a lock that makes the run's apply phase wait, from another connection."""

    def __init__(self, database_url):
        self.url = database_url
        self.engine = create_engine(database_url)
        self.connection = None

    def hold(self) -> None:
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            import sqlite3

            self.connection = sqlite3.connect(self.url.database, isolation_level=None)
            self.connection.execute("BEGIN IMMEDIATE")  # blocks every writer
            return
        self.connection = self.engine.connect()
        if dialect == "postgresql":
            self.connection.execute(text("LOCK TABLE authz_group_members IN EXCLUSIVE MODE"))
        else:
            self.connection.execute(text("LOCK TABLES authz_group_members WRITE"))

    def release(self) -> None:
        if self.connection is None:
            return
        if self.engine.dialect.name == "sqlite":
            self.connection.execute("ROLLBACK")
        elif self.engine.dialect.name == "postgresql":
            self.connection.rollback()
        else:
            self.connection.execute(text("UNLOCK TABLES"))
        self.connection.close()
        self.engine.dispose()


def _start_blocked_in_apply(scenario: Scenario) -> tuple[subprocess.Popen, TableBlocker]:
    """Start a run and return once it waits in its apply phase, behind our lock."""
    runs_before = len(ledger(scenario.url))
    requests_before = len(scenario.sim.api_requests())
    scenario.sim.latency = 0.15  # the fetch outlasts taking the lock, however loaded the host
    process = scenario.start()
    blocker = TableBlocker(scenario.url)
    try:
        _wait_for(lambda: len(ledger(scenario.url)) > runs_before)  # its ledger row exists
        blocker.hold()
        # Everything is fetched once as many requests as yesterday's run made were served.
        _wait_for(lambda: len(scenario.sim.api_requests()) >= 2 * requests_before)
        time.sleep(1.0)  # reading done, now waiting on our lock inside its transaction
        assert process.poll() is None, "the run should be waiting for the lock"
    except BaseException:
        process.kill()  # never leave a lock or a process behind a failed test
        blocker.release()
        raise
    return process, blocker


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")]
)
def test_a_signal_during_apply_rolls_back(sim, database_url, sig, code, name):
    scenario = Scenario(sim, database_url)
    process, blocker = _start_blocked_in_apply(scenario)
    process.send_signal(sig)
    time.sleep(0.3)
    blocker.release()
    result = scenario.finish(process)
    scenario.assert_untouched(result, code, f"interrupted by {name}", status="aborted")


def test_a_run_waits_for_a_concurrent_writer_instead_of_failing(sim, database_url):
    """Another connection writing (an operator's script, a migration) delays the apply; it
    must not fail it. SQLite refuses at once a read snapshot that tries to write: the run takes
    its write lock before it reads."""
    scenario = Scenario(sim, database_url)
    process, blocker = _start_blocked_in_apply(scenario)
    blocker.release()
    scenario.assert_completed(scenario.finish(process))


def test_kill_9_during_apply_loses_nothing_and_the_next_run_recovers(sim, database_url):
    scenario = Scenario(sim, database_url)
    process, blocker = _start_blocked_in_apply(scenario)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    blocker.release()
    assert read_tables(database_url) == scenario.yesterday
    killed = ledger(database_url)[-1]
    assert killed["status"] == "running"
    assert killed["heartbeat_at"] >= killed["started_at"]  # its last sign of life
    if database_url.get_backend_name() != "sqlite":  # there our lock kept later beats out
        assert killed["heartbeat_at"] > killed["started_at"]  # the fetch's phases beat

    next_run = scenario.run()  # the lock died with the process: nothing blocks this run
    scenario.assert_completed(next_run)
    statuses = [run["status"] for run in ledger(database_url)]
    assert statuses == ["succeeded", "abandoned", "succeeded"]
    abandoned = ledger(database_url)[1]
    assert abandoned["finished_at"] == killed["heartbeat_at"]  # not when it was found
    alive = (killed["heartbeat_at"] - killed["started_at"]).total_seconds()
    assert abandoned["duration_seconds"] == pytest.approx(alive, abs=1e-3)
    assert "after its last heartbeat at" in abandoned["error"]


def test_two_runs_at_the_same_moment_do_not_overlap(sim, database_url):
    scenario = Scenario(sim, database_url)
    sim.latency = 0.05
    # The first run to read the groups holds the lock for two seconds more: the runs overlap
    # however slowly the second process starts on a busy machine.
    sim.add_fault(r"^/api/groups$", "delay", delay=2.0)
    first, second = scenario.start(), scenario.start()
    results = [scenario.finish(first), scenario.finish(second)]
    codes = sorted(result.exit_code for result in results)
    assert codes == [0, 75], [r.output for r in results]
    loser = next(r for r in results if r.exit_code == 75)
    assert "another authz-sync run is using" in loser.stderr
    assert_synced(database_url, sim.tenant)
    assert [run["status"] for run in ledger(database_url)] == ["succeeded", "succeeded"]
    scenario.assert_no_secrets()


def test_losing_the_database_connection_during_apply_rolls_back(sim, database_url):
    """In-process, so that the connection can be cut at an exact statement."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from sync.cli.demo import simulator_settings
    from sync.errors import DatabaseError
    from sync.runner.run import run_sync

    scenario = Scenario(sim, database_url)
    settings = simulator_settings(sim, database_url.render_as_string(hide_password=False))
    cut = threading.Event()

    def cut_connection(conn, cursor, statement, parameters, context, executemany):
        if cut.is_set() or not statement.startswith("INSERT INTO authz_group_members"):
            return
        cut.set()
        _kill_connection(database_url, cursor)

    event.listen(Engine, "before_cursor_execute", cut_connection)
    try:
        with pytest.raises(DatabaseError, match="failed") as caught:
            run_sync(settings, sleep=lambda s: None)
    finally:
        event.remove(Engine, "before_cursor_execute", cut_connection)
    assert cut.is_set() and caught.value.exit_code == 74
    assert read_tables(database_url) == scenario.yesterday
    assert ledger(database_url)[-1]["status"] == "failed"


def _kill_connection(database_url, cursor) -> None:
    backend = database_url.get_backend_name()
    if backend == "sqlite":
        import sqlite3

        raise sqlite3.OperationalError("disk I/O error (simulated)")
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if backend == "postgresql":
            pid = cursor.connection.info.backend_pid
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        else:
            connection.execute(text(f"KILL {int(cursor.connection.thread_id())}"))
    admin.dispose()


def test_the_secret_stays_out_of_verbose_logs_too(sim, database_url):
    scenario = Scenario(sim, database_url, AUTHZ_SYNC_RETRY_MAX_ATTEMPTS="2")
    sim.add_fault(r"^/api/groups$", "status", status=502, times=None)
    result = authz_sync("-vv", "run", env=scenario.env)
    scenario.outputs.append(result.output)
    assert result.exit_code == 69
    assert "DEBUG" in result.stderr or "INFO" in result.stderr
    scenario.assert_no_secrets()
    assert os.environ.get("AUTHZ_SYNC_CLIENT_SECRET") != SECRET
