"""The schema's revision, owned by Alembic, and the one check of where a database stands.

`run` creates the schema on an empty database (nothing to lose), and refuses a database that is
behind or ahead with the command that fixes it: DDL on a shared database is the operator's call
(`authz-sync db upgrade`), never a side effect of a nightly job. The commands that only read
(`status`, `graph`, `backfill`) refuse an empty one too, and never create anything.

Alembic itself is imported only to migrate: a run that finds the schema current (every nightly
run) reads the revision with one query and compares it with `HEAD`, instead of paying a fifth
of a second to import Alembic and load every migration script.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, inspect, select
from sqlalchemy.schema import CreateSchema

from sync.errors import SchemaError
from sync.sql import schema
from sync.sql.engine import database_errors, describe, redacted, schema_of, sqlite_file_missing

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration's revision. tests/test_schema.py holds it equal to the scripts' head, so
# a new migration that is not named here fails the suite.
HEAD = "0005"
VERSION_TABLE = "alembic_version"  # Alembic's default, which the migrations' env.py keeps


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("sync.migrations")))
    if connection is not None:
        config.attributes["connection"] = connection
        config.set_main_option("sqlalchemy.url", redacted(connection.engine.url))
    return config


def head_revision() -> str:
    return HEAD


def current_revision(connection: Connection) -> str | None:
    """The revision Alembic recorded, as its MigrationContext reads it (None: no table, no row)."""
    where = schema_of(connection)
    if not inspect(connection).has_table(VERSION_TABLE, schema=where):
        return None
    version = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32)), schema=where)
    found = connection.execute(select(version.c.version_num)).scalars().all()
    if len(found) > 1:  # branches: this project's history is one line
        raise SchemaError(
            f"the database records {len(found)} schema revisions ({', '.join(sorted(found))}) "
            f"in {VERSION_TABLE}; authz-sync keeps one: delete the rows that are not "
            f"{HEAD} only if the tables are at {HEAD}, or ask for help"
        )
    return found[0] if found else None


def migrate(engine: Engine, revision: str = "head", *, down: bool = False) -> str | None:
    """Upgrade (or downgrade) to `revision`; returns the revision the database is then at."""
    from alembic import command

    with database_errors(engine), engine.begin() as connection:
        if down:
            command.downgrade(alembic_config(connection), revision)
        else:
            _create_schema(connection)
            command.upgrade(alembic_config(connection), revision)
            if revision == "head":
                _repair(connection)
        return current_revision(connection)


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    return migrate(engine, revision)


def downgrade(engine: Engine, revision: str) -> str | None:
    return migrate(engine, revision, down=True)


def _create_schema(connection: Connection) -> None:
    """The configured schema, if missing: only where tables are created (run, db upgrade).

    Looked up first: CREATE SCHEMA IF NOT EXISTS alone needs the CREATE privilege on the
    database even when the schema exists, and a DBA may have made it for a less trusted user.
    """
    name = schema_of(connection)
    if name and not inspect(connection).has_schema(name):
        connection.execute(CreateSchema(name, if_not_exists=True))


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands against this version's schema."""

    current: str | None  # its Alembic revision
    head: str  # the one this version needs
    has_tables: bool  # any authz_* table, tracked or not
    file_missing: bool = False  # a SQLite file that does not exist (yet)
    missing: tuple[str, ...] = ()  # at the head: tables and `table.column`s that are gone

    @property
    def is_current(self) -> bool:
        return self.current == self.head and not self.missing

    @property
    def is_empty(self) -> bool:
        return self.file_missing or (self.current is None and not self.has_tables)

    def problem(self) -> str | None:
        """Why this version cannot use the database as it is (None: it can, or it is empty)."""
        if self.is_current or self.is_empty:
            return None
        if self.missing:
            shown = ", ".join(self.missing[:5]) + (" …" if len(self.missing) > 5 else "")
            return (
                f"the database is at revision {self.current} but lacks {shown} (dropped by "
                f"hand?): run `authz-sync db upgrade`, which recreates what is missing"
            )
        if self.current is None:
            return (
                "the database has authz_* tables that Alembic does not track: "
                "drop them or point database.url at another database"
            )
        if self.current in _known_revisions():
            return (
                f"the database schema is at revision {self.current}, this version needs "
                f"{self.head}: run `authz-sync db upgrade`"
            )
        return (
            f"the database schema is at revision {self.current}, which this version of "
            f"authz-sync does not know: a newer authz-sync migrated it — upgrade authz-sync"
        )


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    return {script.revision for script in scripts}


