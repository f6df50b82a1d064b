"""Connecting to the database: engines, SQLite pragmas, names for hand-written SQL, and the one
place where a SQLAlchemy error becomes a DatabaseError (exit 74) naming the database.

On PostgreSQL, `database.schema` puts every table, Alembic's version table included, in one
schema, so that several tenants share a database. The engine carries it as a
`schema_translate_map` ({None: schema}), so every statement built from sql/schema.py names it;
code that writes SQL by hand (COPY) asks `qualified_name`; `schema_of` tells anyone else.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.request import pathname2url

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from sync.config import DatabaseSettings
from sync.errors import DatabaseError
from sync.sql import schema

# Wait for a concurrent writer instead of failing at once; WAL lets analysts read while a sync
# writes.
SQLITE_PRAGMAS = ("PRAGMA busy_timeout = 30000", "PRAGMA journal_mode = WAL")
SQLITE_READ_ONLY = ("PRAGMA busy_timeout = 30000",)


def redacted(url: URL | str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def open_engine(url: URL | str, read_only: bool = False, schema: str | None = None) -> Engine:
    """An engine; `read_only` (dry runs) also keeps SQLite from changing its file at all;
    `schema` (PostgreSQL) is where every table is read and written."""
    url = make_url(url)
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


def engine_for(database: DatabaseSettings, read_only: bool = False) -> Engine:
    return open_engine(database.url, read_only=read_only, schema=database.schema)


def _run_pragmas(dbapi_connection, pragmas: tuple[str, ...]) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in pragmas:
        cursor.execute(pragma)
    cursor.close()


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


def sqlite_file_missing(url: URL) -> bool:
    """A SQLite URL naming a file that does not exist (connecting would create it)."""
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return False
    return not path.startswith("file:") and not os.path.exists(path)


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


def first_line(error: BaseException) -> str:
    """The driver's own message, first line only: no SQL, no parameters (they may hold data)."""
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__


@contextmanager
def database_errors(engine: Engine, doing: str = "cannot use the database {}") -> Iterator[None]:
    """SQLAlchemy errors as DatabaseError (exit 74) naming the database, password hidden:
    `{doing, the database in its braces}: {the driver's first line}`."""
    try:
        yield
    except SQLAlchemyError as error:
        raise DatabaseError(f"{doing.format(describe(engine))}: {first_line(error)}") from None
