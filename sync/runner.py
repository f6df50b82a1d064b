"""One sync run: lock → schema → ledger → fetch → check → plan → safeguard → write, all or nothing.

Nothing is written to the synced tables until every record has been fetched and checked; the
data and the run's `succeeded` ledger row are committed together. A failing run rolls back, then
marks its ledger row `failed` (or `aborted` on SIGINT / SIGTERM) with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from . import schema
from .api import ExtensionApi, RequestStats
from .apply import apply_run, plan_run
from .config import Settings
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
from .ledger import (
    ABORTED,
    FAILED,
    SUCCEEDED,
    fail_run,
    finish_run,
    mark_abandoned,
    start_run,
)
from .lock import run_lock
from .logs import current_run
from .paging import UserReader
from .progress import NO_PROGRESS, Progress
from .redact import redact
from .safeguard import DeleteGuardError, check_deletes
from .staging import StagedTable
from .store import TableCount
from .transform import Snapshot, TableRows, build_rows, user_row

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


def fetch_snapshot(
    api: ExtensionApi, settings: Settings, users: StagedTable, progress: Progress = NO_PROGRESS
) -> Snapshot:
    """Read the three lists, and stream every user into the `users` twin, slice by slice.

    Each slice is validated and staged, then let go, so memory does not grow with the tenant.
    Staged rows are committed as they come: the twin is temporary and private to this
    connection, and a short transaction holds nothing back on the server during a long read.
    """
    api.check_scopes()
    groups = _list_all(api, "groups", progress)
    roles = _list_all(api, "roles", progress)
    permissions = _list_all(api, "permissions", progress)
    reader = UserReader(
        api.users_page,
        settings.users_per_page,
        settings.concurrency,
        on_progress=partial(progress.update, "users"),
    )
    for piece in reader.read():
        users.add([user_row(user) for user in piece.values()])
        users.connection.commit()
    log.info(
        "fetched %d users (%d slices), %d groups, %d roles, %d permissions",
        reader.count,
        len(reader.slices),
        len(groups),
        len(roles),
        len(permissions),
    )
    return Snapshot(groups, roles, permissions)


def _list_all(api: ExtensionApi, resource: str, progress: Progress) -> list[dict[str, Any]]:
    progress.update(resource, 0)  # one request: a pulsing bar until it answers
    records = api.list_all(resource)
    progress.update(resource, len(records), len(records))
    return records


def fetch_rows(
    api: ExtensionApi, settings: Settings, connection: Connection, progress: Progress = NO_PROGRESS
) -> tuple[StagedTable, TableRows]:
    """Every table's new rows: users staged on `connection` (a temporary table), the rest in
    memory. Writes nothing else."""
    users = StagedTable(connection, schema.users, schema.SYNCED_TABLES[schema.users.name])
    with api:
        snapshot = fetch_snapshot(api, settings, users, progress)
    return users, build_rows(snapshot)


def run_sync(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = NO_PROGRESS,
) -> RunReport:
    """Run one sync; raises a SyncError (with its exit code) when the run fails."""
    engine = open_engine(settings.database_url, schema=settings.database_schema)
    try:
        with ExitStack() as held:
            with database_errors(engine):
                held.enter_context(run_lock(engine, describe(engine)))  # until the end
                ensure_schema(engine)
                if abandoned := mark_abandoned(engine):
                    log.warning("%d earlier run(s) died without finishing: abandoned", abandoned)
                run_id = start_run(engine, settings.extension_url)
            token = current_run.set(run_id)
            try:
                return _run(engine, run_id, settings, transport, sleep, progress)
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

    plans: dict  # name → store.TablePlan or staging.StagedPlan: their counts
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
) -> DryRun:
    """Fetch and plan like a run; write nothing at all: no lock, no ledger row, no history.

    Planning needs temporary tables, which a read-only connection may hold. A database without
    the schema yet is planned against an empty schema in a scratch SQLite file.
    """
    engine = open_engine(settings.database_url, read_only=True, schema=settings.database_schema)
    try:
        with database_errors(engine):
            has_schema = schema_is_current(engine)
        with database_errors(engine), ExitStack() as stack:
            target = engine if has_schema else stack.enter_context(scratch_engine())
            connection = stack.enter_context(target.connect())
            api = ExtensionApi(settings, transport=transport, sleep=sleep)
            users, rows = fetch_rows(api, settings, connection, progress)
            plans = _compare(connection, rows, users, progress)
            samples = {name: Sample.of(plans[name]) for name in schema.SYNCED_TABLES}
            try:
                check_deletes(
                    {name: plans[name] for name in schema.SYNCED_TABLES}, settings.safeguard
                )
                refusal = None
            except DeleteGuardError as error:
                refusal = str(error)
            connection.rollback()
        return DryRun(plans, samples, rows.warnings, refusal, api.stats.requests)
    finally:
        engine.dispose()


def _run(
    engine: Engine,
    run_id: int,
    settings: Settings,
    transport: httpx.BaseTransport | None,
    sleep: Callable[[float], None],
    progress: Progress = NO_PROGRESS,
) -> RunReport:
    started = time.monotonic()
    stats = RequestStats()
    committed: RunReport | None = None
    try:
        api = ExtensionApi(settings, transport=transport, sleep=sleep)
        stats = api.stats
        # One connection for the whole run: the staged (temporary) tables live in its session.
        with engine.connect() as connection:
            users, rows = fetch_rows(api, settings, connection, progress)
            report = RunReport(run_id, {}, rows.warnings, fetch_seconds=time.monotonic() - started)
            report.staging_seconds = users.seconds
            connection.commit()
            begin_writing(connection)
            plans = _compare(connection, rows, users, progress, writing=True)
            report.changes_logged = apply_run(
                connection, plans, settings.safeguard, run_id, progress
            )
            report.counts = {name: plan.count for name, plan in plans.items()}
            _fill(report, api.stats, started)
            finish_run(connection, run_id, status=SUCCEEDED, exit_code=EXIT_OK, **_ledger(report))
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
        _record_failure(engine, run_id, FAILED, error, error.exit_code, stats)
        raise
    except SQLAlchemyError as error:
        failure = DatabaseError(f"writing to {redacted(engine.url)} failed: {first_line(error)}")
        _record_failure(engine, run_id, FAILED, failure, failure.exit_code, stats)
        raise failure from None
    except KeyboardInterrupt as interrupt:
        if committed is not None:  # the signal came after the commit: the run did succeed
            log.warning("interrupted just after the commit; the run succeeded")
            return committed
        stop = Interrupted.of(interrupt)
        reason = f"interrupted by {stop.signal_name}; nothing was written"
        _record_failure(engine, run_id, ABORTED, reason, stop.exit_code, stats)
        raise stop from None
    except Exception as error:  # a bug: still leave the ledger true, then let it surface
        reason = f"internal error {type(error).__name__}; nothing was written"
        _record_failure(engine, run_id, FAILED, reason, EXIT_INTERNAL, stats)
        raise


def _compare(
    connection: Connection, rows: TableRows, users: StagedTable, progress: Progress, **options
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
        fail_run(engine, run_id, status, message, exit_code, api_requests=stats.requests)
    except SQLAlchemyError as ledger_error:  # the database may be what failed
        log.error("could not record the run's failure: %s", first_line(ledger_error))
