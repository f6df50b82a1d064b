"""Issue 12: what an operator meets at 3 a.m. — errors that say where and why, bounded waits,
output that tools can parse, options where users type them. Real command, real sockets."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from e2e import authz_sync, command_env, ledger

HTML = b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>hi</body></html>"


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def web_page():
    """A web server that answers every GET with an HTML page (a wrong extension.url)."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            status = 404 if self.path.endswith("/users") else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(HTML)))
            self.end_headers()
            self.wfile.write(HTML)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_refused_connection_names_host_and_port_and_gives_up_quickly(sim, sqlite_url):
    port = free_port()
    env = command_env(sim, sqlite_url, AUTHZ_SYNC_EXTENSION_URL=f"http://127.0.0.1:{port}/api")
    started = time.monotonic()
    result = authz_sync("run", env=env)
    assert result.exit_code == 69, result.output
    assert f"connection refused by 127.0.0.1:{port}" in result.stderr
    assert "gave up after 2 tries" in result.stderr  # not 8 tries and 85 s
    assert time.monotonic() - started < 15
    # The ledger keeps what the failed run spent.
    run = ledger(sqlite_url)[-1]
    assert (run["status"], run["api_requests"], run["api_retries"]) == ("failed", 2, 1)


def test_an_html_page_is_not_taken_for_the_extension(sim, sqlite_url, web_page):
    env = command_env(sim, sqlite_url, AUTHZ_SYNC_EXTENSION_URL=f"{web_page}/api")
    started = time.monotonic()
    result = authz_sync("run", env=env)
    assert result.exit_code == 69, result.output
    assert f"GET {web_page}/api/groups" in result.stderr
    assert "does not look like the extension's API" in result.stderr
    assert "Welcome to nginx!" in result.stderr and "<body>hi" not in result.stderr.split("(")[0]
    assert time.monotonic() - started < 10  # not retried


@pytest.mark.parametrize("domain", ["not a url", "acme.auth0.com:port", "a_b.auth0.com"])
def test_a_malformed_domain_is_a_settings_error(sim, sqlite_url, domain):
    result = authz_sync("run", env=command_env(sim, sqlite_url, AUTHZ_SYNC_AUTH0_DOMAIN=domain))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: auth0.domain ")
    checked = authz_sync("check", env=command_env(sim, sqlite_url, AUTHZ_SYNC_AUTH0_DOMAIN=domain))
    assert checked.exit_code == 1 and "✗ settings" in checked.stdout


def test_check_tries_twice_and_says_how_long_it_waited(sim, sqlite_url):
    port = free_port()
    env = command_env(sim, sqlite_url, AUTHZ_SYNC_EXTENSION_URL=f"http://127.0.0.1:{port}/api")
    started = time.monotonic()
    result = authz_sync("check", env=env)
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if "GET /api/groups" in line)
    assert "gave up after 2 tries" in line
    waited = float(line.rsplit(", ", 1)[1].split(" s of waiting")[0])
    assert waited <= elapsed  # what it reports, it did
    assert elapsed < 30


def test_vv_logs_every_request_and_v_keeps_alembic_quiet(sim, sqlite_url):
    env = command_env(sim, sqlite_url)
    debug = authz_sync("-vv", "run", env=env)
    assert debug.exit_code == 0, debug.output
    requests = [line for line in debug.stderr.splitlines() if "GET http://" in line]
    assert any("/api/groups → 200 in" in line and "(try 1)" in line for line in requests)
    assert "Context impl" in debug.stderr  # -vv: everything
    verbose = authz_sync("-v", "run", env=env)
    assert "Context impl" not in verbose.stderr and "timing: fetch" in verbose.stderr


def test_logging_options_also_after_the_command(sim, sqlite_url):
    env = command_env(sim, sqlite_url)
    result = authz_sync("run", "-v", env=env)
    assert result.exit_code == 0, result.output
    assert "INFO sync.runner.run [run 1]: timing" in result.stderr
    quiet = authz_sync("run", "-q", "--log-format", "json", env=env)
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["run_id"] == 2


def test_json_output_every_line_and_the_error_names_its_run(sim, sqlite_url):
    env = command_env(sim, sqlite_url)
    document = json.loads(authz_sync("run", "--json", env=env).stdout)
    assert document["status"] == "succeeded" and document["run_id"] == 1
    assert document["tables"]["authz_users"]["inserted"] == len(sim.tenant.users)
    assert {"api_requests", "api_retries", "duration_seconds", "rows"} <= set(document)
    sim.add_fault(r"^/api/groups$", "status", status=503, times=None)
    failed = authz_sync(
        "--log-format", "json", "run", env=env | {"AUTHZ_SYNC_RETRY_MAX_ATTEMPTS": "1"}
    )
    assert failed.exit_code == 69 and failed.stdout == ""
    lines = [json.loads(line) for line in failed.stderr.splitlines()]
    error = next(line for line in lines if line["level"] == "ERROR")
    assert error["run_id"] == 2 == ledger(sqlite_url)[-1]["run_id"]


