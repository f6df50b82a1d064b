"""One run's writes, in the caller's transaction: plan → safeguard → rows → history → change log.

`plan_run` only reads, so a dry run shares it; `apply_run` writes what a plan says.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from . import schema
from .effective import stage_effective
from .history import write_changes, write_history
from .ledger import last_success_counts, utcnow
from .safeguard import Safeguard, check_deletes
from .staging import StagedTable
from .store import TableCount, TablePlan, plan_tables, write_plans
from .transform import TableRows


# What effective.py derives the effective tables from.
EFFECTIVE_INPUTS = (
    schema.group_members.name,
    schema.group_nesting.name,
    schema.group_roles.name,
    schema.role_permissions.name,
    schema.role_users.name,
)


def plan_run(connection: Connection, rows: TableRows, users: StagedTable) -> dict:
    """Every synced and effective table's plan (reads only, but for temporary tables).

    The users and the effective tables are staged and compared in SQL (staging.py); the other
    tables are small enough to compare in memory (store.py).
    """
    listed = {name: keys for name, keys in schema.SYNCED_TABLES.items() if name in rows.tables}
    planned = plan_tables(connection, rows.tables, listed) | {schema.users.name: users.plan()}
    plans = {name: planned[name] for name in schema.SYNCED_TABLES}
    # The effective tables are a function of the link tables alone (user details and names do
    # not matter), written with them in one transaction: when no link changed and they still
    # hold what the last successful run wrote (not so right after an upgrade created them, or
    # after hands touched them), nothing changed here. Skipping their derivation and comparison
    # makes a no-op run, or a nightly run where only logins moved, several times cheaper.
    if not any(plans[name].changed for name in EFFECTIVE_INPUTS):
        stored = _stored_counts(connection)
        if stored == last_success_counts(connection, schema.EFFECTIVE_TABLES):
            return plans | {name: _unchanged(name, count) for name, count in stored.items()}
    staged = stage_effective(connection, rows.tables)
    return plans | {name: table.plan() for name, table in staged.items()}


def _stored_counts(connection: Connection) -> dict[str, int]:
    return {
        name: connection.scalar(select(func.count()).select_from(schema.metadata.tables[name]))
        for name in schema.EFFECTIVE_TABLES
    }


def _unchanged(name: str, rows: int) -> TablePlan:
    count = TableCount(fetched=rows, unchanged=rows)
    table, keys = schema.metadata.tables[name], schema.EFFECTIVE_TABLES[name]
    return TablePlan(table, keys, count=count, rows_before=rows)


def apply_run(connection: Connection, plans: dict, safeguard: Safeguard, run_id: int) -> int:
    """Write the plans (after the safeguard agrees); returns the number of changes logged."""
    check_deletes({name: plans[name] for name in schema.SYNCED_TABLES}, safeguard)
    now = utcnow()
    logged = write_changes(connection, plans, run_id, now)  # staged plans read their changes
    write_plans(connection, plans, now)
    write_history(connection, plans, run_id, now)
    return logged
