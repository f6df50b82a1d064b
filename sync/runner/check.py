"""`authz-sync check`: is everything in place for a run? Each step answers ✓ or ✗ with the fix.

It reads what a run reads, once each (the settings, a token, the granted scopes, each list
endpoint, the database and its schema revision) and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import httpx

from sync.config import RetrySettings, Settings, load_settings
from sync.errors import SyncError
from sync.redact import redact
from sync.source.auth import GRANT_WHERE
from sync.source.endpoints import REQUIRED_SCOPES
from sync.source.extension import ExtensionApi
from sync.source.user_sources import export_client, export_grant
from sync.sql.engine import describe, engine_for
from sync.sql.revisions import head_revision, schema_is_current

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
    for warning in settings.warnings:  # the secret was registered for masking as it was read
        log.warning(warning)
    checks = [Check("settings", True, f"extension {settings.extension.url}")]
    checks += list(_api_checks(settings, transport))
    checks += list(_database_checks(settings))
    return checks


def _attempt(name: str, step: Callable[[], str]) -> Check:
    try:
        return Check(name, True, step())
    except SyncError as error:
        return Check(name, False, redact(str(error).splitlines()[0]))


# A check answers in seconds, not minutes: two tries a step, short timeouts. What it reports
# ("gave up after 2 tries, 1 s of waiting") is what it did.
CHECK_RETRY = RetrySettings(max_attempts=2, initial_wait=1.0, max_wait=1.0, max_total_wait=2.0)
CHECK_TIMEOUT = 10.0  # seconds, connect and read


def _api_checks(settings: Settings, transport: httpx.BaseTransport | None) -> Iterator[Check]:
    settings = _impatient(settings)
    with ExtensionApi(settings, transport=transport) as api:
        audience = settings.auth0.audience
        token = _attempt(
            "token", lambda: f"{len(api.token().value)}-character token for {audience}"
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
    yield _users_source(settings, transport)


WINDOWS = "the extension's /api/users, in created_at windows"


def _users_source(settings: Settings, transport: httpx.BaseTransport | None) -> Check:
    """Which user source a run will take, and why (creates no export job)."""
    source, name = settings.users.source, "users source"
    if source == "extension":
        return Check(name, True, f"{WINDOWS} (users.source = extension)")
    try:
        with export_client(settings, transport) as client:
            refusal = export_grant(client)
    except SyncError as error:
        return Check(name, False, redact(str(error).splitlines()[0]))
    if refusal is None:
        return Check(name, True, f"the export job: the Management API grants read:users ({source})")
    if source == "auto":
        return Check(name, True, f"{WINDOWS} (users.source = auto): {refusal}")
    return Check(name, False, refusal)


def _impatient(settings: Settings) -> Settings:
    extension = settings.extension
    timeouts = {
        "connect_timeout": min(extension.connect_timeout, CHECK_TIMEOUT),
        "read_timeout": min(extension.read_timeout, CHECK_TIMEOUT),
    }
    return replace(settings, retry=CHECK_RETRY, extension=replace(extension, **timeouts))


def _database_checks(settings: Settings) -> Iterator[Check]:
    engine = engine_for(settings.database, read_only=True)
    where = describe(engine)
    try:
        yield _attempt("database schema", lambda: _schema_state(engine, where))
    finally:
        engine.dispose()


def _schema_state(engine, where: str) -> str:
    if schema_is_current(engine):
        return f"{where} at revision {head_revision()}"
    return f"{where} is empty: the first `authz-sync run` creates the tables"
