"""`authz-sync check`: is everything in place for a run? Each step answers ✓ or ✗ with the fix.

It reads what a run reads, once each (the settings, a token, the granted scopes, each list
endpoint, the database and its schema revision) and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from . import database
from .api import ExtensionApi
from .auth import GRANT_WHERE, REQUIRED_SCOPES
from .config import Settings, load_settings
from .errors import SyncError
from .redact import redact, register_secret

log = logging.getLogger(__name__)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(
    config_path: str | None, transport: httpx.BaseTransport | None = None
) -> list[Check]:
    try:
        settings = load_settings(config_path)
    except SyncError as error:
        return [Check("settings", False, line) for line in str(error).splitlines()]
    register_secret(settings.client_secret.reveal())  # as a run does: masked in every message
    for warning in settings.warnings:
        log.warning(warning)
    checks = [Check("settings", True, f"extension {settings.extension_url}")]
    checks += list(_api_checks(settings, transport))
    checks += list(_database_checks(settings))
    return checks


def _attempt(name: str, step: Callable[[], str]) -> Check:
    try:
        return Check(name, True, step())
    except SyncError as error:
        return Check(name, False, redact(str(error).splitlines()[0]))


def _api_checks(settings: Settings, transport: httpx.BaseTransport | None) -> Iterator[Check]:
    # No waiting in a check: one try per step, a failure is the answer.
    with ExtensionApi(settings, transport=transport, sleep=lambda _seconds: None) as api:
        token = _attempt(
            "token", lambda: f"{len(api.token().value)}-character token for {settings.audience}"
        )
        yield token
        if not token.ok:
            return
        granted = api.token().scopes
        for scope in REQUIRED_SCOPES:
            if granted is None:
                yield Check(f"scope {scope}", True, "Auth0 did not list the scopes; see below")
            elif scope in granted:
                yield Check(f"scope {scope}", True, "granted")
            else:
                yield Check(f"scope {scope}", False, f"missing: {GRANT_WHERE} {scope}")
        for resource in ("groups", "roles", "permissions"):
            yield _attempt(f"GET /api/{resource}", lambda r=resource: f"{len(api.list_all(r))} {r}")
        yield _attempt(
            "GET /api/users", lambda: f"{api.users_page(1, 1, None)['total']} users in the tenant"
        )


def _database_checks(settings: Settings) -> Iterator[Check]:
    engine = database.open_engine(
        settings.database_url, read_only=True, schema=settings.database_schema
    )
    where = database.describe(engine)
    try:
        yield _attempt("database schema", lambda: _schema_state(engine, where))
    finally:
        engine.dispose()


def _schema_state(engine, where: str) -> str:
    if database.schema_is_current(engine):
        return f"{where} at revision {database.head_revision()}"
    return f"{where} is empty: the first `authz-sync run` creates the tables"
