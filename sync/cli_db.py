"""`authz-sync db …`: the schema, managed by Alembic, on the configured database."""

from __future__ import annotations

import sys

import click
from alembic import command
from sqlalchemy.exc import SQLAlchemyError

from . import database
from .cli_common import config_option, reports_errors
from .config import load_database_settings
from .errors import EXIT_SCHEMA, DatabaseError

# `-1` is a revision here (Alembic's "one step back"), not an unknown option.
REVISION_ARGUMENT = {"ignore_unknown_options": True}


def _engine(config_path: str | None):
    settings = load_database_settings(config_path)
    return database.open_engine(settings.url, schema=settings.schema)


def _guarded(step, engine) -> None:
    try:
        step()
    except SQLAlchemyError as error:
        raise DatabaseError(f"{database.describe(engine)}: {database.first_line(error)}") from None
    finally:
        engine.dispose()


@click.group()
def db() -> None:
    """Create, upgrade and inspect the database schema (database.url / AUTHZ_SYNC_DATABASE_URL,
    in database.schema / AUTHZ_SYNC_DATABASE_SCHEMA on PostgreSQL)."""


def _migrate(step, engine) -> None:
    """Run the migration, then say which revision the database is at now (not the argument,
    which may be relative: -1, +2)."""

    def migrate_and_report() -> None:
        step()
        with engine.connect() as connection:
            reached = database.current_revision(connection)
        if reached is None:
            state = "none (no authz-sync tables)"
        else:
            state = f"{reached} (the newest)" if reached == database.head_revision() else reached
        click.echo(f"database {database.describe(engine)} is at revision {state}")

    _guarded(migrate_and_report, engine)


@db.command(context_settings=REVISION_ARGUMENT)
@config_option
@click.argument("revision", default="head")
@reports_errors
def upgrade(config_path: str | None, revision: str) -> None:
    """Create the tables or migrate them to REVISION (default: the newest; +1: one step)."""
    engine = _engine(config_path)
    _migrate(lambda: database.upgrade(engine, revision), engine)


@db.command(context_settings=REVISION_ARGUMENT)
@config_option
@click.argument("revision")
@reports_errors
def downgrade(config_path: str | None, revision: str) -> None:
    """Migrate the tables back to REVISION (-1: one step; `base` drops every authz-sync table)."""
    engine = _engine(config_path)
    _migrate(lambda: database.downgrade(engine, revision), engine)


@db.command()
@config_option
@reports_errors
def current(config_path: str | None) -> None:
    """Print the database's schema revision and the one this version needs; exit 78 unless
    they are the same (scripts can gate on it)."""
    engine = _engine(config_path)
    at_head = []

    def show() -> None:
        with engine.connect() as connection:
            revision = database.current_revision(connection)
        head = database.head_revision()
        state = "up to date" if revision == head else "run `authz-sync db upgrade`"
        where = f" (schema {schema})" if (schema := database.schema_of(engine)) else ""
        click.echo(f"database revision: {revision or 'none'}{where}; needed: {head} ({state})")
        at_head.append(revision == head)

    _guarded(show, engine)
    if not all(at_head):
        sys.exit(EXIT_SCHEMA)


@db.command()
@reports_errors
def history() -> None:
    """List the schema migrations this version ships."""
    command.history(database.alembic_config())
