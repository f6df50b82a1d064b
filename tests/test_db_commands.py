"""`authz-sync db`: relative revisions as Alembic writes them, the revision actually reached, and
`db current` as a gate scripts can use (exit 78 unless the schema is at the head)."""

from __future__ import annotations

from e2e import authz_sync
from sqlalchemy.engine import URL

from sync.sql import revisions

EXIT_SCHEMA = 78


def env_for(database_url: URL) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_SYNC_")}
    return env | {"AUTHZ_SYNC_DATABASE_URL": database_url.render_as_string(hide_password=False)}


def test_relative_revisions_without_a_double_dash_and_the_revision_reached(database_url):
    env, head = env_for(database_url), revisions.head_revision()
    previous = f"{int(head) - 1:04d}"
    assert authz_sync("db", "upgrade", env=env).exit_code == 0
    down = authz_sync("db", "downgrade", "-1", env=env)
    assert down.exit_code == 0, down.output
    assert down.stdout.rstrip().endswith(f"is at revision {previous}")
    assert "revision -1" not in down.stdout  # the revision reached, not the argument
    up = authz_sync("db", "upgrade", "+1", env=env)
    assert up.exit_code == 0, up.output
    assert up.stdout.rstrip().endswith(f"is at revision {head} (the newest)")


def test_db_current_exits_78_unless_the_schema_is_at_the_head(sqlite_url):
    env, head = env_for(sqlite_url), revisions.head_revision()
    empty = authz_sync("db", "current", env=env)
    assert empty.exit_code == EXIT_SCHEMA, empty.output
    assert f"database revision: none; needed: {head}" in empty.stdout
    assert authz_sync("db", "upgrade", "0001", env=env).exit_code == 0
    behind = authz_sync("db", "current", env=env)
    assert behind.exit_code == EXIT_SCHEMA
    assert "database revision: 0001" in behind.stdout and "db upgrade" in behind.stdout
    assert authz_sync("db", "upgrade", env=env).exit_code == 0
    current = authz_sync("db", "current", env=env)
    assert current.exit_code == 0 and "up to date" in current.stdout


def test_downgrade_to_base_says_so(sqlite_url):
    env = env_for(sqlite_url)
    assert authz_sync("db", "upgrade", env=env).exit_code == 0
    down = authz_sync("db", "downgrade", "base", env=env)
    assert down.exit_code == 0, down.output
    assert down.stdout.rstrip().endswith("is at revision none (no authz-sync tables)")
