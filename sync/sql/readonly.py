"""Opening the database for the commands that only read it (`graph`, `status`).

They must leave the database as they found it: unlike `run`, they never create the schema on an
empty database, and a typo in a SQLite path must not leave a new empty file behind. A database
whose schema is not the one this version reads is refused with the command that fixes it, the
same way `run` refuses it, so the operator meets one rule and one message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from sync.config import load_database_settings
from sync.errors import DatabaseError, SchemaError
from sync.sql import engine as database


def open_engine(config_path: str | None) -> Engine:
    """The configured database's engine, refusing a SQLite file that does not exist.

    A missing database.schema is not created either: it reads as a database without tables.
    """
    settings = load_database_settings(config_path)
    _refuse_missing_sqlite_file(settings.url)
    return database.open_engine(settings.url, schema=settings.schema)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose queries all see one committed state, on a schema this version reads.

    Several queries make one picture (the group graph joins four tables); a sync committing
    between them must not mix two states. Database failures become DatabaseError (exit 74), so
    the operator gets a message and not an "internal error". The engine is disposed afterwards.
    """
    try:
        with engine.connect() as connection:
            _one_snapshot(connection)
            check_schema(connection, database.describe(engine))
            yield connection
    except SQLAlchemyError as error:
        raise DatabaseError(
            f"cannot use the database {database.describe(engine)}: {database.first_line(error)}"
        ) from None
    finally:
        engine.dispose()


def _one_snapshot(connection: Connection) -> None:
    """Make the reads of this connection share one snapshot, on each database's terms."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # READ COMMITTED, the default, takes a new snapshot per statement.
        connection.execution_options(isolation_level="REPEATABLE READ")
    elif dialect == "sqlite":
        # pysqlite opens no transaction for a SELECT, so each query would see the latest
        # commit; an explicit BEGIN holds one WAL snapshot until the connection rolls back.
        connection.exec_driver_sql("BEGIN")
    # MySQL/MariaDB: REPEATABLE READ is the default; the first read fixes the snapshot.


def check_schema(connection: Connection, where: str) -> None:
    """Raise SchemaError, naming the fix, unless the schema is at this version's revision."""
    current, head = database.current_revision(connection), database.head_revision()
    if current == head:
        return
    if current is None and not database.has_authz_tables(connection):
        raise SchemaError(
            f"the database {where} has no authz-sync tables yet: "
            f"run `authz-sync db upgrade` (or `authz-sync run`, which creates them)"
        )
    # One wording for behind / ahead / foreign, shared with `run`.
    raise SchemaError(database.schema_problem(current, head))


def _refuse_missing_sqlite_file(url: URL) -> None:
    """SQLite creates a missing file on connect; for a reader that only hides a wrong path."""
    if url.get_backend_name() != "sqlite":
        return
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    if not Path(path).exists():
        raise SchemaError(
            f"the database file {path} does not exist: check database.url "
            f"(AUTHZ_SYNC_DATABASE_URL), or create the tables with `authz-sync db upgrade`"
        )
