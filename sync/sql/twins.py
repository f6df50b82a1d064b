"""Every table a run writes is compared with its new rows in the database, not in memory.

The new rows stream, batch by batch, into a *twin*: a temporary table with the same columns
and key. Temporary tables are private to the run's connection and vanish with it, so a dry run
leaves nothing behind either. The twin is then compared with the real table by set-based
statements (new keys, keys gone, keys whose columns differ), and a run applies the difference
with one INSERT … SELECT, one UPDATE … FROM and one DELETE … WHERE NOT EXISTS.
Memory therefore stays flat however many users a tenant has.

Every synced table goes this way, so there is one way to compare and write; history.py writes
the link history and the change log from the same difference, before it is applied.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    MetaData,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.schema import AddConstraint, DropConstraint

from sync.model import BOOKKEEPING, TableCount
from sync.sql import schema
from sync.sql.bulk import chunks, copy_rows, execute_in_batches, upsert_statement
from sync.sql.engine import qualified_name
from sync.sql.ledger import utcnow

PAGE = 1000  # rows per keyset page when change-log rows are read back
STAGE_BATCH = 5000  # rows handed to one COPY or batched upsert
# Where temporary tables live: naming it keeps a twin from ever resolving to (or being dropped
# as) a real table of the same name, whatever schema the real tables are in.
TEMPORARY_SCHEMA = {"postgresql": "pg_temp", "sqlite": "temp"}
# Where DDL is part of the transaction, so that a failed run rolls a dropped index back.
# MySQL and MariaDB commit on DROP INDEX: there a table is loaded with its indexes in place.
TRANSACTIONAL_DDL = ("postgresql", "sqlite")
# Where the key itself can go for the load and be built after it (SQLite cannot drop a key).
DEFERRED_KEY = ("postgresql",)


class StagedTable:
    """A temporary twin of `table`, filled with the run's new rows.

    `into_empty_table`: the table is known to be empty inside the run's write transaction
    (a first load). Then there is nothing to compare, and the rows go straight into the table:
    one bulk load instead of two. Never in a dry run. The indexes only readers need are
    dropped for the load and built when it is planned: one sorted build instead of an insert
    at a random place per row (L, SQLite: 2.4M effective permissions 11.7 -> 5.4 s with the
    ordered insert). On PostgreSQL the key goes too, and comes back (checked unique) when
    the load is planned: 2.4M rows loaded bare and keyed after in 5.3 s instead of 9.0 s.
    A table loaded without its key takes distinct rows only (`add(..., distinct=True)`, or
    INSERT … SELECT of distinct rows).
    """

    def __init__(
        self,
        connection: Connection,
        table: Table,
        keys: Sequence[str],
        *,
        into_empty_table: bool = False,
        keyed_after_load: bool = False,
    ):
        self.connection, self.table, self.keys = connection, table, tuple(keys)
        self.seconds = 0.0  # spent staging rows: the benchmark reports it apart from the fetch
        self.direct = into_empty_table
        self._deferred_indexes: list = []
        self._deferred_key = False  # the key is built after the load, by add_key()
        if self.direct:
            self.twin, self._upsert = table, insert(table)
            if _ddl_rolls_back(connection):
                self._deferred_indexes = sorted(table.indexes, key=lambda index: index.name)
                self._deferred_key = connection.dialect.name in DEFERRED_KEY
            for index in self._deferred_indexes:
                index.drop(connection)
            if self._deferred_key:
                connection.execute(DropConstraint(table.primary_key))
            return
        self._deferred_key = keyed_after_load
        keyed = () if keyed_after_load else keys
        columns = [
            Column(c.name, c.type, primary_key=c.name in keyed, nullable=c.nullable)
            for c in table.columns
            if c.name not in BOOKKEEPING
        ]
        self.twin = Table(
            f"staged_{table.name}",
            MetaData(),
            *columns,
            prefixes=["TEMPORARY"],
            schema=TEMPORARY_SCHEMA.get(connection.dialect.name),
            **schema.mysql_table_args(connection.dialect),
        )
        self.drop()  # a pooled connection may still hold one from an earlier run
        self.twin.create(connection)
        self._upsert = upsert_statement(connection, self.twin, self.keys)

    def add(self, rows: list[dict[str, Any]], *, distinct: bool = False) -> None:
        """Stage rows; a key staged twice keeps its last row, unless `distinct` promises
        no key repeats (then a plain INSERT, or on PostgreSQL COPY, takes them)."""
        if not rows:
            return
        if self._deferred_key and not distinct:  # an upsert needs the key it upserts on
            raise ValueError(f"{self.table.name} is loaded without its key: distinct rows only")
        started = time.monotonic()
        if self.direct and "changed_at" in self.table.c:
            now = utcnow()
            rows = [row | {"changed_at": now} for row in rows]
        if not distinct:
            execute_in_batches(self.connection, self._upsert, rows)
        elif self.connection.dialect.name == "postgresql":
            copy_rows(self.connection, self.twin, rows)
        else:  # no conflict to handle: a plain INSERT is cheaper
            execute_in_batches(self.connection, insert(self.twin), rows)
        self.seconds += time.monotonic() - started

    def add_all(self, rows: Iterable[dict[str, Any]], *, distinct: bool = False) -> None:
        """Stage rows from any iterable, a batch at a time."""
        for batch in chunks(rows, STAGE_BATCH):
            self.add(batch, distinct=distinct)

    def add_key(self) -> None:
        """Build a key left out for the load (a twin made `keyed_after_load`, or a table
        loaded empty on PostgreSQL), once the rows are in: one sorted build instead of an
        insert at a random place of a B-tree per row (a million users' twin on SQLite: staging
        30.7 -> 12-14 s). A key staged twice raises IntegrityError (`repeated_key` names it)."""
        if not self._deferred_key:
            return
        started = time.monotonic()
        twin, columns = self.twin, ", ".join(self.keys)
        if self.direct:
            statement = AddConstraint(self.table.primary_key)
        elif self.connection.dialect.name == "sqlite":  # SQLite cannot add a primary key
            index = f"{twin.schema}.{twin.name}_key"
            statement = text(f"CREATE UNIQUE INDEX {index} ON {twin.name} ({columns})")
        else:
            name = qualified_name(self.connection, twin)
            statement = text(f"ALTER TABLE {name} ADD PRIMARY KEY ({columns})")
        self.connection.execute(statement)
        self._deferred_key = False
        self.seconds += time.monotonic() - started

    def repeated_key(self) -> Any | None:
        """A value of the (first) key column that two staged rows share, if any."""
        column = self.twin.c[self.keys[0]]
        query = select(column).group_by(column).having(func.count() > 1).order_by(column)
        return self.connection.scalar(query.limit(1))

    def mark_orphans(self, users: Table) -> None:
        """Set `is_orphan` on every staged row whose user_id is not in `users`: one statement,
        however many members there are. Rows are staged with is_orphan false (transform.py), so
        only the orphans are touched: rewriting all 500k memberships cost 2.8 s on PostgreSQL."""
        match = users.c.user_id == self.twin.c.user_id
        known = select(literal(1)).select_from(users).where(match).exists()
        self.connection.execute(update(self.twin).where(~known).values(is_orphan=True))

    def drop(self) -> None:
        """Drop the twin, and only a temporary table: the name is qualified with the temporary
        schema, or (MySQL) the statement says TEMPORARY, which also keeps MySQL from
        committing the transaction as it does on a DROP TABLE."""
        twin = self.twin
        name = f"{twin.schema}.{twin.name}" if twin.schema else twin.name
        temporary = "TEMPORARY " if self.connection.dialect.name in ("mysql", "mariadb") else ""
        self.connection.execute(text(f"DROP {temporary}TABLE IF EXISTS {name}"))

    def plan(self) -> StagedPlan | LoadedPlan:
        if self.direct:
            self.add_key()  # first: a key that does not hold fails before any index
            for index in self._deferred_indexes:
                index.create(self.connection)
            self._deferred_indexes = []
            loaded = self.connection.scalar(select(func.count()).select_from(self.table))
            return LoadedPlan(self.connection, self.table, self.keys, TableCount(loaded, loaded))
        return StagedPlan(self.connection, self.table, self.keys, self.twin)


@dataclass
class StagedPlan:
    """The difference between a table and its twin, counted and sampled in SQL."""

    connection: Connection
    table: Table
    keys: Sequence[str]
    twin: Table
    count: TableCount = field(init=False)
    rows_before: int = field(init=False)

    def __post_init__(self) -> None:
        # Two scans, not five: the twin joined to the table gives the fetched, new and changed
        # rows; the rest of the table's rows are the deleted ones.
        missing = self.table.c[self.keys[0]].is_(None)
        differs = and_(~missing, self._differs()) if self._others else false()
        counted = self.connection.execute(
            select(func.count(), _how_many(missing), _how_many(differs)).select_from(
                self.twin.outerjoin(self.table, self._match())
            )
        ).one()
        fetched, inserted, updated = (int(n) for n in counted)  # MySQL sums are decimals
        self.rows_before = self.connection.scalar(select(func.count()).select_from(self.table))
        deleted = self.rows_before - (fetched - inserted)
        self.count = TableCount(fetched, inserted, updated, deleted, fetched - inserted - updated)

    @property
    def changed(self) -> bool:
        return bool(self.count.inserted or self.count.updated or self.count.deleted)

    # -- the three sets ------------------------------------------------------------------------

    @property
    def _compared(self) -> list[str]:
        return [c.name for c in self.twin.columns]

    @property
    def _others(self) -> list[str]:
        return [name for name in self._compared if name not in self.keys]

    def _match(self):
        return and_(*(self.table.c[k] == self.twin.c[k] for k in self.keys))

    def _differs(self):
        return or_(*(self._distinct(name) for name in self._others))

    def _distinct(self, name: str):
        old, new = self.table.c[name], self.twin.c[name]
        if isinstance(old.type, JSON):  # PostgreSQL's json type has no equality operator
            old, new = cast(old, Text), cast(new, Text)
        return old.is_distinct_from(new)

    def new_rows(self):
        """The staged rows whose key the table does not have (a subquery)."""
        known = select(literal(1)).select_from(self.table).where(self._match()).exists()
        return select(self.twin).where(~known).subquery()

    def _gone(self):
        kept = select(literal(1)).select_from(self.twin).where(self._match()).exists()
        return select(*(self.table.c[n] for n in self._compared)).where(~kept).subquery()

    def _changed(self):
        before = [self.table.c[n].label(f"old_{n}") for n in self._compared]
        return select(*before, *self.twin.c).where(self._match(), self._differs()).subquery()

    # -- what the report, the safeguard and the change log read --------------------------------

    def inserted_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        return list(self._rows(self.new_rows(), limit))

    def deleted_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        return list(self._rows(self._gone(), limit))

    def updated_pairs(self, limit: int | None = None) -> list[tuple[dict, dict]]:
        return list(self._updates(limit))

    def _updates(self, limit: int | None = None) -> Iterator[tuple[dict, dict]]:
        if self._others:  # a key-only table has no updates
            yield from (self._split(row) for row in self._rows(self._changed(), limit))

    def change_rows(self) -> Iterator[tuple[str, dict | None, dict | None]]:
        """(operation, before, after) for every change, read back page by page."""
        for row in self._rows(self.new_rows()):
            yield "insert", None, row
        for before, after in self._updates():  # page by page: a night of logins is many
            yield "update", before, after
        for row in self._rows(self._gone()):
            yield "delete", row, None

    def _split(self, row: dict[str, Any]) -> tuple[dict, dict]:
        before = {n: row[f"old_{n}"] for n in self._compared}
        return before, {n: row[n] for n in self._compared}

    def _rows(self, subquery, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The subquery's rows in key order: keyset pages, so no cursor stays open (MySQL
        drivers cannot run another statement while one streams) and memory stays flat."""
        keys = [subquery.c[k] for k in self.keys]
        last = None
        remaining = limit
        while remaining is None or remaining > 0:
            size = PAGE if remaining is None else min(PAGE, remaining)
            query = select(subquery).order_by(*keys).limit(size)
            if last is not None:
                query = query.where(tuple_(*keys) > tuple_(*last))
            page = [dict(row) for row in self.connection.execute(query).mappings()]
            yield from page
            if len(page) < size:
                return
            last = [page[-1][k] for k in self.keys]
            if remaining is not None:
                remaining -= len(page)

    # -- writing -------------------------------------------------------------------------------

    def write(self, connection: Connection, now: datetime) -> None:
        """Apply the difference with three set-based statements, deletes first."""
        if self.count.deleted:
            kept = select(literal(1)).select_from(self.twin).where(self._match()).exists()
            connection.execute(delete(self.table).where(~kept))
        stamp = {"changed_at": now} if "changed_at" in self.table.c else {}
        if self.count.updated:
            values = {n: self.twin.c[n] for n in self._others} | stamp
            connection.execute(
                update(self.table).values(values).where(self._match(), self._differs())
            )
        if self.count.inserted:
            new = self.new_rows()
            columns = [*self._compared, *stamp]
            stamps = [literal(v, self.table.c[n].type) for n, v in stamp.items()]
            source = select(*(new.c[n] for n in self._compared), *stamps)
            connection.execute(insert(self.table).from_select(columns, source))


