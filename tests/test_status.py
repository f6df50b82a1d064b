"""`authz-sync status` as operators run it: the installed command reading the run ledger of a real
database of each kind, as a table and as JSON, with a failed run whose error has several lines."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from e2e import assert_asks_for_db_upgrade, authz_sync, create_schema, database_env
from sqlalchemy.engine import URL

from sync.sql import schema

COUNTS = {
    "authz_users": {"fetched": 1200, "inserted": 1200, "updated": 0, "deleted": 0, "unchanged": 0}
}
NULL_RUN = {  # every column, so each database gets the same row shape
    "finished_at": None,
    "exit_code": None,
    "rows_inserted": None,
    "rows_updated": None,
    "rows_deleted": None,
    "api_requests": None,
    "api_retries": None,
    "api_rate_limited": None,
    "duration_seconds": None,
    "counts": None,
    "warnings": None,
    "error": None,
    "source": "https://acme.eu.webtask.io/abc/api",
    "version": "0.1.0",
    "fingerprints": None,
    "user_windows": None,
    "heartbeat_at": None,
}
FAILED_ERROR = (
    "the extension could not be read: gave up on group 'Zürich 🚀'\n"
    "last answer: 429 Too Many Requests after 8 attempts\n"
)
ABANDONED_ERROR = (
    "the process ended without recording an outcome (killed?); nothing it fetched was written"
)
RUNS = [
    NULL_RUN
    | {
        "run_id": 1,
        "started_at": datetime(2026, 11, 26, 3, 15, 2, 123456),
        "finished_at": datetime(2026, 11, 26, 3, 15, 14, 468456),
        "status": "succeeded",
        "exit_code": 0,
        "rows_inserted": 1200,
        "rows_updated": 0,
        "rows_deleted": 0,
        "api_requests": 17,
        "api_retries": 0,
        "api_rate_limited": 0,
        "duration_seconds": 12.345,
        "counts": COUNTS,
        "warnings": [],
        "fingerprints": {"authz": "0" * 32, "user_ids": "1" * 32, "users": "2" * 32},
        "user_windows": [["2024-05-01T10:00:00.123Z", 870], [None, 330]],
    },
    NULL_RUN
    | {
        "run_id": 2,
        "started_at": datetime(2026, 11, 27, 3, 15, 0, 999999),  # shown as 03:15:00
        "finished_at": datetime(2026, 11, 27, 3, 16, 16, 499999),
        "status": "failed",
        "exit_code": 69,
        "rows_inserted": 0,
        "rows_updated": 0,
        "rows_deleted": 0,
        "api_requests": 40,
        "api_retries": 8,
        "api_rate_limited": 5,
        "duration_seconds": 75.5,
        "warnings": ["group 'x': nested group 'y' does not exist; left out"],
        "error": FAILED_ERROR,
    },
    NULL_RUN
    | {  # killed: no duration recorded, so finished_at - started_at
        "run_id": 3,
        "started_at": datetime(2026, 11, 28, 3, 15, 0),
        "finished_at": datetime(2026, 11, 28, 4, 20, 5),
        "status": "abandoned",
        "error": ABANDONED_ERROR,
    },
    NULL_RUN | {"run_id": 4, "started_at": datetime(2026, 11, 29, 3, 15, 0), "status": "running"},
]

HEADER = (
    "run  started (UTC)        status     duration  ins/upd/del  requests  retries  429s  error"
)
LINES = {
    4: "  4  2026-11-29 03:15:00  running           -            -         -        -     -",
    3: "  3  2026-11-28 03:15:00  abandoned    1h 05m            -         -        -     -  "
    "the process ended without recording an outcome (killed?); n…",
    2: "  2  2026-11-27 03:15:00  failed       1m 15s        0/0/0        40        8     5  "
    "the extension could not be read: gave up on group 'Zürich 🚀' …",
    1: "  1  2026-11-26 03:15:02  succeeded    12.3 s     1200/0/0        17        0     0",
}


@pytest.fixture
def ledger_url(database_url: URL) -> URL:
    """On every database: timestamps, JSON and float columns come back differently."""
    return create_schema(database_url, {schema.sync_runs: RUNS})


def test_table_newest_first_with_the_errors_first_line(ledger_url):
    done = authz_sync("status", env=database_env(ledger_url))
    assert done.exit_code == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines() == [HEADER, LINES[4], LINES[3], LINES[2], LINES[1]]


def test_limit_keeps_the_newest(sqlite_url):
    create_schema(sqlite_url, {schema.sync_runs: RUNS})
    done = authz_sync("status", "--limit", "2", env=database_env(sqlite_url))
    assert done.stdout.splitlines() == [HEADER, LINES[4], LINES[3]]


def test_json_has_every_column_unshortened(ledger_url):
    done = authz_sync("status", "--json", env=database_env(ledger_url))
    assert done.exit_code == 0, done.stderr
    runs = json.loads(done.stdout)
    assert [run["run_id"] for run in runs] == [4, 3, 2, 1]
    columns = {column.name for column in schema.sync_runs.columns}
    assert all(set(run) == columns for run in runs)
    newest, _, failed, succeeded = runs
    assert succeeded["started_at"] == "2026-11-26T03:15:02.123456Z"
    assert succeeded["finished_at"] == "2026-11-26T03:15:14.468456Z"
    # MySQL/MariaDB store a Float column in single precision.
    assert succeeded["duration_seconds"] == pytest.approx(12.345, rel=1e-6)
    assert succeeded["counts"] == COUNTS
    assert succeeded["warnings"] == []
    assert succeeded["fingerprints"] == RUNS[0]["fingerprints"]
    assert succeeded["user_windows"] == RUNS[0]["user_windows"]
    assert failed["error"] == FAILED_ERROR
    assert failed["warnings"] == RUNS[1]["warnings"]
    assert (failed["status"], failed["exit_code"], failed["api_rate_limited"]) == ("failed", 69, 5)
    assert newest == {**RUNS[3], "started_at": "2026-11-29T03:15:00.000000Z"}


def test_no_runs_yet(sqlite_url):
    create_schema(sqlite_url)
    table = authz_sync("status", env=database_env(sqlite_url))
    machine = authz_sync("status", "--json", env=database_env(sqlite_url))
    assert (table.exit_code, table.stdout) == (0, "no runs yet\n")
    assert (machine.exit_code, json.loads(machine.stdout)) == (0, [])


def test_a_database_without_the_schema_says_how_to_create_it(sqlite_url):
    """SQLite only: test_graph.py runs the same check (readonly.py) on every database."""
    Path(sqlite_url.database).touch()  # an existing, empty SQLite database
    assert_asks_for_db_upgrade(authz_sync("status", env=database_env(sqlite_url)))


def test_a_limit_below_one_is_refused(sqlite_url):
    done = authz_sync("status", "--limit", "0", env=database_env(sqlite_url))
    assert done.exit_code == 2
    assert "Invalid value for '--limit'" in done.stderr


WRITE_ERROR = (
    "writing to mysql+pymysql://authz:***@db.internal:3306/authz_prod?charset=utf8mb4 failed: "
    "(1062, \"Duplicate entry 'auth0|x' for key 'PRIMARY'\")"
)


def test_a_long_error_keeps_its_cause_and_shortens_the_url():
    from sync.cli.status import ERROR_WIDTH, short_error

    shown = short_error(WRITE_ERROR)
    assert len(shown) <= ERROR_WIDTH
    assert shown.startswith("writing to … failed: (1062, \"Duplicate entry 'auth0|x'")
    assert "charset" not in shown and "***" not in shown
    medium = "writing to sqlite:////var/lib/authz/authz.db?mode=rw failed: disk I/O error"
    assert short_error(medium) == "writing to sqlite:///…/authz.db failed: disk I/O error"


def test_a_long_cause_is_cut_at_its_end_and_the_url_dropped():
    from sync.cli.status import ERROR_WIDTH, short_error

    error = (
        "GET https://acme.eu.webtask.io/adf6e2f2b84784b57522e3b19dfc9201/api/groups?page=1 "
        "failed: ConnectError: [Errno 111] Connection refused (gave up after 8 tries, 85 s)"
    )
    shown = short_error(error)
    assert len(shown) <= ERROR_WIDTH
    assert shown.startswith("GET … failed: ConnectError: [Errno 111] Connection refused")
    short = "GET https://acme.eu.webtask.io/adf6e2f2b84784b57522e3b19dfc9201/api/groups failed: 503"
    assert short_error(short) == "GET https://acme.eu.webtask.io/…/groups failed: 503"
    context = "the extension answered a group whose members list holds 12000 entries: " + "x" * 20
    assert short_error(context).endswith("…: " + "x" * 20)


def test_a_running_run_shows_its_last_heartbeat():
    from sync.cli.status import table_row

    run = RUNS[3] | {"heartbeat_at": datetime(2026, 11, 29, 3, 20, 42, 5)}
    assert table_row(run)[-1] == "last heartbeat 2026-11-29 03:20:42"
    assert table_row(RUNS[3])[-1] == ""  # none recorded (a run of an older version)
