"""Bulk-writing helpers every writer shares: counts, batches, dialect-native upserts, COPY.

No HTTP here. The caller owns the transaction: everything happens on its one connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite

from sync.errors import DatabaseError
from sync.sql.engine import qualified_name

T = TypeVar("T")
BATCH = 1000  # rows per statement: large enough to be fast, small enough for any driver


def copy_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    columns = [c.name for c in table.columns]
    as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
    statement = f"COPY {qualified_name(connection, table)} ({', '.join(columns)}) FROM STDIN"
    import psycopg  # only on PostgreSQL, where the driver is installed

    if not connection.in_transaction():
        # COPY goes past SQLAlchemy, which would not know the driver opened a transaction:
        # the caller's commit or rollback would then not reach it.
        connection.begin()
    try:
        cursor = connection.connection.driver_connection.cursor()
        with cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([_copy_value(row.get(n), n in as_json) for n in columns])
    except psycopg.Error as error:  # COPY bypasses SQLAlchemy: its errors arrive raw
        text = str(error).strip()
        raise DatabaseError(
            f"COPY into {table.name} failed: {text.splitlines()[0] if text else error!r}"
        ) from None


def _copy_value(value: Any, is_json: bool) -> Any:
    return json.dumps(value) if is_json and value is not None else value


def chunks(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items from any iterable (a generator included)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def execute_in_batches(connection: Connection, statement, rows: list[dict[str, Any]]) -> None:
    """One executemany per batch: bounded statement size on every driver."""
    for batch in chunks(rows):
        connection.execute(statement, batch)


def upsert_statement(connection: Connection, table: Table, keys: Sequence[str]):
    """INSERT … that updates the non-key columns of a row whose key already exists."""
    others = [c.name for c in table.columns if c.name not in keys]
    dialect = connection.dialect.name
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(table)
        # MySQL needs at least one assignment; a key-only table re-assigns its own key.
        return statement.on_duplicate_key_update(
            {name: statement.inserted[name] for name in others or keys}
        )
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"authz-sync does not support the {dialect} database")
    statement = insert(table)
    if not others:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in others}
    )
