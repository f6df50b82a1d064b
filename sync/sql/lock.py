"""One run at a time per database: the second run exits at once (exit 75) instead of waiting.

- PostgreSQL: a session advisory lock (per database, and per schema with database.schema, so
  that tenants in two schemas of one database run side by side);
- MySQL/MariaDB: GET_LOCK on a name that includes the database (the lock is server-wide);
- SQLite: flock on `<database file>.lock`.
All three belong to the process's connection or file descriptor, so a run killed with kill -9
leaves no lock behind: the server (or the kernel) releases it when the process is gone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from sync.errors import DatabaseError, RunLockedError
from sync.sql.engine import schema_of

LOCK_NAME = "authz-sync"


def _busy(where: str) -> RunLockedError:
    return RunLockedError(
        f"another authz-sync run is using {where}: skipped, this run did nothing (the next "
        f"one goes ahead)"
    )


@contextmanager
def run_lock(engine: Engine, where: str) -> Iterator[None]:
    """Hold the database's run lock for the duration of the block, or raise RunLockedError."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        with _file_lock(engine.url.database, where):
            yield
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if dialect == "postgresql":
            with _advisory_lock(connection, where):
                yield
        elif dialect in ("mysql", "mariadb"):
            with _named_lock(connection, where):
                yield
        else:
            raise NotImplementedError(f"no run lock for the {dialect} database")


def _lock_key(schema: str | None = None) -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock, one per schema of the database.

    `public` keeps the key of versions that knew no schemas, so that an old and a new job on
    the same tables still exclude each other.
    """
    name = LOCK_NAME if schema in (None, "public") else f"{LOCK_NAME}:{schema}"
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def _advisory_lock(connection: Connection, where: str) -> Iterator[None]:
    # The schema the tables are in: the configured one, else the first of the search_path, so
    # that `schema = "public"` and no setting at all lock the same tables with the same key.
    schema = schema_of(connection) or connection.scalar(text("SELECT current_schema()"))
    key = _lock_key(schema)
    if not connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
        raise _busy(where)
    try:
        yield
    finally:
        _release(connection, text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextmanager
def _named_lock(connection: Connection, where: str) -> Iterator[None]:
    database = connection.scalar(text("SELECT DATABASE()")) or ""
    # GET_LOCK names are server-wide and at most 64 characters: hash long database names.
    name = f"{LOCK_NAME}:{hashlib.sha256(database.encode()).hexdigest()[:40]}"
    if connection.scalar(text("SELECT GET_LOCK(:name, 0)"), {"name": name}) != 1:
        raise _busy(where)
    try:
        yield
    finally:
        _release(connection, text("SELECT RELEASE_LOCK(:name)"), {"name": name})


def _release(connection: Connection, statement, params: dict) -> None:
    # A dead connection took the lock with it; keep the error that got us here.
    with suppress(SQLAlchemyError):
        connection.execute(statement, params)


@contextmanager
def _file_lock(database: str | None, where: str) -> Iterator[None]:
    if not database or database == ":memory:":
        yield  # a private in-memory database cannot be shared
        return
    import fcntl  # POSIX only; imported here so that the module loads everywhere

    path = Path(database).with_name(Path(database).name + ".lock")
    try:
        handle = open(path, "a")  # noqa: SIM115 - closed by the with below
    except OSError as error:
        raise DatabaseError(f"cannot create the lock file {path}: {error.strerror}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(where) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
