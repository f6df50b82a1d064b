"""One sync run: lock → schema → ledger → read → check → plan → safeguard → write, all or nothing.

`sync_snapshot` runs it for any snapshot source (sources.py), such as the extension's API.
Nothing is written to the synced tables until every record has been read and checked; the data
and the run's `succeeded` ledger row are committed together. A failing run rolls back, then marks
its ledger row `failed` (or `aborted` on SIGINT / SIGTERM) with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from . import schema
from .api import RequestStats
from .apply import apply_run, plan_run
from .config import DatabaseSettings, Settings
from .database import (
    begin_writing,
    database_errors,
    describe,
    ensure_schema,
    first_line,
    open_engine,
    redacted,
    schema_is_current,
    scratch_engine,
)
from .errors import EXIT_INTERNAL, EXIT_OK, DatabaseError, Interrupted, SyncError
from .fingerprint import UNKNOWN
from .heartbeat import Heartbeat, beating
from .ledger import (
    ABORTED,
    FAILED,
    SUCCEEDED,
    fail_run,
    finish_run,
    keep_windows_of,
    mark_abandoned,
    request_counts,
    start_run,
)
from .lock import run_lock
from .logs import current_run
from .paging import windows_to_json
from .progress import NO_PROGRESS, Progress
from .redact import redact
from .safeguard import DeleteGuardError, Safeguard, check_deletes
from .sources import ApiSource, SnapshotSource, Users
from .staging import StagedTable
from .store import TableCount
from .transform import TableRows, build_rows

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    run_id: int
    counts: dict[str, TableCount]
    warnings: list[str] = field(default_factory=list)
    api_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    fetch_seconds: float = 0.0
    staging_seconds: float = 0.0  # of fetch_seconds: users written to their temporary table
    changes_logged: int = 0

    @property
    def rows_written(self) -> int:
        """Every row inserted, updated or deleted, effective tables included."""
        return sum(c.inserted + c.updated + c.deleted for c in self.counts.values())

    def total(self, operation: str) -> int:
        """Over the copied tables; the derived effective tables are in `counts` only."""
        return sum(getattr(self.counts[name], operation) for name in schema.SYNCED_TABLES)


def fetch_rows(source: SnapshotSource, connection: Connection) -> tuple[Users, TableRows]:
    """Every table's new rows: users as the source gives them (staged on `connection`, or kept
    as stored), the rest in memory. Writes nothing else."""
    users, snapshot = source.read(connection)
    return users, build_rows(snapshot)


def database_of(settings: Settings) -> DatabaseSettings:
    return DatabaseSettings(settings.database_url, settings.database_schema)


def run_sync(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = NO_PROGRESS,
    compare_all: bool = False,
) -> RunReport:
    """Sync the extension's API once; raises a SyncError (with its exit code) when it fails.

    `compare_all` compares every table, also those the fingerprints show unchanged."""
    progress = Heartbeat(progress)  # the fetch's updates beat too, once the run is armed
    source = ApiSource(settings, transport, sleep, progress)
    return sync_snapshot(source, database_of(settings), settings.safeguard, progress, compare_all)


def sync_snapshot(
    source: SnapshotSource,
    database: DatabaseSettings,
    safeguard: Safeguard,
    progress: Progress = NO_PROGRESS,
    compare_all: bool = False,
) -> RunReport:
    """One run from any source; raises a SyncError (with its exit code) when the run fails."""
    engine = open_engine(database.url, schema=database.schema)
    try:
        with ExitStack() as held:
            with database_errors(engine):
                held.enter_context(run_lock(engine, describe(engine)))  # until the end
                ensure_schema(engine)
                if abandoned := mark_abandoned(engine):
                    log.warning("%d earlier run(s) died without finishing: abandoned", abandoned)
                run_id = start_run(engine, source.label)
                progress = beating(progress, engine, run_id)
            token = current_run.set(run_id)
            try:
                return _run(engine, run_id, source, safeguard, progress, compare_all)
            finally:
                current_run.reset(token)
    finally:
        engine.dispose()


DRY_RUN_SAMPLE = 3  # changes shown per table and operation in a dry run


@dataclass
class Sample:
    """A few of a plan's changes, read while the planning connection (and its temporary
    tables) still existed."""

    inserts: list[dict]
    updates: list[tuple[dict, dict]]
    deletes: list[dict]

    @classmethod
    def of(cls, plan) -> Sample:
        size = DRY_RUN_SAMPLE
        return cls(plan.inserted_rows(size), plan.updated_pairs(size), plan.deleted_rows(size))


@dataclass
class DryRun:
    """What a run would write, computed without writing anything."""

    plans: dict  # name → a staging.Plan: its counts (its rows went with the connection)
    samples: dict[str, Sample]  # of the synced tables
    warnings: list[str]
    refusal: str | None  # the safeguard's message, when a real run would be refused
    api_requests: int

    @property
    def changed(self) -> bool:
        return any(self.plans[name].changed for name in schema.SYNCED_TABLES)


def dry_run(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = NO_PROGRESS,
    compare_all: bool = False,
) -> DryRun:
    """Fetch and plan like a run; write nothing at all: no lock, no ledger row, no history.

    Planning needs temporary tables, which a read-only connection may hold. A database without
    the schema yet is planned against an empty schema in a scratch SQLite file.
    """
    source = ApiSource(settings, transport, sleep, progress)
    return plan_snapshot(source, database_of(settings), settings.safeguard, progress, compare_all)


def plan_snapshot(
    source: SnapshotSource,
    database: DatabaseSettings,
    safeguard: Safeguard,
    progress: Progress = NO_PROGRESS,
    compare_all: bool = False,
) -> DryRun:
    """Read and plan like a run from any source; write nothing at all (see `dry_run`)."""
    engine = open_engine(database.url, read_only=True, schema=database.schema)
    try:
        with database_errors(engine):
            has_schema = schema_is_current(engine)
        with database_errors(engine), ExitStack() as stack:
            target = engine if has_schema else stack.enter_context(scratch_engine())
            connection = stack.enter_context(target.connect())
            users, rows = fetch_rows(source, connection)
            known = UNKNOWN if compare_all else source.fingerprints
            plans = _compare(connection, rows, users, progress, fingerprints=known)
            samples = {name: Sample.of(plans[name]) for name in schema.SYNCED_TABLES}
            try:
                check_deletes({name: plans[name] for name in schema.SYNCED_TABLES}, safeguard)
                refusal = None
            except DeleteGuardError as error:
                refusal = str(error)
            connection.rollback()
        return DryRun(plans, samples, rows.warnings, refusal, source.stats.requests)
    finally:
        engine.dispose()


def _run(
    engine: Engine,
    run_id: int,
    source: SnapshotSource,
    safeguard: Safeguard,
    progress: Progress,
    compare_all: bool,
) -> RunReport:
    started = time.monotonic()
    committed: RunReport | None = None
    try:
        # One connection for the whole run: the staged (temporary) tables live in its session.
        with engine.connect() as connection:
            users, rows = fetch_rows(source, connection)
            report = RunReport(run_id, {}, rows.warnings, fetch_seconds=time.monotonic() - started)
            report.staging_seconds = users.seconds if isinstance(users, StagedTable) else 0.0
            connection.commit()
            begin_writing(connection)
            known = UNKNOWN if compare_all else source.fingerprints
            plans = _compare(connection, rows, users, progress, writing=True, fingerprints=known)
            report.changes_logged = apply_run(
                connection, plans, safeguard, run_id, progress, source.fingerprints
            )
            report.counts = {name: plan.count for name, plan in plans.items()}
            _fill(report, source.stats, started)
            finish_run(
                connection,
                run_id,
                status=SUCCEEDED,
                exit_code=EXIT_OK,
                fingerprints=source.fingerprints.as_dict(),
                user_windows=windows_to_json(source.user_windows),
                **_ledger(report),
            )
            if source.user_windows is not None:  # an import reads no users: keep the last
                keep_windows_of(connection, run_id)
            connection.commit()
        committed = report
        log.info(
            "timing: fetch %.2f s (%.2f s of it staging users), apply %.2f s (%d rows written)",
            report.fetch_seconds,
            report.staging_seconds,
            report.seconds - report.fetch_seconds,
            report.rows_written,
        )
        return report
    except SyncError as error:
        _record_failure(engine, run_id, FAILED, error, error.exit_code, source.stats)
        raise
    except SQLAlchemyError as error:
        failure = DatabaseError(f"writing to {redacted(engine.url)} failed: {first_line(error)}")
        _record_failure(engine, run_id, FAILED, failure, failure.exit_code, source.stats)
        raise failure from None
    except KeyboardInterrupt as interrupt:
        if committed is not None:  # the signal came after the commit: the run did succeed
            log.warning("interrupted just after the commit; the run succeeded")
            return committed
        stop = Interrupted.of(interrupt)
        reason = f"interrupted by {stop.signal_name}; nothing was written"
        _record_failure(engine, run_id, ABORTED, reason, stop.exit_code, source.stats)
        raise stop from None
    except Exception as error:  # a bug: still leave the ledger true, then let it surface
        reason = f"internal error {type(error).__name__}; nothing was written"
        _record_failure(engine, run_id, FAILED, reason, EXIT_INTERNAL, source.stats)
        raise


def _compare(
    connection: Connection, rows: TableRows, users: Users, progress: Progress, **options
) -> dict:
    progress.update("compare", 0)
    plans = plan_run(connection, rows, users, **options)
    progress.update("compare", len(plans), len(plans), "tables")
    return plans


def _fill(report: RunReport, stats: RequestStats, started: float) -> None:
    report.api_requests = stats.requests
    report.retries = stats.retries
    report.rate_limited = stats.rate_limited
    report.seconds = time.monotonic() - started


def _ledger(report: RunReport) -> dict:
    return {
        "rows_inserted": report.total("inserted"),
        "rows_updated": report.total("updated"),
        "rows_deleted": report.total("deleted"),
        "api_requests": report.api_requests,
        "api_retries": report.retries,
        "api_rate_limited": report.rate_limited,
        "duration_seconds": round(report.seconds, 3),
        "counts": {name: count.as_dict() for name, count in report.counts.items()},
        "warnings": report.warnings,
    }


def _record_failure(
    engine: Engine, run_id: int, status: str, error: object, exit_code: int, stats: RequestStats
) -> None:
    try:
        message = redact(str(error))  # our messages hold no secret; this makes sure
        fail_run(engine, run_id, status, message, exit_code, **request_counts(stats))
    except SQLAlchemyError as ledger_error:  # the database may be what failed
        log.error("could not record the run's failure: %s", first_line(ledger_error))
