"""History of every link (SCD type 2) and the change log of every entity, from a run's plans.

- `<link table>_history`: a row opens (`valid_from`, `valid_to` NULL) when a link appears and
  closes (`valid_to` set) when it disappears, so "who was in group X on date D" is one query.
- `authz_changes`: one row per inserted, updated or deleted user, group, role or permission,
  with the changed columns before and after. The first load of a table is not logged: every
  row would be an "insert" that tells nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, update

from . import schema
from .store import TablePlan, changed_columns, execute_in_batches

INSERT, UPDATE, DELETE = "insert", "update", "delete"


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


def write_changes(
    connection: Connection, plans: dict[str, TablePlan], run_id: int, now: datetime
) -> int:
    """Log the entity changes of this run; returns how many were logged."""
    entries = []
    for table_name, entity in schema.CHANGE_LOGGED.items():
        plan = plans[table_name]
        if plan.rows_before > 0:  # the first load of a table is not a change
            entries += [
                {"run_id": run_id, "changed_at": now, "entity": entity} | change
                for change in _changes(plan)
            ]
    execute_in_batches(connection, insert(schema.changes), entries)
    return len(entries)


def _changes(plan: TablePlan) -> list[dict[str, Any]]:
    key = plan.keys[0]
    found = [_change(INSERT, row[key], None, row) for row in plan.inserts]
    for before, after in plan.updates:
        names = changed_columns(before, after)
        found.append(
            _change(UPDATE, after[key], {n: before[n] for n in names}, {n: after[n] for n in names})
        )
    found += [_change(DELETE, row[key], row, None) for row in plan.deletes]
    return found


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
