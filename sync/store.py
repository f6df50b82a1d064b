"""Make each synced table equal to a set of rows, writing only what changed. No HTTP here.

For each table (in schema.SYNCED_TABLES order) the current rows are read and compared with the
new ones by key; changed and new rows go through one dialect-native batched upsert
(ON CONFLICT … DO UPDATE on PostgreSQL and SQLite, ON DUPLICATE KEY UPDATE on MySQL/MariaDB),
rows that disappeared from the source are deleted by key. The caller owns the transaction:
everything here happens on one connection inside it, so a run lands whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from . import schema

BATCH = 1000  # rows per statement: large enough to be fast, small enough for any driver
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
    """What one table needs: rows to insert or update, keys to delete, and the counts."""

    table: Table
    keys: Sequence[str]
    upserts: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)
    count: TableCount = field(default_factory=TableCount)
    rows_before: int = 0


def plan_tables(
    connection: Connection, tables: dict[str, list[dict[str, Any]]]
) -> dict[str, TablePlan]:
    """Compare every synced table with its new rows; reads only."""
    return {
        name: plan_table(connection, schema.metadata.tables[name], keys, tables[name])
        for name, keys in schema.SYNCED_TABLES.items()
    }


def plan_table(
    connection: Connection, table: Table, keys: Sequence[str], rows: list[dict[str, Any]]
) -> TablePlan:
    compared = [c.name for c in table.columns if c.name not in BOOKKEEPING]
    current = {
        tuple(row[k] for k in keys): row
        for row in connection.execute(select(*(table.c[name] for name in compared))).mappings()
    }
    plan = TablePlan(table, keys, count=TableCount(fetched=len(rows)), rows_before=len(current))
    wanted: set[tuple] = set()
    for row in rows:
        key = tuple(row[k] for k in keys)
        wanted.add(key)
        before = current.get(key)
        if before is None:
            plan.count.inserted += 1
        elif any(before[name] != row[name] for name in compared):
            plan.count.updated += 1
        else:
            plan.count.unchanged += 1
            continue
        plan.upserts.append(row)
    plan.deletes = [dict(zip(keys, key, strict=True)) for key in current if key not in wanted]
    plan.count.deleted = len(plan.deletes)
    return plan


def write_plans(connection: Connection, plans: dict[str, TablePlan], now: datetime) -> None:
    """Write every plan on the caller's connection (and so inside its transaction)."""
    for plan in plans.values():
        rows = [_with_bookkeeping(plan.table, row, now) for row in plan.upserts]
        _upsert(connection, plan.table, plan.keys, rows)
        _delete(connection, plan.table, plan.keys, plan.deletes)


def _with_bookkeeping(table: Table, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return row | {"changed_at": now} if "changed_at" in table.c else row


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


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
    statement = upsert_statement(connection, table, keys)
    for batch in _batches(rows):
        connection.execute(statement, batch)


def _delete(connection: Connection, table: Table, keys: Sequence[str], rows: list[dict]) -> None:
    if not rows:
        return
    statement = delete(table).where(and_(*(table.c[k] == bindparam(f"old_{k}") for k in keys)))
    for batch in _batches(rows):
        connection.execute(statement, [{f"old_{k}": row[k] for k in keys} for row in batch])
