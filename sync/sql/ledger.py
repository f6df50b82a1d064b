"""The run ledger, authz_sync_runs: one row per run, written even when the run fails.

The row is inserted as `running` in a transaction of its own, so a failed or killed run leaves a
trace; a successful run finishes its row in the same transaction as its data. While it runs, it
records heartbeats (`heartbeat_at`), each in a short transaction of its own on another
connection that never waits for a lock: a run killed with kill -9 then ends, when the next run
finds it, at its last heartbeat rather than at the moment it was found.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

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
        now = utcnow()  # its first heartbeat: alive when it started
        result = connection.execute(
            insert(sync_runs).values(
                started_at=now, heartbeat_at=now, status=RUNNING, source=source, version=__version__
            )
        )
        return result.inserted_primary_key[0]


def finish_run(
    connection: Connection,
    run_id: int,
    report: RunReport,
    fetched: Fetched,
    source: str | None = None,
) -> None:
    """Record a successful run, inside its data transaction; `source` replaces the label the
    run started with once it is known how the users were read (e.g. which export job)."""
    if source is not None:
        connection.execute(
            update(sync_runs).where(sync_runs.c.run_id == run_id).values(source=source[:255])
        )
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


def record_heartbeat(engine: Engine, run_id: int) -> bool:
    """Note that the run is alive now; False when the database is busy (the next beat will do).

    Never waits: a beat that would queue behind a lock (another writer on SQLite, or the run's
    own write transaction) is skipped rather than hold up the run.
    """
    try:
        with engine.connect() as connection, _without_waiting(connection):
            connection.execute(
                update(sync_runs)
                .where(sync_runs.c.run_id == run_id, sync_runs.c.status == RUNNING)
                .values(heartbeat_at=utcnow())
            )
            connection.commit()
        return True
    except SQLAlchemyError:
        return False


# Per database: (read the session's lock wait, set it to `value`), in its own units.
_LOCK_WAIT = {
    "sqlite": ("PRAGMA busy_timeout", "PRAGMA busy_timeout = {}", 0),
    "mysql": (
        "SELECT @@SESSION.innodb_lock_wait_timeout",
        "SET SESSION innodb_lock_wait_timeout = {}",
        1,
    ),
    "postgresql": ("SHOW lock_timeout", "SET lock_timeout = '{}'", "500ms"),
}


@contextmanager
def _without_waiting(connection: Connection) -> Iterator[None]:
    """The connection's lock wait set to (next to) nothing, and put back afterwards: it
    returns to the pool that the run's other work shares."""
    name = "mysql" if connection.dialect.name == "mariadb" else connection.dialect.name
    read, write, value = _LOCK_WAIT.get(name, (None, None, None))
    if read is None:
        yield
        return
    before = connection.exec_driver_sql(read).scalar()
    connection.exec_driver_sql(write.format(value))
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        connection.exec_driver_sql(write.format(before))
        connection.commit()


def mark_abandoned(engine: Engine) -> int:
    """Close the rows of runs that died without a word (kill -9, power loss): each ends at its
    last heartbeat, or at a time unknown (no heartbeat recorded: finished_at stays NULL).

    Call it only while holding the run lock: then no other run can be alive.
    """
    with engine.begin() as connection:
        dead = connection.execute(
            select(sync_runs.c.run_id, sync_runs.c.started_at, sync_runs.c.heartbeat_at).where(
                sync_runs.c.status == RUNNING
            )
        ).all()
        for run in dead:
            connection.execute(
                update(sync_runs)
                .where(sync_runs.c.run_id == run.run_id, sync_runs.c.status == RUNNING)
                .values(status=ABANDONED, **_end_of(run.started_at, run.heartbeat_at))
            )
        return len(dead)


def _end_of(started_at: datetime, heartbeat_at: datetime | None) -> dict[str, Any]:
    gone = "the process ended without recording an outcome (killed?)"
    if heartbeat_at is None:
        return {
            "finished_at": None,
            "error": f"{gone} at a time unknown (no heartbeat "
            "recorded); nothing it fetched was written",
        }
    return {
        "finished_at": heartbeat_at,
        "duration_seconds": round((heartbeat_at - started_at).total_seconds(), 3),
        "error": f"{gone} after its last heartbeat at {heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; "
        "nothing it fetched was written",
    }


def last_success_at(engine: Engine) -> datetime | None:
    """When the last successful run finished (naive UTC), whatever version ran it."""
    with database_errors(engine), engine.connect() as connection:
        return connection.scalar(
            select(func.max(sync_runs.c.finished_at)).where(sync_runs.c.status == SUCCEEDED)
        )


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