def state_of(connection: Connection) -> SchemaState:
    inspector = inspect(connection)
    names = set(inspector.get_table_names(schema=schema_of(connection)))
    has_tables = any(name in schema.metadata.tables for name in names)
    current, head = current_revision(connection), head_revision()
    missing = _missing(inspector, names, schema_of(connection)) if current == head else ()
    return SchemaState(current, head, has_tables, missing=missing)


def _missing(inspector, names: set[str], where: str | None) -> tuple[str, ...]:
    """The model's tables and columns the database does not have: what a hand dropped."""
    found: list[str] = []
    for table in schema.metadata.sorted_tables:
        if table.name not in names:
            found.append(f"table {table.name}")
            continue
        columns = {column["name"] for column in inspector.get_columns(table.name, schema=where)}
        found += [f"column {table.name}.{c.name}" for c in table.columns if c.name not in columns]
    return tuple(found)


def _repair(connection: Connection) -> None:
    """What `db upgrade` does at the head: recreate the tables and nullable columns that are
    gone. A missing key or NOT NULL column cannot be added to rows that exist: say how."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    state = state_of(connection)
    tables = [t for t in schema.metadata.sorted_tables if f"table {t.name}" in state.missing]
    schema.metadata.create_all(connection, tables=tables)
    operations = Operations(MigrationContext.configure(connection))
    for entry in state.missing:
        if not entry.startswith("column "):
            continue
        table_name, column_name = entry.removeprefix("column ").split(".")
        column = schema.metadata.tables[table_name].c[column_name]
        if not column.nullable:
            raise SchemaError(
                f"{table_name}.{column_name} is gone and cannot be added to its rows: drop the "
                f"table {table_name} and run `authz-sync db upgrade` again to recreate it"
            )
        copy = Column(column.name, column.type, nullable=True, comment=column.comment)
        operations.add_column(table_name, copy, schema=schema_of(connection))


def state_of_engine(engine: Engine) -> SchemaState:
    """The state, without creating a missing SQLite file just to look at it."""
    if sqlite_file_missing(engine.url):
        return SchemaState(None, head_revision(), False, file_missing=True)
    with database_errors(engine), engine.connect() as connection:
        return state_of(connection)


def schema_is_current(engine: Engine) -> bool:
    """True at the head revision, False for an empty database; SchemaError otherwise."""
    state = state_of_engine(engine)
    if problem := state.problem():
        raise SchemaError(problem)
    return state.is_current


def ensure_schema(engine: Engine) -> None:
    """Create the schema on an empty database; refuse one that is behind, ahead or foreign."""
    if not schema_is_current(engine):
        upgrade(engine)


def require_current(state: SchemaState, engine: Engine, create_with: str) -> None:
    """For commands that only read: SchemaError, naming the fix, unless the schema is current."""
    if state.file_missing:
        raise SchemaError(
            f"the database file {engine.url.database} does not exist: check database.url "
            f"(AUTHZ_SYNC_DATABASE_URL), or create the tables with {create_with}"
        )
    if state.is_empty:
        raise SchemaError(
            f"the database {describe(engine)} has no authz-sync tables yet: run {create_with}"
        )
    if problem := state.problem():
        raise SchemaError(problem)
