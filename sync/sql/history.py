"""History of every link (SCD type 2) and the change log of every entity, from a run's plans.

- `<link table>_history`: a row opens (`valid_from`, `valid_to` NULL) when a link appears and
  closes (`valid_to` set) when it disappears, so "who was in group X on date D" is one query.
- `authz_changes`: one row per inserted, updated or deleted user, group, role or permission,
  with the changed columns before and after. The first load of a table is not logged: every
  row would be an "insert" that tells nothing.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, literal, select, update

from sync.model import changed_columns
from sync.sql import schema
from sync.sql.bulk import chunks

UPDATE = "update"
TENANT, REPAIR = "tenant", "repair"  # authz_changes.cause


def write_history(connection: Connection, plans: dict, run_id: int, now: datetime) -> None:
    """Close the history rows of vanished links and open rows for new ones: two set-based
    statements per link table. Call it before the plans are written (it reads their
    difference). Closing first scans only the rows open before this run (the rows it opens
    are of links it holds): none on a first load, instead of all of them (500k memberships:
    1.1 s on PostgreSQL)."""
    for base_name, history in schema.HISTORY_TABLES.items():
        plan = plans[base_name]
        if not plan.changed:
            continue
        keys = list(plan.keys)
        twin = plan.twin
        match = and_(*(twin.c[k] == history.c[k] for k in keys))
        kept = select(literal(1)).select_from(twin).where(match).exists()
        connection.execute(
            update(history)
            .where(history.c.valid_to.is_(None), ~kept)
            .values(valid_to=now, valid_to_run_id=run_id)
        )
        new = plan.new_rows()
        opened = select(
            *(new.c[k] for k in keys),
            literal(now, history.c.valid_from.type),
            literal(run_id, history.c.valid_from_run_id.type),
        )
        columns = [*keys, "valid_from", "valid_from_run_id"]
        connection.execute(insert(history).from_select(columns, opened))


def write_changes(
    connection: Connection, plans: dict, run_id: int, now: datetime, repairs: Set[str] = frozenset()
) -> int:
    """Log the entity changes of this run; returns how many were logged. Those of the tables
    in `repairs` (changed by hand, put right by this run) have the cause `repair`.

    Call it before the plans are written: a staged plan reads its changes back from the
    difference between the table and its twin.
    """
    logged = 0
    for table_name, entity in schema.CHANGE_LOGGED.items():
        plan = plans[table_name]
        if plan.rows_before == 0:  # the first load of a table is not a change
            continue
        key = plan.keys[0]
        cause = REPAIR if table_name in repairs else TENANT
        entries = (
            {"run_id": run_id, "changed_at": now, "entity": entity, "cause": cause}
            | _entry(key, *change)
            for change in plan.change_rows()
        )
        for batch in chunks(entries):
            connection.execute(insert(schema.changes), batch)
            logged += len(batch)
    return logged


def _entry(key: str, operation: str, before: dict | None, after: dict | None) -> dict[str, Any]:
    entity_id = (after or before)[key]
    if operation == UPDATE:  # only the columns that changed, before and after
        names = changed_columns(before, after)
        before, after = {n: before[n] for n in names}, {n: after[n] for n in names}
    return _change(operation, entity_id, before, after)


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
