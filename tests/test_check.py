"""`authz-sync check`: a ✓/✗ line per step, the fix for each ✗, exit 1 on any ✗."""

from __future__ import annotations

from e2e import authz_sync, command_env

from sync.simulator import Simulator, generate_tenant
from sync.sql import revisions


def test_everything_in_place(database_url):
    with Simulator(generate_tenant(users=90, groups=6, memberships=100)) as sim:
        env = command_env(sim, database_url)
        fresh = authz_sync("check", env=env)
        assert authz_sync("run", env=env).exit_code == 0
        synced = authz_sync("check", env=env)
    assert fresh.exit_code == 0, fresh.output
    lines = fresh.stdout.splitlines()
    assert all(line.startswith("✓ ") for line in lines)
    assert any("scope read:roles" in line and "granted" in line for line in lines)
    assert any("GET /api/users" in line and "90 users" in line for line in lines)
    assert "is empty: the first `authz-sync run` creates the tables" in fresh.stdout
    assert synced.exit_code == 0 and f"at revision {revisions.head_revision()}" in synced.stdout


def test_a_missing_scope_and_an_unreachable_database(sqlite_url):
    sim = Simulator(generate_tenant(users=60, groups=5, memberships=60), scopes=("read:users",))
    with sim:
        env = command_env(sim, sqlite_url, AUTHZ_SYNC_DATABASE_URL="postgresql://x@127.0.0.1:1/db")
        result = authz_sync("check", env=env)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "✓ scope read:users" in "\n".join(lines)
    missing = [line for line in lines if line.startswith("✗ scope")]
    assert len(missing) == 3 and all("Machine to Machine Applications" in line for line in missing)
    assert any(line.startswith("✗ GET /api/roles") for line in lines)
    assert any(
        line.startswith("✗ database schema") and "cannot use the database" in line for line in lines
    )


def test_bad_settings_are_listed_and_nothing_else_is_tried(tmp_path):
    result = authz_sync("check", env={"PATH": __import__("os").environ["PATH"]})
    assert result.exit_code == 1
    assert result.stdout.startswith("✗ settings") and "auth0.domain is not set" in result.stdout


def test_check_masks_the_secret_and_warns_like_run(tmp_path, monkeypatch, caplog):
    """A token endpoint that echoes the secret back: the ✗ line must not carry it."""
    import os

    import httpx

    from sync.runner.check import run_checks

    secret = "echoed-s3cret-value"
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret)
    os.chmod(secret_file, 0o644)
    for name in [n for n in os.environ if n.startswith("AUTHZ_SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AUTHZ_SYNC_AUTH0_DOMAIN", "acme.eu.auth0.com")
    monkeypatch.setenv("AUTHZ_SYNC_CLIENT_ID", "client-1")
    monkeypatch.setenv("AUTHZ_SYNC_CLIENT_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("AUTHZ_SYNC_EXTENSION_URL", "https://acme.eu.webtask.io/x/api")
    monkeypatch.setenv("AUTHZ_SYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'authz.db'}")

    def echo(request: httpx.Request) -> httpx.Response:
        body = {"error": "invalid_request", "error_description": f"bad secret {secret}"}
        return httpx.Response(400, json=body)

    checks = run_checks(None, transport=httpx.MockTransport(echo))
    token = next(check for check in checks if check.name == "token")
    assert not token.ok and "bad secret" in token.detail
    assert all(secret not in check.detail for check in checks)
    assert any("client_secret_file" in r.getMessage() for r in caplog.records)


def _users_source_line(sim: Simulator, sqlite_url, source: str) -> tuple[int, str]:
    result = authz_sync("check", env=command_env(sim, sqlite_url, AUTHZ_SYNC_USERS_SOURCE=source))
    line = next(line for line in result.stdout.splitlines() if "users source" in line)
    return result.exit_code, " ".join(line.split())  # the columns' padding aside


def test_check_says_which_user_source_a_run_takes_and_why(sqlite_url):
    tenant = generate_tenant(users=60, groups=5, memberships=60)
    with Simulator(tenant, management_scopes=("read:users",)) as sim:
        assert _users_source_line(sim, sqlite_url, "auto") == (
            0,
            "✓ users source the export job: the Management API grants read:users (auto)",
        )
        assert sim.jobs.created == 0  # asking for the grant creates no job
    with Simulator(tenant) as sim:  # no grant on the Management API
        code, line = _users_source_line(sim, sqlite_url, "auto")
        assert code == 0 and line.startswith("✓ users source the extension's /api/users")
        assert "users.source = auto" in line and "no grant on the Management API" in line
        code, line = _users_source_line(sim, sqlite_url, "export")
        assert code == 1 and line.startswith("✗ users source") and "read:users" in line
        code, line = _users_source_line(sim, sqlite_url, "extension")
        assert code == 0 and "(users.source = extension)" in line
    with Simulator(tenant, management_scopes=("read:clients",)) as sim:  # granted, no scope
        code, line = _users_source_line(sim, sqlite_url, "export")
        assert code == 1 and "without the scope read:users" in line