def _ddl_rolls_back(connection: Connection) -> bool:
    """Whether a DROP INDEX now would be undone by a rollback. Python's sqlite3 opens no
    transaction before DDL by itself: only inside one (the run's BEGIN IMMEDIATE) is it safe."""
    if connection.dialect.name == "sqlite":
        return connection.connection.driver_connection.in_transaction
    return connection.dialect.name in TRANSACTIONAL_DDL


def _how_many(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


@dataclass
class UnchangedPlan:
    """A table known to be unchanged without comparing it (see apply.plan_run)."""

    table: Table
    keys: Sequence[str]
    count: TableCount
    rows_before: int
    changed = False

    @classmethod
    def holding(cls, table: Table, keys: Sequence[str], rows: int) -> UnchangedPlan:
        """The plan of a table that keeps its `rows` rows as they are."""
        return cls(table, keys, TableCount(fetched=rows, unchanged=rows), rows_before=rows)

    def inserted_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        return []

    deleted_rows = inserted_rows

    def updated_pairs(self, limit: int | None = None) -> list[tuple[dict, dict]]:
        return []

    def change_rows(self) -> Iterator[tuple[str, dict | None, dict | None]]:
        return iter(())

    def write(self, connection: Connection, now: datetime) -> None:
        pass


@dataclass
class LoadedPlan:
    """A table that was empty and now holds its new rows (StagedTable's into_empty_table):
    all of them are inserts, already written."""

    connection: Connection
    table: Table
    keys: Sequence[str]
    count: TableCount
    rows_before = 0

    @property
    def changed(self) -> bool:
        return self.count.inserted > 0

    @property
    def twin(self) -> Table:  # what the history compares with: the table itself
        return self.table

    def new_rows(self):
        return select(self.table).subquery()

    def inserted_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        query = select(self.table).order_by(*(self.table.c[k] for k in self.keys)).limit(limit)
        return [dict(row) for row in self.connection.execute(query).mappings()]

    def deleted_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        return []

    def updated_pairs(self, limit: int | None = None) -> list[tuple[dict, dict]]:
        return []

    def change_rows(self) -> Iterator[tuple[str, dict | None, dict | None]]:
        return iter(())  # a first load is not a change (history.write_changes)

    def write(self, connection: Connection, now: datetime) -> None:
        pass  # written while staging


Plan = StagedPlan | LoadedPlan | UnchangedPlan  # what a run plans for one table
