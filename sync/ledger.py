"""The run ledger, authz_sync_runs: one row per run, written even when the run fails.

The row is inserted as `running` in a transaction of its own, so a failed or killed run leaves a
trace; a successful run finishes its row in the same transaction as its data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from . import __version__
from .fingerprint import Fingerprints
from .paging import Window, windows_from_json
from .schema import sync_runs

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
ABORTED, ABANDONED = "aborted", "abandoned"  # stopped by a signal / killed without a word


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


def keep_windows_of(connection: Connection, run_id: int) -> None:
    """Only the newest user windows are ever read again (see last_success); a million users
    fill some 1700 of them (60 KB), which a nightly job would otherwise pile up in the ledger."""
    connection.execute(
        update(sync_runs)
        .where(sync_runs.c.run_id != run_id, sync_runs.c.user_windows.is_not(None))
        .values(user_windows=None)
    )


def request_counts(stats: Any) -> dict[str, int]:
    """The API columns of a run's row from its RequestStats: a failed run keeps them too, as
    retries and 429s are what explain most failures."""
    return {
        "api_requests": stats.requests,
        "api_retries": stats.retries,
        "api_rate_limited": stats.rate_limited,
    }


def fail_run(engine: Engine, run_id: int, status: str, error: str, exit_code: int, **values: Any):
    """Record a failure in a transaction of its own, after the run's data was rolled back."""
    with engine.begin() as connection:
        connection.execute(
            update(sync_runs)
            # Only a row still running: a signal that lands just after the commit must not
            # turn a run that succeeded into a failed one.
            .where(sync_runs.c.run_id == run_id, sync_runs.c.status == RUNNING)
            .values(finished_at=utcnow(), status=status, error=error, exit_code=exit_code, **values)
        )


def mark_abandoned(engine: Engine) -> int:
    """Close the rows of runs that died without a word (kill -9, power loss).

    Call it only while holding the run lock: then no other run can be alive.
    """
    with engine.begin() as connection:
        result = connection.execute(
            update(sync_runs)
            .where(sync_runs.c.status == RUNNING)
            .values(
                status=ABANDONED,
                finished_at=utcnow(),
                error="the process ended without recording an outcome (killed?); nothing it "
                "fetched was written",
            )
        )
        return result.rowcount


@dataclass(frozen=True)
class LastSuccess:
    """What the last successful run left: each table's row count, and what it read."""

    counts: dict[str, int]
    fingerprints: Fingerprints
    user_windows: list[Window]  # the created_at windows it read users in


def last_success(connection: Connection) -> LastSuccess | None:
    """The last successful run's outcome; None if there is none, or if another version of
    authz-sync ran it (it may derive the tables differently)."""
    last = connection.execute(
        select(sync_runs.c.counts, sync_runs.c.fingerprints, sync_runs.c.version)
        .where(sync_runs.c.status == SUCCEEDED)
        .order_by(sync_runs.c.run_id.desc())
        .limit(1)
    ).first()
    if last is None or last.version != __version__ or not isinstance(last.counts, dict):
        return None
    counts = {
        name: count["fetched"]
        for name, count in last.counts.items()
        if isinstance(count, dict) and isinstance(count.get("fetched"), int)
    }
    fingerprints = Fingerprints.from_dict(last.fingerprints)
    return LastSuccess(counts, fingerprints, windows_from_json(_last_windows(connection)))


def _last_windows(connection: Connection) -> object:
    """The user windows of the newest run that read users: an import in between reads none."""
    return connection.scalar(
        select(sync_runs.c.user_windows)
        .where(sync_runs.c.status == SUCCEEDED, sync_runs.c.user_windows.is_not(None))
        .order_by(sync_runs.c.run_id.desc())
        .limit(1)
    )
