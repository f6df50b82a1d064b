"""One run's writes, in the caller's transaction: plan → safeguard → rows → history → change log.

`plan_run` only reads, so a dry run shares it; `apply_run` writes what a plan says.
"""

from __future__ import annotations

from sqlalchemy import Connection

from . import schema
from .effective import effective_rows
from .history import write_changes, write_history
from .ledger import utcnow
from .safeguard import Safeguard, check_deletes
from .store import TablePlan, plan_tables, write_plans
from .transform import TableRows


def plan_run(connection: Connection | None, rows: TableRows) -> dict[str, TablePlan]:
    """Every synced and effective table's plan; a None connection plans against empty tables."""
    plans = plan_tables(connection, rows.tables)
    return plans | plan_tables(connection, effective_rows(rows.tables), schema.EFFECTIVE_TABLES)


def apply_run(
    connection: Connection, plans: dict[str, TablePlan], safeguard: Safeguard, run_id: int
) -> int:
    """Write the plans (after the safeguard agrees); returns the number of changes logged."""
    check_deletes({name: plans[name] for name in schema.SYNCED_TABLES}, safeguard)
    now = utcnow()
    write_plans(connection, plans, now)
    write_history(connection, plans, run_id, now)
    return write_changes(connection, plans, run_id, now)
