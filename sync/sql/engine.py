"""Connecting to the database and keeping its schema where this version expects it.

Alembic owns the schema. `run` creates it on an empty database (nothing to lose), and refuses a
database that is behind or ahead with the command that fixes it: DDL on a shared database is the
operator's call (`authz-sync db upgrade`), never a side effect of a nightly job.

On PostgreSQL, `database.schema` puts every table, Alembic's version table included, in one
schema, so that several tenants share a database. The engine carries it as a
`schema_translate_map` ({None: schema}), so every statement built from sync.schema names it;
code that writes SQL by hand (COPY) asks `qualified_name`; `schema_of` tells anyone else.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from urllib.request import pathname2url

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateSchema

from sync.errors import DatabaseError, SchemaError
from sync.sql import schema


def redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def open_engine(url: URL, read_only: bool = False, schema: str | None = None) -> Engine:
    """An engine; `read_only` (dry runs) also keeps SQLite from changing its file at all;
    `schema` (PostgreSQL) is where every table is read and written."""
    options = {}
    if read_only and url.get_backend_name() == "sqlite" and url.database:
        # mode=ro refuses every write to the file, yet lets the connection keep temporary
        # tables (in its own temporary database), which planning needs.
        file_uri = f"file:{pathname2url(os.path.abspath(url.database))}?mode=ro"
        options["creator"] = lambda: sqlite3.connect(file_uri, uri=True, check_same_thread=False)
    if schema:
        options["execution_options"] = {"schema_translate_map": {None: schema}}
    engine = create_engine(url, pool_pre_ping=True, **options)
    if engine.dialect.name == "sqlite":
        pragmas = SQLITE_READ_ONLY if read_only else SQLITE_PRAGMAS
        event.listen(engine, "connect", lambda dbapi, _record: _run_pragmas(dbapi, pragmas))
    return engine


def begin_writing(connection: Connection) -> None:
    """Start the transaction that plans and writes. On SQLite it takes the write lock at once
    (BEGIN IMMEDIATE), waiting up to busy_timeout for another writer: a transaction that read
    first could not wait later, as SQLite refuses at once to turn a read snapshot into a
    write while someone else writes."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def scratch_engine() -> Iterator[Engine]:
    """An empty schema in a throwaway SQLite file: what a dry run plans against when the
    configured database has no schema yet (and must not get one from a dry run)."""
    with tempfile.TemporaryDirectory(prefix="authz-sync-") as directory:
        engine = open_engine(URL.create("sqlite", database=os.path.join(directory, "plan.db")))
        try:
            schema.metadata.create_all(engine)
            yield engine
        finally:
            engine.dispose()


# Wait for a concurrent writer instead of failing at once; WAL lets analysts read while a sync
# writes.
SQLITE_PRAGMAS = ("PRAGMA busy_timeout = 30000", "PRAGMA journal_mode = WAL")
SQLITE_READ_ONLY = ("PRAGMA busy_timeout = 30000",)


def schema_of(bind: Engine | Connection) -> str | None:
    """The schema that holds the tables (database.schema), or None for the default one."""
    return (bind.get_execution_options().get("schema_translate_map") or {}).get(None)


def describe(engine: Engine) -> str:
    """The database for messages: its URL, password hidden, and the schema when one is set."""
    where = schema_of(engine)
    return f"{redacted(engine.url)} (schema {where})" if where else redacted(engine.url)


def qualified_name(connection: Connection, table: Table) -> str:
    """The table's name for hand-written SQL, quoted as needed, in its own schema (a temporary
    twin's) or else the configured one: what the schema_translate_map does for the rest."""
    preparer = connection.dialect.identifier_preparer
    where, name = table.schema or schema_of(connection), preparer.quote(table.name)
    return f"{preparer.quote_schema(where)}.{name}" if where else name


def has_authz_tables(connection: Connection) -> bool:
    """Whether any table of sync.schema exists where this connection looks for them."""
    names = inspect(connection).get_table_names(schema=schema_of(connection))
    return any(name in schema.metadata.tables for name in names)


def _run_pragmas(dbapi_connection, pragmas: tuple[str, ...]) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in pragmas:
        cursor.execute(pragma)
    cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("sync.migrations")))
    if connection is not None:
        config.attributes["connection"] = connection
        config.set_main_option("sqlalchemy.url", redacted(connection.engine.url))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    options = {"version_table_schema": schema_of(connection)}
    return MigrationContext.configure(connection, opts=options).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        _create_schema(connection)
        command.upgrade(alembic_config(connection), revision)


def _create_schema(connection: Connection) -> None:
    """The configured schema, if missing: only where tables are created (run, db upgrade).

    Looked up first: CREATE SCHEMA IF NOT EXISTS alone needs the CREATE privilege on the
    database even when the schema exists, and a DBA may have made it for a less trusted user.
    """
    name = schema_of(connection)
    if name and not inspect(connection).has_schema(name):
        connection.execute(CreateSchema(name, if_not_exists=True))


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def ensure_schema(engine: Engine) -> None:
    """Create the schema on an empty database; refuse one that is behind, ahead or foreign."""
    if not schema_is_current(engine):
        upgrade(engine)


def schema_is_current(engine: Engine) -> bool:
    """True at the head revision, False for an empty database; SchemaError otherwise."""
    if _missing_sqlite_file(engine):
        return False  # do not create the file just to look at it
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
            has_tables = has_authz_tables(connection)
    except SQLAlchemyError as error:
        raise DatabaseError(
            f"cannot use the database {describe(engine)}: {first_line(error)}"
        ) from None
    head = head_revision()
    if current == head:
        return True
    if current is None and not has_tables:
        return False
    raise SchemaError(schema_problem(current, head))


def _missing_sqlite_file(engine: Engine) -> bool:
    database = engine.url.database
    return engine.dialect.name == "sqlite" and bool(database) and not os.path.exists(database)


def schema_problem(current: str | None, head: str) -> str:
    if current is None:
        return (
            "the database has authz_* tables that Alembic does not track: "
            "drop them or point database.url at another database"
        )
    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    if current in known:
        return (
            f"the database schema is at revision {current}, this version needs {head}: "
            f"run `authz-sync db upgrade`"
        )
    return (
        f"the database schema is at revision {current}, which this version of authz-sync does "
        f"not know: a newer authz-sync migrated it — upgrade authz-sync"
    )


def first_line(error: BaseException) -> str:
    """The driver's own message, first line only: no SQL, no parameters (they may hold data)."""
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__


@contextmanager
def database_errors(engine: Engine) -> Iterator[None]:
    """SQLAlchemy errors as DatabaseError (exit 74) naming the database, password hidden."""
    try:
        yield
    except SQLAlchemyError as error:
        raise DatabaseError(
            f"cannot use the database {describe(engine)}: {first_line(error)}"
        ) from None
