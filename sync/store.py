"""Make each synced table equal to a set of rows, writing only what changed. No HTTP here.

For each table (in schema.SYNCED_TABLES order) the current rows are read and compared with the
new ones by key; changed and new rows go through one dialect-native batched upsert
(ON CONFLICT … DO UPDATE on PostgreSQL and SQLite, ON DUPLICATE KEY UPDATE on MySQL/MariaDB),
rows that disappeared from the source are deleted by key. The caller owns the transaction:
everything here happens on one connection inside it, so a run lands whole or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, Connection, Table, and_, bindparam, delete, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from . import schema
from .errors import DatabaseError

T = TypeVar("T")
BATCH = 1000  # rows per statement: large enough to be fast, small enough for any driver
COPY_FROM = 1000  # PostgreSQL: new rows from this many on go through COPY
BOOKKEEPING = {"changed_at"}


@dataclass
class TableCount:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class TablePlan:
    """What one table needs: rows to insert, rows to update, rows to delete, and the counts.

    `updates` holds (before, after) pairs and `deletes` whole rows as they were: the history
    and the change log are written from them.
    """

    table: Table
    keys: Sequence[str]
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)
    count: TableCount = field(default_factory=TableCount)
    rows_before: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserts or self.updates or self.deletes)

    # The same questions a staging.StagedPlan answers, so callers need not know which it is.
    def inserted_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._in_key_order(self.inserts)[:limit]

    def deleted_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._in_key_order(self.deletes)[:limit]

    def updated_pairs(self, limit: int | None = None) -> list[tuple[dict, dict]]:
        return sorted(self.updates, key=lambda pair: self._key(pair[1]))[:limit]

    def change_rows(self) -> Iterator[tuple[str, dict | None, dict | None]]:
        """(operation, before, after) for every change."""
        yield from (("insert", None, row) for row in self.inserts)
        yield from (("update", before, after) for before, after in self.updates)
        yield from (("delete", row, None) for row in self.deletes)

    def write(self, connection: Connection, now: datetime) -> None:
        inserts = [_with_bookkeeping(self.table, row, now) for row in self.inserts]
        updates = [_with_bookkeeping(self.table, after, now) for _, after in self.updates]
        if connection.dialect.name == "postgresql" and len(inserts) >= COPY_FROM:
            # New keys by construction (planned in this transaction, under the run lock):
            # COPY, PostgreSQL's bulk path, needs no conflict handling.
            copy_rows(connection, self.table, inserts)
        else:
            updates = inserts + updates
        _upsert(connection, self.table, self.keys, updates)
        _delete(connection, self.table, self.keys, self.deletes)

    def _key(self, row: dict[str, Any]) -> tuple:
        return tuple(row[k] for k in self.keys)

    def _in_key_order(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(rows, key=self._key)


def plan_tables(
    connection: Connection,
    tables: dict[str, list[dict[str, Any]]],
    keys_by_table: dict[str, tuple[str, ...]],
) -> dict[str, TablePlan]:
    """Compare each table with its new rows; reads only."""
    return {
        name: plan_table(connection, schema.metadata.tables[name], keys, tables[name])
        for name, keys in keys_by_table.items()
    }


def plan_table(
    connection: Connection, table: Table, keys: Sequence[str], rows: list[dict[str, Any]]
) -> TablePlan:
    compared = [c.name for c in table.columns if c.name not in BOOKKEEPING]
    # Plain tuples, not mappings: a no-op run compares every row, so this is its hot path.
    stored = connection.execute(select(*(table.c[name] for name in compared)))
    at = [compared.index(k) for k in keys]
    current = {tuple(row[i] for i in at): tuple(row) for row in stored}
    plan = TablePlan(table, keys, count=TableCount(fetched=len(rows)), rows_before=len(current))
    for row in rows:
        before = current.pop(tuple(row[k] for k in keys), None)
        if before is None:
            plan.inserts.append(row)
        elif before != tuple(row[name] for name in compared):
            plan.updates.append((dict(zip(compared, before, strict=True)), row))
        else:
            plan.count.unchanged += 1
    # What is left was not in the source.
    plan.deletes = [dict(zip(compared, before, strict=True)) for before in current.values()]
    plan.count.inserted = len(plan.inserts)
    plan.count.updated = len(plan.updates)
    plan.count.deleted = len(plan.deletes)
    return plan


def changed_columns(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The columns an update changes (bookkeeping excluded), for the change log and dry runs."""
    return [n for n in after if n not in BOOKKEEPING and before.get(n) != after[n]]


def write_plans(connection: Connection, plans: dict, now: datetime) -> None:
    """Write every plan on the caller's connection (and so inside its transaction)."""
    for plan in plans.values():
        plan.write(connection, now)


def copy_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    columns = [c.name for c in table.columns]
    as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
    statement = f"COPY {table.fullname} ({', '.join(columns)}) FROM STDIN"
    import psycopg  # only on PostgreSQL, where the driver is installed

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


def _with_bookkeeping(table: Table, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return row | {"changed_at": now} if "changed_at" in table.c else row


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def execute_in_batches(connection: Connection, statement, rows: list[dict[str, Any]]) -> None:
    """One executemany per batch: bounded statement size on every driver."""
    for batch in batches(rows):
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


def _upsert(connection: Connection, table: Table, keys: Sequence[str], rows: list[dict]) -> None:
    if not rows:
        return
    execute_in_batches(connection, upsert_statement(connection, table, keys), rows)


def _delete(connection: Connection, table: Table, keys: Sequence[str], rows: list[dict]) -> None:
    if not rows:
        return
    statement = delete(table).where(and_(*(table.c[k] == bindparam(f"old_{k}") for k in keys)))
    for batch in batches(rows):
        connection.execute(statement, [{f"old_{k}": row[k] for k in keys} for row in batch])
