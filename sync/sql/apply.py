"""One run's writes, in the caller's transaction: safeguard → change log → history → rows.

The plans come from plan.py; nothing here decides what changed, only writes it.
"""

from __future__ import annotations

from collections.abc import Set

from sqlalchemy import Connection

from sync import model
from sync.config import Safeguard
from sync.progress import NO_PROGRESS, Progress
from sync.sql.history import write_changes, write_history
from sync.sql.ledger import utcnow
from sync.sql.safeguard import check_deletes
from sync.sql.twins import Plan


def apply_run(
    connection: Connection,
    plans: dict[str, Plan],
    safeguard: Safeguard,
    run_id: int,
    progress: Progress = NO_PROGRESS,
    repairs: Set[str] = frozenset(),
) -> int:
    """Write the plans (after the safeguard agrees); returns the number of changes logged.

    The changes of the tables in `repairs` (plan.repaired_tables) put right hand edits: the
    change log gives them the cause `repair`. The "write" progress counts rows written out of
    the rows to write, table by table.
    """
    check_deletes({name: plans[name] for name in model.SYNCED_TABLES}, safeguard)
    now = utcnow()
    total, done = sum(plan.count.written for plan in plans.values()), 0
    progress.update("write", done, total, "change log and history")
    # The change log and the history read the difference, so they come before the writes.
    logged = write_changes(connection, plans, run_id, now, repairs)
    write_history(connection, plans, run_id, now)
    for name, plan in plans.items():
        progress.update("write", done, total, name)
        plan.write(connection, now)
        done += plan.count.written
    # The summary line counts the copied tables only: name both parts of the bar's count.
    copied = sum(plans[name].count.written for name in model.SYNCED_TABLES)
    progress.update(
        "write", done, total, f"{copied:,} copied + {total - copied:,} effective access"
    )
    return logged
