"""The run ledger, authz_sync_runs: one row per run, written even when the run fails.

The row is inserted as `running` in a transaction of its own, so a failed or killed run leaves a
trace; a successful run finishes its row in the same transaction as its data.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, insert, update

from . import __version__
from .schema import sync_runs

RUNNING, SUCCEEDED, FAILED, ABORTED = "running", "succeeded", "failed", "aborted"


def utcnow() -> datetime:
    """Naive UTC, as every timestamp column stores it."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def start_run(engine: Engine, source: str) -> int:
    with engine.begin() as connection:
        result = connection.execute(
            insert(sync_runs).values(
                started_at=utcnow(), status=RUNNING, source=source, version=__version__
            )
        )
        return result.inserted_primary_key[0]


def finish_run(connection: Connection, run_id: int, **values: Any) -> None:
    """Record the outcome; call inside the run's data transaction for a successful run."""
    connection.execute(
        update(sync_runs).where(sync_runs.c.run_id == run_id).values(finished_at=utcnow(), **values)
    )


def fail_run(engine: Engine, run_id: int, status: str, error: str, exit_code: int, **values: Any):
    with engine.begin() as connection:
        finish_run(connection, run_id, status=status, error=error, exit_code=exit_code, **values)
