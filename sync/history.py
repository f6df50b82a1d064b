"""History of every link (SCD type 2) and the change log of every entity, from a run's plans.

- `<link table>_history`: a row opens (`valid_from`, `valid_to` NULL) when a link appears and
  closes (`valid_to` set) when it disappears, so "who was in group X on date D" is one query.
- `authz_changes`: one row per inserted, updated or deleted user, group, role or permission,
  with the changed columns before and after. The first load of a table is not logged: every
  row would be an "insert" that tells nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, bindparam, insert, update

from . import schema
from .store import BATCH, TablePlan, changed_columns, execute_in_batches

T = TypeVar("T")
UPDATE = "update"


def write_history(
    connection: Connection, plans: dict[str, TablePlan], run_id: int, now: datetime
) -> None:
    for base_name, history in schema.HISTORY_TABLES.items():
        plan = plans[base_name]
        opened = [
            {k: row[k] for k in plan.keys} | {"valid_from": now, "valid_from_run_id": run_id}
            for row in plan.inserts
        ]
        execute_in_batches(connection, insert(history), opened)
        close = (
            update(history)
            .where(and_(*(history.c[k] == bindparam(f"old_{k}") for k in plan.keys)))
            .where(history.c.valid_to.is_(None))
            .values(valid_to=now, valid_to_run_id=run_id)
        )
        closed = [{f"old_{k}": row[k] for k in plan.keys} for row in plan.deletes]
        execute_in_batches(connection, close, closed)


def write_changes(connection: Connection, plans: dict, run_id: int, now: datetime) -> int:
    """Log the entity changes of this run; returns how many were logged.

    Call it before the plans are written: a staged plan reads its changes back from the
    difference between the table and its twin.
    """
    logged = 0
    for table_name, entity in schema.CHANGE_LOGGED.items():
        plan = plans[table_name]
        if plan.rows_before == 0:  # the first load of a table is not a change
            continue
        key = plan.keys[0]
        entries = (
            {"run_id": run_id, "changed_at": now, "entity": entity} | _entry(key, *change)
            for change in plan.change_rows()
        )
        for batch in _chunks(entries, BATCH):
            connection.execute(insert(schema.changes), batch)
            logged += len(batch)
    return logged


def _entry(key: str, operation: str, before: dict | None, after: dict | None) -> dict[str, Any]:
    entity_id = (after or before)[key]
    if operation == UPDATE:  # only the columns that changed, before and after
        names = changed_columns(before, after)
        before, after = {n: before[n] for n in names}, {n: after[n] for n in names}
    return _change(operation, entity_id, before, after)


def _chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _change(operation: str, entity_id: str, old: dict | None, new: dict | None) -> dict[str, Any]:
    return {
        "entity_id": entity_id,
        "operation": operation,
        "old_values": None if old is None else _jsonable(old),
        "new_values": None if new is None else _jsonable(new),
    }


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Column values as JSON can hold them: timestamps as ISO 8601 UTC strings."""
    return {
        name: value.isoformat() + "Z" if isinstance(value, datetime) else value
        for name, value in row.items()
        if name != "changed_at"
    }
