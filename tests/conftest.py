"""Shared fixtures: a fresh, real database per test on every configured server, and a tenant
served by the simulator over HTTP (its size set by a module's `tenant` marker).

SQLite always runs. PostgreSQL and MariaDB run when their server URL is given
(AUTHZ_SYNC_TEST_POSTGRESQL_URL, AUTHZ_SYNC_TEST_MYSQL_URL — `.ci/run` sets both); otherwise
their tests are skipped with the reason. Each test gets its own freshly created database on the
server, dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from sync.config import normalize_database_url
from sync.simulator import Simulator, generate_tenant

SERVER_URLS = {
    "postgresql": "AUTHZ_SYNC_TEST_POSTGRESQL_URL",
    "mariadb": "AUTHZ_SYNC_TEST_MYSQL_URL",
}


def _server_url(kind: str) -> URL:
    variable = SERVER_URLS[kind]
    value = os.environ.get(variable)
    if not value:
        pytest.skip(f"{kind} tests need {variable} (a server URL); .ci/run sets it")
    return make_url(normalize_database_url(value))


def _create_database(server: URL) -> Iterator[URL]:
    name = f"authz_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    quote = '"' if server.get_backend_name() == "postgresql" else "`"
    with admin.connect() as connection:
        suffix = " CHARACTER SET utf8mb4" if quote == "`" else " ENCODING 'UTF8'"
        connection.execute(text(f"CREATE DATABASE {quote}{name}{quote}{suffix}"))
    try:
        yield server.set(database=name)
    finally:
        with admin.connect() as connection:
            if quote == '"':
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:  # a connection a failed test left open could hold a lock: end it first
                stale = connection.execute(
                    text("SELECT id FROM information_schema.processlist WHERE db = :db"),
                    {"db": name},
                )
                for (thread,) in stale.all():
                    with contextlib.suppress(DBAPIError):  # it may have ended meanwhile
                        connection.execute(text(f"KILL {int(thread)}"))
                connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request, tmp_path) -> Iterator[URL]:
    """A URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield make_url(f"sqlite:///{tmp_path / 'authz.db'}")
        return
    yield from _create_database(_server_url(request.param))


@pytest.fixture
def postgresql_url() -> Iterator[URL]:
    """A URL of an empty PostgreSQL database, for what only PostgreSQL has (schemas)."""
    yield from _create_database(_server_url("postgresql"))


@pytest.fixture
def sqlite_url(tmp_path) -> URL:
    return make_url(f"sqlite:///{tmp_path / 'authz.db'}")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "tenant(**size): generate_tenant's arguments for the `tenant` fixture"
    )
    config.addinivalue_line("markers", "simulator(**options): Simulator options for `sim`")


def _marked(request, name: str) -> dict:
    marker = request.node.get_closest_marker(name)
    return marker.kwargs if marker else {}


@pytest.fixture
def tenant(request):
    """A generated tenant, 300 users by default; a module sets its own size with
    `pytestmark = pytest.mark.tenant(users=..., groups=...)`."""
    return generate_tenant(**_marked(request, "tenant"))


@pytest.fixture
def sim(request, tenant):
    """`tenant` served over HTTP; tests change `tenant` between runs to change the source.
    `pytest.mark.simulator(client_secret=...)` passes options to the Simulator."""
    with Simulator(tenant, **_marked(request, "simulator")) as simulator:
        yield simulator
