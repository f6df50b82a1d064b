"""`authz-sync db …`: the schema, managed by Alembic, on the configured database."""

from __future__ import annotations

import sys

import click
from alembic import command

from sync.cli.common import config_option, logging_options, reports_errors
from sync.config import load_database_settings
from sync.errors import EXIT_SCHEMA
from sync.sql import revisions
from sync.sql.engine import database_errors, describe, engine_for

# `-1` is a revision here (Alembic's "one step back"), not an unknown option.
REVISION_ARGUMENT = {"ignore_unknown_options": True}


@click.group()
def db() -> None:
    """Create, upgrade and inspect the database schema (database.url / AUTHZ_SYNC_DATABASE_URL,
    in database.schema / AUTHZ_SYNC_DATABASE_SCHEMA on PostgreSQL)."""


@db.command(context_settings=REVISION_ARGUMENT)
@config_option
@click.argument("revision", default="head")
@logging_options
@reports_errors
def upgrade(config_path: str | None, revision: str) -> None:
    """Create the tables or migrate them to REVISION (default: the newest; +1: one step); at
    the newest, recreate tables and columns dropped by hand."""
    _migrate(config_path, revision, down=False)


@db.command(context_settings=REVISION_ARGUMENT)
@config_option
@click.argument("revision")
@logging_options
@reports_errors
def downgrade(config_path: str | None, revision: str) -> None:
    """Migrate the tables back to REVISION (-1: one step; `base` drops every authz-sync table)."""
    _migrate(config_path, revision, down=True)


def _migrate(config_path: str | None, revision: str, *, down: bool) -> None:
    engine = engine_for(load_database_settings(config_path))
    try:
        reached = revisions.migrate(engine, revision, down=down)
    finally:
        engine.dispose()
    # The revision reached, not the argument, which may be relative (-1, +2).
    if reached is None:
        state = "none (no authz-sync tables)"
    else:
        state = f"{reached} (the newest)" if reached == revisions.head_revision() else reached
    click.echo(f"database {describe(engine)} is at revision {state}")


@db.command()
@config_option
@logging_options
@reports_errors
def current(config_path: str | None) -> None:
    """Print the database's schema revision and the one this version needs; exit 78 unless
    they are the same (scripts can gate on it)."""
    settings = load_database_settings(config_path)
    engine = engine_for(settings)
    try:
        with database_errors(engine, "cannot read the revision of {}"), engine.connect() as c:
            revision = revisions.current_revision(c)
    finally:
        engine.dispose()
    head = revisions.head_revision()
    state = "up to date" if revision == head else "run `authz-sync db upgrade`"
    where = f" (schema {settings.schema})" if settings.schema else ""
    click.echo(f"database revision: {revision or 'none'}{where}; needed: {head} ({state})")
    if revision != head:
        sys.exit(EXIT_SCHEMA)


@db.command()
@logging_options
@reports_errors
def history() -> None:
    """List the schema migrations this version ships."""
    command.history(revisions.alembic_config())
