"""The run ledger, authz_sync_runs: one row per run, written even when the run fails.

The row is inserted as `running` in a transaction of its own, so a failed or killed run leaves a
trace; a successful run finishes its row in the same transaction as its data.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from sync import __version__
from sync.errors import EXIT_OK
from sync.model import Fetched, Fingerprints, LastSuccess, RequestStats, RunReport, Window
from sync.sql.engine import database_errors
from sync.sql.schema import sync_runs

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


def finish_run(connection: Connection, run_id: int, report: RunReport, fetched: Fetched) -> None:
    """Record a successful run, inside its data transaction."""
    connection.execute(
        update(sync_runs)
        .where(sync_runs.c.run_id == run_id)
        .values(
            finished_at=utcnow(),
            status=SUCCEEDED,
            exit_code=EXIT_OK,
            rows_inserted=report.total("inserted"),
            rows_updated=report.total("updated"),
            rows_deleted=report.total("deleted"),
            api_requests=report.api_requests,
            api_retries=report.retries,
            api_rate_limited=report.rate_limited,
            duration_seconds=round(report.seconds, 3),
            counts={name: count.as_dict() for name, count in report.counts.items()},
            warnings=report.warnings,
            fingerprints=fetched.fingerprints.as_dict(),
            user_windows=windows_to_json(fetched.user_windows),
        )
    )
    if fetched.user_windows is not None:  # an import reads no users: keep the last windows
        keep_windows_of(connection, run_id)


def keep_windows_of(connection: Connection, run_id: int) -> None:
    """Only the newest user windows are ever read again (see last_success); a million users
    fill some 1700 of them (60 KB), which a nightly job would otherwise pile up in the ledger."""
    connection.execute(
        update(sync_runs)
        .where(sync_runs.c.run_id != run_id, sync_runs.c.user_windows.is_not(None))
        .values(user_windows=None)
    )


def fail_run(
    engine: Engine, run_id: int, status: str, error: str, exit_code: int, stats: RequestStats
) -> None:
    """Record a failure in a transaction of its own, after the run's data was rolled back; the
    requests, retries and 429s it met are kept: they often say why it failed."""
    with database_errors(engine), engine.begin() as connection:
        connection.execute(
            update(sync_runs)
            # Only a row still running: a signal that lands just after the commit must not
            # turn a run that succeeded into a failed one.
            .where(sync_runs.c.run_id == run_id, sync_runs.c.status == RUNNING)
            .values(
                finished_at=utcnow(),
                status=status,
                error=error,
                exit_code=exit_code,
                api_requests=stats.requests,
                api_retries=stats.retries,
                api_rate_limited=stats.rate_limited,
            )
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


def windows_to_json(windows: list[Window] | None) -> list[list[Any]] | None:
    """For the ledger: [[end as Auth0 writes times (None: open), users], …]."""
    if windows is None:
        return None
    return [[_auth0_time(end) if end else None, count] for end, count in windows]


def windows_from_json(value: Any) -> list[Window]:
    """What the ledger holds; anything unreadable is no help, so it is dropped (the reader then
    sizes its windows from scratch, as on a first run)."""
    windows: list[Window] = []
    for item in value if isinstance(value, list) else []:
        try:
            end, count = item
            moment = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else None
        except (TypeError, ValueError, AttributeError):
            return []
        if not isinstance(count, int) or (moment and moment.tzinfo is None):
            return []
        windows.append((moment, count))
    return windows


def _auth0_time(moment: datetime) -> str:
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
