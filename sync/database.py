"""Connecting to the database and keeping its schema where this version expects it.

Alembic owns the schema. `run` creates it on an empty database (nothing to lose), and refuses a
database that is behind or ahead with the command that fixes it: DDL on a shared database is the
operator's call (`authz-sync db upgrade`), never a side effect of a nightly job.
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
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from . import schema
from .errors import DatabaseError, SchemaError


def redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def open_engine(url: URL, read_only: bool = False) -> Engine:
    """An engine; `read_only` (dry runs) also keeps SQLite from changing its file at all."""
    options = {}
    if read_only and url.get_backend_name() == "sqlite" and url.database:
        # mode=ro refuses every write to the file, yet lets the connection keep temporary
        # tables (in its own temporary database), which planning needs.
        file_uri = f"file:{pathname2url(os.path.abspath(url.database))}?mode=ro"
        options["creator"] = lambda: sqlite3.connect(file_uri, uri=True, check_same_thread=False)
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
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


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
            has_tables = any(
                name in schema.metadata.tables for name in inspect(connection).get_table_names()
            )
    except SQLAlchemyError as error:
        raise DatabaseError(
            f"cannot use the database {redacted(engine.url)}: {first_line(error)}"
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
            f"cannot use the database {redacted(engine.url)}: {first_line(error)}"
        ) from None
