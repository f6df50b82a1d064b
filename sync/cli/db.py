"""`authz-sync db …`: the schema, managed by Alembic, on the configured database."""

from __future__ import annotations

import click
from alembic import command
from sqlalchemy.exc import SQLAlchemyError

from sync.cli.common import config_option, reports_errors
from sync.config import load_database_settings
from sync.errors import DatabaseError
from sync.sql import engine as database


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


@db.command()
@config_option
@click.argument("revision", default="head")
@reports_errors
def upgrade(config_path: str | None, revision: str) -> None:
    """Create the tables or migrate them to REVISION (default: the newest)."""
    engine = _engine(config_path)
    _guarded(lambda: database.upgrade(engine, revision), engine)
    click.echo(f"database {database.describe(engine)} is at revision {revision}")


@db.command()
@config_option
@click.argument("revision")
@reports_errors
def downgrade(config_path: str | None, revision: str) -> None:
    """Migrate the tables back to REVISION (`base` drops every authz-sync table)."""
    engine = _engine(config_path)
    _guarded(lambda: database.downgrade(engine, revision), engine)
    click.echo(f"database {database.describe(engine)} is at revision {revision}")


@db.command()
@config_option
@reports_errors
def current(config_path: str | None) -> None:
    """Print the database's schema revision and the one this version needs."""
    engine = _engine(config_path)

    def show() -> None:
        with engine.connect() as connection:
            revision = database.current_revision(connection)
        head = database.head_revision()
        state = "up to date" if revision == head else "run `authz-sync db upgrade`"
        where = f" (schema {schema})" if (schema := database.schema_of(engine)) else ""
        click.echo(f"database revision: {revision or 'none'}{where}; needed: {head} ({state})")

    _guarded(show, engine)


@db.command()
@reports_errors
def history() -> None:
    """List the schema migrations this version ships."""
    command.history(database.alembic_config())