def _hold_a_lock(database_url):
    """Another session holding authz_users (SQLite: the whole file) until closed."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    connection = engine.connect()
    kind = database_url.get_backend_name()
    if kind == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif kind == "postgresql":
        connection.execute(text("LOCK TABLE authz_users IN ACCESS EXCLUSIVE MODE"))
    else:
        connection.execute(text("LOCK TABLES authz_users WRITE"))
    return engine, connection


def test_a_lock_held_elsewhere_is_waited_for_a_bounded_time(sim, database_url):
    env = command_env(sim, database_url, AUTHZ_SYNC_DATABASE_LOCK_TIMEOUT="1")
    assert authz_sync("run", env=env).exit_code == 0
    engine, holder = _hold_a_lock(database_url)
    try:
        started = time.monotonic()
        result = authz_sync("run", env=env, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        holder.close()
        engine.dispose()
    assert result.exit_code == 74, result.output
    assert "waited 1 s for a lock on authz_" in result.stderr
    assert "database.lock_timeout" in result.stderr
    assert elapsed < 30
    assert authz_sync("run", env=env).exit_code == 0  # the lock gone, the next run goes ahead


def test_max_seconds_ends_a_run_cleanly(sim, sqlite_url):
    env = command_env(sim, sqlite_url)
    sim.add_fault(r"^/api/groups$", "delay", delay=5.0)
    started = time.monotonic()
    result = authz_sync("run", "--max-seconds", "1", env=env)
    assert result.exit_code == 124, result.output
    assert time.monotonic() - started < 5
    assert "run.max_seconds (1 s)" in result.stderr
    run = ledger(sqlite_url)[-1]
    assert run["status"] == "aborted" and run["exit_code"] == 124


def test_a_table_or_column_dropped_by_hand_is_found_at_once_and_repaired(sim, database_url):
    from sqlalchemy import create_engine, text

    env = command_env(sim, database_url)
    assert authz_sync("run", env=env).exit_code == 0
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE authz_group_roles"))
        connection.execute(text("ALTER TABLE authz_users DROP COLUMN picture"))
    engine.dispose()
    sim.requests.clear()
    result = authz_sync("run", env=env)
    assert result.exit_code == 78, result.output
    assert "table authz_group_roles" in result.stderr and "authz_users.picture" in result.stderr
    assert "authz-sync db upgrade" in result.stderr
    assert not sim.api_requests()  # found before the fetch, not after it
    checked = authz_sync("check", env=env)
    assert checked.exit_code == 1 and "✗ database schema" in checked.stdout
    assert authz_sync("db", "upgrade", env=env).exit_code == 0
    again = authz_sync("run", env=env)
    assert again.exit_code == 0, again.output


def test_settings_problems_say_where_the_value_came_from(tmp_path, sim, sqlite_url):
    path = tmp_path / "authz.toml"
    path.write_text('[extension]\nread_timeout = "soon"\n')
    env = command_env(sim, sqlite_url, AUTHZ_SYNC_RETRY_MAX_ATTEMPTS="many")
    result = authz_sync("run", "--config", str(path), env=env)
    assert result.exit_code == 2
    assert f"extension.read_timeout must be a number (from {path}, [extension] read_timeout)" in (
        result.stderr
    )
    assert "(from environment variable AUTHZ_SYNC_RETRY_MAX_ATTEMPTS)" in result.stderr


def test_config_shows_each_setting_with_its_source_and_the_example(tmp_path, sim, sqlite_url):
    from pathlib import Path

    path = tmp_path / "authz.toml"
    path.write_text("[retry]\nmax_attempts = 3\n")
    env = command_env(sim, sqlite_url)
    env["AUTHZ_SYNC_DATABASE_URL"] = "postgresql://authz:db-password@db.example/authz"
    shown = authz_sync("config", "--config", str(path), env=env)
    assert shown.exit_code == 0, shown.output
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()}
    assert lines["retry.max_attempts"].endswith(f"3  ({path}, [retry] max_attempts)")
    assert lines["retry.max_total_wait"].endswith("600.0  (default)")
    assert "(environment variable AUTHZ_SYNC_CLIENT_SECRET)" in lines["auth0.client_secret"]
    assert sim.client_secret not in shown.stdout and "db-password" not in shown.stdout
    example = authz_sync("config", "--example", env=env)
    root = Path(__file__).resolve().parent.parent
    assert example.stdout == (root / "config.example.toml").read_text()
