"""Helpers for end-to-end tests: run the installed `authz-sync` command against a simulator or a
prepared database, and read back whole tables to compare with the simulator's ground truth."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, create_engine, insert, select
from sqlalchemy.engine import URL

from sync.config import (
    Auth0Settings,
    DatabaseSettings,
    ExtensionSettings,
    RetrySettings,
    Secret,
    Settings,
    normalize_database_url,
)
from sync.simulator import Simulator, Tenant, ground_truth
from sync.sql import revisions, schema
from sync.sql.engine import open_engine


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def database_env(database_url: URL) -> dict[str, str]:
    """The environment with only this database configured (no stray AUTHZ_SYNC_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_SYNC_")}
    return env | {"AUTHZ_SYNC_DATABASE_URL": database_url.render_as_string(hide_password=False)}


def command_env(sim: Simulator, database_url: URL, **overrides: str) -> dict[str, str]:
    """`database_env` and the simulator as the tenant."""
    env = database_env(database_url) | {
        "AUTHZ_SYNC_AUTH0_DOMAIN": sim.url,
        "AUTHZ_SYNC_CLIENT_ID": sim.client_id,
        "AUTHZ_SYNC_CLIENT_SECRET": sim.client_secret,
        "AUTHZ_SYNC_EXTENSION_URL": sim.api_url,
        "AUTHZ_SYNC_RETRY_INITIAL_WAIT": "0.05",  # keep retries in tests short
        "AUTHZ_SYNC_RETRY_MAX_WAIT": "0.2",
    }
    return env | overrides


def api_settings(
    database_url: URL | str = "sqlite://",
    *,
    secret: str = "the-client-secret",
    extension_url: str = "https://ext.example/abc/api",
    retry: RetrySettings | None = None,
    **extension,
) -> Settings:
    """Settings for a client of a made-up tenant (the unit tests' MockTransport answers)."""
    url = (
        database_url.render_as_string(hide_password=False)
        if isinstance(database_url, URL)
        else database_url
    )
    return Settings(
        auth0=Auth0Settings("https://tenant.example", "cid", Secret(secret)),
        extension=ExtensionSettings(extension_url, **extension),
        database=DatabaseSettings(normalize_database_url(url)),
        retry=retry or RetrySettings(),
    )


def authz_sync(*args: str, env: dict[str, str], timeout: float = 120) -> Result:
    """Run the installed console command, as cron would."""
    done = subprocess.run(
        ["authz-sync", *args], env=env, capture_output=True, encoding="utf-8", timeout=timeout
    )
    return Result(done.returncode, done.stdout, done.stderr)


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """`authz_sync` in the background, for tests that signal, race or block the command."""
    pipe = subprocess.PIPE
    return subprocess.Popen(
        ["authz-sync", *args], env=env, stdout=pipe, stderr=pipe, encoding="utf-8"
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> Result:
    """Wait for a command `start` began and collect what it printed."""
    stdout, stderr = process.communicate(timeout=timeout)
    return Result(process.returncode, stdout, stderr)


def create_schema(
    database_url: URL, rows: Mapping[Table, list[dict[str, Any]]] | None = None
) -> URL:
    """Migrate an empty database to head, then insert `rows` (table by table, in order)."""
    engine = open_engine(database_url)
    try:
        revisions.upgrade(engine)
        with engine.begin() as connection:
            for table, values in (rows or {}).items():
                if values:
                    connection.execute(insert(table), values)
    finally:
        engine.dispose()
    return database_url


def assert_asks_for_db_upgrade(done: Result) -> None:
    """A reading command on a database without the schema: one line saying how to create it."""
    assert done.exit_code == 78
    assert done.stdout == ""
    assert done.stderr.startswith("Error: the database ")
    assert "has no authz-sync tables yet: run `authz-sync db upgrade`" in done.stderr
    assert "Traceback" not in done.stderr


def read_engine(database_url: URL, pg_schema: str | None = None) -> Engine:
    """An engine reading `pg_schema` (PostgreSQL) through the search_path alone: independent of
    the schema_translate_map authz-sync uses, so a table in the wrong schema is not found."""
    if pg_schema is None:
        return create_engine(database_url)
    return create_engine(database_url, connect_args={"options": f"-csearch_path={pg_schema}"})


def read_tables(database_url: URL, pg_schema: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every synced table's rows (without bookkeeping columns), sorted by key."""
    engine = read_engine(database_url, pg_schema)
    tables = {}
    try:
        with engine.connect() as connection:
            for name, keys in schema.SYNCED_TABLES.items():
                table = schema.metadata.tables[name]
                columns = [c for c in table.columns if c.name != "changed_at"]
                rows = connection.execute(select(*columns)).mappings()
                tables[name] = sorted((dict(row) for row in rows), key=_key(keys))
    finally:
        engine.dispose()
    return tables


def sorted_truth(truth: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {
        name: sorted(truth[name], key=_key(keys)) for name, keys in schema.SYNCED_TABLES.items()
    }


def _key(keys: tuple[str, ...]):
    return lambda row: tuple(row[k] for k in keys)


def assert_synced(database_url: URL, tenant: Tenant, pg_schema: str | None = None) -> None:
    """The synced tables hold exactly the tenant's ground truth."""
    assert_tables_equal(read_tables(database_url, pg_schema), sorted_truth(ground_truth(tenant)))


def assert_tables_equal(actual: dict, expected: dict) -> None:
    for name in schema.SYNCED_TABLES:
        got, want = actual[name], expected[name]
        if got != want:
            missing = [row for row in want if row not in got][:3]
            extra = [row for row in got if row not in want][:3]
            raise AssertionError(
                f"{name}: {len(got)} rows, expected {len(want)}; "
                f"missing e.g. {missing}; unexpected e.g. {extra}"
            )


def ledger(database_url: URL, pg_schema: str | None = None) -> list[dict[str, Any]]:
    engine = read_engine(database_url, pg_schema)
    try:
        with engine.connect() as connection:
            query = select(schema.sync_runs).order_by(schema.sync_runs.c.run_id)
            return [dict(row) for row in connection.execute(query).mappings()]
    finally:
        engine.dispose()
