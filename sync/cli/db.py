"""`authz-sync db …`: the schema, managed by Alembic, on the configured database."""

from __future__ import annotations

import click
from alembic import command

from sync.cli.common import config_option, logging_options, reports_errors
from sync.config import load_database_settings
from sync.sql import revisions
from sync.sql.engine import database_errors, describe, engine_for


@click.group()
def db() -> None:
    """Create, upgrade and inspect the database schema (database.url / AUTHZ_SYNC_DATABASE_URL,
    in database.schema / AUTHZ_SYNC_DATABASE_SCHEMA on PostgreSQL)."""


@db.command()
@config_option
@click.argument("revision", default="head")
@logging_options
@reports_errors
def upgrade(config_path: str | None, revision: str) -> None:
    """Create the tables or migrate them to REVISION (default: the newest)."""
    _migrate(config_path, revision, down=False)


@db.command()
@config_option
@click.argument("revision")
@logging_options
@reports_errors
def downgrade(config_path: str | None, revision: str) -> None:
    """Migrate the tables back to REVISION (`base` drops every authz-sync table)."""
    _migrate(config_path, revision, down=True)


def _migrate(config_path: str | None, revision: str, *, down: bool) -> None:
    engine = engine_for(load_database_settings(config_path))
    try:
        revisions.migrate(engine, revision, down=down)
        click.echo(f"database {describe(engine)} is at revision {revision}")
    finally:
        engine.dispose()


@db.command()
@config_option
@logging_options
@reports_errors
def current(config_path: str | None) -> None:
    """Print the database's schema revision and the one this version needs."""
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


@db.command()
@logging_options
@reports_errors
def history() -> None:
    """List the schema migrations this version ships."""
    command.history(revisions.alembic_config())
