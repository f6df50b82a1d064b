"""Connecting to the database: engines, SQLite pragmas, names for hand-written SQL, and the one
place where a SQLAlchemy error becomes a DatabaseError (exit 74) naming the database.

On PostgreSQL, `database.schema` puts every table, Alembic's version table included, in one
schema, so that several tenants share a database. The engine carries it as a
`schema_translate_map` ({None: schema}), so every statement built from sql/schema.py names it;
code that writes SQL by hand (COPY) asks `qualified_name`; `schema_of` tells anyone else.
"""

from __future__ import annotations

import math
import os
import re
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

# WAL lets analysts read while a sync writes.
SQLITE_PRAGMAS = ("PRAGMA journal_mode = WAL",)
LOCK_TIMEOUT = 60.0  # seconds: database.lock_timeout's default
# What each database answers when a lock wait ran out: PostgreSQL's SQLSTATE, MySQL's error
# number, SQLite's message (its busy_timeout ran out).
PG_LOCK_NOT_AVAILABLE, MYSQL_LOCK_WAIT_TIMEOUT = "55P03", 1205


def redacted(url: URL | str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def open_engine(
    url: URL | str,
    read_only: bool = False,
    schema: str | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Engine:
    """An engine; `read_only` (dry runs) also keeps SQLite from changing its file at all;
    `schema` (PostgreSQL) is where every table is read and written; no statement waits longer
    than `lock_timeout` seconds for a lock another session holds."""
    url = make_url(url)
    options: dict = {"connect_args": _lock_wait(url.get_backend_name(), lock_timeout)}
    if read_only and url.get_backend_name() == "sqlite" and url.database:
        # mode=ro refuses every write to the file, yet lets the connection keep temporary
        # tables (in its own temporary database), which planning needs.
        file_uri = f"file:{pathname2url(os.path.abspath(url.database))}?mode=ro"
        timeout = options.pop("connect_args")["timeout"]
        options["creator"] = lambda: sqlite3.connect(
            file_uri, uri=True, check_same_thread=False, timeout=timeout
        )
    if schema:
        options["execution_options"] = {"schema_translate_map": {None: schema}}
    engine = create_engine(url, pool_pre_ping=True, **options)
    engine.lock_timeout = lock_timeout  # for the message when a wait runs out
    if engine.dialect.name == "sqlite" and not read_only:
        event.listen(engine, "connect", lambda dbapi, _: _run_pragmas(dbapi, SQLITE_PRAGMAS))
    return engine


def _lock_wait(backend: str, seconds: float) -> dict:
    """The driver's setting for how long a statement waits for a lock."""
    if backend == "postgresql":
        return {"options": f"-c lock_timeout={int(seconds * 1000)}"}
    if backend in ("mysql", "mariadb"):
        whole = max(1, math.ceil(seconds))  # both variables take whole seconds
        init = f"SET SESSION innodb_lock_wait_timeout = {whole}, lock_wait_timeout = {whole}"
        return {"init_command": init}
    return {"timeout": seconds}  # sqlite3: its busy timeout


def engine_for(database: DatabaseSettings, read_only: bool = False) -> Engine:
    return open_engine(database.url, read_only, database.schema, database.lock_timeout)


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
    `{doing, the database in its braces}: {the driver's first line}`; a lock wait that ran
    out also says which table it waited for, and how long."""
    try:
        yield
    except SQLAlchemyError as error:
        if interrupt := _interrupt_behind(error):
            # A signal stopped a statement and invalidated the connection; cleaning up on it
            # then fails. The signal is what happened: it rolls back and exits 130/143.
            raise interrupt from None
        cause = first_line(error)
        if _lock_wait_ran_out(error):
            waited = getattr(engine, "lock_timeout", LOCK_TIMEOUT)
            cause = (
                f"waited {waited:g} s for a lock on {_table_of(error)} that another session "
                f"holds (database.lock_timeout); nothing was written ({cause})"
            )
        raise DatabaseError(f"{doing.format(describe(engine))}: {cause}") from None


def _interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The interrupt (SIGINT, SIGTERM) during whose handling `error` was raised, if any."""
    seen = error.__context__
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__context__
    return None


def _lock_wait_ran_out(error: SQLAlchemyError) -> bool:
    original = getattr(error, "orig", None)
    if getattr(original, "sqlstate", None) == PG_LOCK_NOT_AVAILABLE:
        return True
    if getattr(original, "args", None) and original.args[0] == MYSQL_LOCK_WAIT_TIMEOUT:
        return True
    return isinstance(original, sqlite3.OperationalError) and "locked" in str(original)


TABLE_IN_SQL = re.compile(
    r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+[`\"]?(?:\w+[`\"]?\.[`\"]?)?(\w+)", re.I
)


def _table_of(error: SQLAlchemyError) -> str:
    """The first table the failed statement names (the statement itself is never shown: its
    parameters may hold data)."""
    found = TABLE_IN_SQL.search(getattr(error, "statement", None) or "")
    return found.group(1) if found else "a table"
