"""One sync run: lock → schema → ledger → read → check → plan → safeguard → write, all or nothing.

The one place where the wings meet: a source (source/, HTTP or a file) yields user slices and
returns what it read; this module stages the slices, hands the rows to the SQL wing (sql/) to
plan and apply, and records the outcome in the ledger. Nothing is written to the synced tables
until every record has been read and checked; the data and the run's `succeeded` ledger row are
committed together. A failing run rolls back, then marks its ledger row `failed` (or `aborted`
on SIGINT / SIGTERM) with the reason. A dry run reads and plans the same way, and writes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import timezone
from typing import Any

import httpx
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from sync import model
from sync.config import DatabaseSettings, ImportSettings, Safeguard, Settings
from sync.errors import ApiDataError, DatabaseError, Interrupted, SyncError, exit_code_of
from sync.logs import current_run
from sync.model import (
    UNKNOWN,
    DryRun,
    Fetched,
    LastSuccess,
    RequestStats,
    RunReport,
    Sample,
    Snapshot,
)
from sync.progress import NO_PROGRESS, Progress
from sync.redact import redact
from sync.runner.heartbeat import Heartbeat, beating
from sync.source.api_source import ApiSource, Source
from sync.sql import ledger, schema
from sync.sql.apply import apply_run
from sync.sql.engine import begin_writing, database_errors, describe, engine_for, scratch_engine
from sync.sql.lock import run_lock
from sync.sql.plan import RunUsers, plan_run, repaired_tables
from sync.sql.revisions import ensure_schema, schema_is_current
from sync.sql.safeguard import check_deletes
from sync.sql.twins import Plan, StagedTable
from sync.transform import TableRows, build_rows

log = logging.getLogger(__name__)
Destination = Settings | ImportSettings  # where a run writes: its database and safeguard
DRY_RUN_SAMPLE = 3  # changes shown per table and operation in a dry run


def run_sync(settings: Settings, *, compare_all: bool = False, **client: Any) -> RunReport:
    """Sync the extension's API once; raises a SyncError (with its exit code) when it fails.

    `compare_all` compares every table, also those the fingerprints show unchanged; `client`:
    `transport`, `sleep` and `progress` for the API source."""
    return _from_api(sync_snapshot, settings, compare_all, **client)


def dry_run(settings: Settings, *, compare_all: bool = False, **client: Any) -> DryRun:
    """Fetch and plan like a run; write nothing at all (see `plan_snapshot`)."""
    return _from_api(plan_snapshot, settings, compare_all, **client)


def _from_api(
    step: Callable,
    settings: Settings,
    compare_all: bool,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = NO_PROGRESS,
):
    progress = Heartbeat(progress)  # the fetch's updates beat too, once a run is armed
    source = ApiSource(settings, transport, sleep, progress)
    return step(source, settings, progress, compare_all)


@dataclass
class Read:
    """What a run read, staged on its connection: the users in a twin, the rest as rows."""

    fetched: Fetched
    users: RunUsers
    rows: TableRows
    stats: RequestStats
    staging_seconds: float  # of the fetch: users written to their temporary table

    @property
    def fingerprints(self) -> model.Fingerprints:
        return self.fetched.fingerprints


def read_source(
    source: Source, connection: Connection, last: LastSuccess | None, stats: RequestStats
) -> Read:
    """Stream every user slice into a temporary twin on `connection` (committed slice by
    slice: the twin is private to this connection, and a short transaction holds nothing
    back on the server during a long read), then check the lists' records."""
    users_keys = model.SYNCED_TABLES[model.USERS]
    twin = StagedTable(connection, schema.users, users_keys, keyed_after_load=True)
    slices = source.read(last.user_windows if last else [], stats)
    while True:
        try:
            rows = next(slices)
        except StopIteration as done:
            fetched: Fetched = done.value
            break
        # A read never gives a user twice (created_at windows are disjoint and each is
        # de-duplicated; an export is de-duplicated by user_id): the slices go in as they
        # are, COPY on PostgreSQL (L: 3.7 -> 1.1 s), and the key is built once they are in.
        twin.add(rows, distinct=True)
        connection.commit()
    if fetched.has_users:
        _key_users(twin)
    else:
        twin.drop()
    users = RunUsers(twin if fetched.has_users else None)
    rows = build_rows(fetched.snapshot)
    # The lists' records are rows now: let the API's copy go for the rest of the run (at L,
    # 500k member ids in the groups' lists, held twice otherwise).
    fetched = replace(fetched, snapshot=Snapshot([], [], []))
    if fetched.users_source:  # a fallback or a count difference: the run's warnings say so
        rows.warnings.extend(fetched.users_source.notes)
    return Read(fetched, users, rows, stats, twin.seconds)


def _key_users(twin: StagedTable) -> None:
    """Key the users' twin; a user that arrived twice anyway is bad data, not a crash."""
    try:
        twin.add_key()
    except IntegrityError:
        twin.connection.rollback()
        repeated = twin.repeated_key()
        if repeated is None:
            raise
        raise ApiDataError(
            f"the users' read gave user {repeated!r} twice, in two different slices "
            f"(created_at windows never overlap, so the API answered inconsistently); "
            f"nothing was written: run again"
        ) from None
    twin.connection.commit()


def plan_read(
    connection: Connection, read: Read, last: LastSuccess | None, progress: Progress, **options
) -> dict[str, Plan]:
    progress.update("compare", 0)
    plans = plan_run(connection, read.rows, read.users, last, **options)
    progress.update("compare", len(plans), len(plans), "tables")
    return plans


# --- a run -----------------------------------------------------------------------------------


def sync_snapshot(
    source: Source, into: Destination, progress: Progress = NO_PROGRESS, compare_all: bool = False
) -> RunReport:
    """One run from any source into `into`'s database, under its safeguard; raises a
    SyncError (with its exit code) when the run fails."""
    engine, safeguard = engine_for(into.database), into.safeguard
    try:
        with ExitStack() as held, database_errors(engine):
            held.enter_context(run_lock(engine, describe(engine)))  # until the end
            ensure_schema(engine)
            if abandoned := ledger.mark_abandoned(engine):
                log.warning("%d earlier run(s) died without finishing: abandoned", abandoned)
            run = Run(engine, ledger.start_run(engine, source.label), source, safeguard)
            progress = beating(progress, engine, run.run_id)
            token = current_run.set(run.run_id)
            try:
                return run.execute(progress, compare_all)
            finally:
                current_run.reset(token)
    finally:
        engine.dispose()


@dataclass
class Run:
    """One run, from its ledger row to its outcome."""

    engine: Engine
    run_id: int
    source: Source
    safeguard: Safeguard
    stats: RequestStats = field(default_factory=RequestStats)
    started: float = field(default_factory=time.monotonic)

    def execute(self, progress: Progress, compare_all: bool) -> RunReport:
        committed: RunReport | None = None
        try:
            committed = self._read_plan_apply(progress, compare_all)
            _log_timing(committed)
            return committed
        except KeyboardInterrupt as interrupt:
            if committed is not None:  # the signal came after the commit: the run did succeed
                log.warning("interrupted just after the commit; the run succeeded")
                return committed
            stop = Interrupted.of(interrupt)
            self._record_failure(ledger.ABORTED, f"interrupted by {stop.signal_name}", stop)
            raise stop from None
        except SyncError as error:
            self._record_failure(ledger.FAILED, str(error), error)
            error.run_id = self.run_id  # the CLI's error line names the run
            raise
        except Exception as error:  # a bug: still leave the ledger true, then let it surface
            self._record_failure(ledger.FAILED, f"internal error {type(error).__name__}", error)
            raise

    def _read_plan_apply(self, progress: Progress, compare_all: bool) -> RunReport:
        # One connection for the whole run: the staged (temporary) tables live in its session.
        with (
            database_errors(self.engine, "writing to {} failed"),
            self.engine.connect() as connection,
        ):
            last = ledger.last_success(connection)  # read once, for the source and the plan
            read = read_source(self.source, connection, last, self.stats)
            fetch_seconds = time.monotonic() - self.started
            connection.commit()
            begin_writing(connection)
            known = UNKNOWN if compare_all else read.fingerprints
            plans = plan_read(connection, read, last, progress, writing=True, fingerprints=known)
            repairs = repaired_tables(last, read.fingerprints)
            logged = apply_run(connection, plans, self.safeguard, self.run_id, progress, repairs)
            report = self._report(read, plans, fetch_seconds, logged)
            ledger.finish_run(connection, self.run_id, report, read.fetched, self._label(read))
            connection.commit()
            return report

    def _label(self, read: Read) -> str:
        """The ledger's source: the source's label, and the export job when one read the users.
        The windows are how every run read users before the export job: their rows keep the
        plain label, which analysts' queries may already compare with."""
        how = read.fetched.users_source
        if how is None or how.name == "extension":  # a fallback's name is "export"
            return self.source.label
        return f"{self.source.label} ({how.description})"

    def _report(self, read: Read, plans: dict[str, Plan], fetch_seconds, logged) -> RunReport:
        return RunReport(
            self.run_id,
            {name: plan.count for name, plan in plans.items()},
            read.rows.warnings,
            api_requests=self.stats.requests,
            retries=self.stats.retries,
            rate_limited=self.stats.rate_limited,
            seconds=time.monotonic() - self.started,
            fetch_seconds=fetch_seconds,
            staging_seconds=read.staging_seconds,
            changes_logged=logged,
            users_source=read.fetched.users_source,
        )

    def _record_failure(self, status: str, reason: str, error: BaseException) -> None:
        if not isinstance(error, SyncError):
            reason += "; nothing was written"
        try:
            # Our messages hold no secret; redact makes sure.
            ledger.fail_run(
                self.engine, self.run_id, status, redact(reason), exit_code_of(error), self.stats
            )
        except DatabaseError as ledger_error:  # the database may be what failed
            log.error("could not record the run's failure: %s", ledger_error)


def _log_timing(report: RunReport) -> None:
    log.info(
        "timing: fetch %.2f s (%.2f s of it staging users), apply %.2f s (%d rows written)",
        report.fetch_seconds,
        report.staging_seconds,
        report.seconds - report.fetch_seconds,
        report.rows_written,
    )


def last_success_time(database: DatabaseSettings) -> float | None:
    """Unix time of the last successful run, from the ledger (None: none yet, or no schema)."""
    engine = engine_for(database)
    try:
        if not schema_is_current(engine):
            return None
        finished = ledger.last_success_at(engine)
    finally:
        engine.dispose()
    return finished.replace(tzinfo=timezone.utc).timestamp() if finished else None


# --- a dry run -------------------------------------------------------------------------------


def plan_snapshot(
    source: Source, into: Destination, progress: Progress = NO_PROGRESS, compare_all: bool = False
) -> DryRun:
    """Read and plan like a run from any source; write nothing at all: no lock, no ledger row,
    no history. Planning needs temporary tables, which a read-only connection may hold. A
    database without the schema yet is planned against an empty schema in a scratch SQLite
    file."""
    engine, safeguard = engine_for(into.database, read_only=True), into.safeguard
    try:
        has_schema = schema_is_current(engine)
        with database_errors(engine), ExitStack() as stack:
            target = engine if has_schema else stack.enter_context(scratch_engine())
            connection = stack.enter_context(target.connect())
            last = ledger.last_success(connection) if has_schema else None
            read = read_source(source, connection, last, RequestStats())
            known = UNKNOWN if compare_all else read.fingerprints
            plans = plan_read(connection, read, last, progress, fingerprints=known)
            result = _dry_run(plans, read, safeguard)
            connection.rollback()
            return result
    finally:
        engine.dispose()


def _dry_run(plans: dict[str, Plan], read: Read, safeguard: Safeguard) -> DryRun:
    """The plans' counts and samples, read while their temporary tables exist."""
    samples = {name: _sample(plans[name]) for name in model.SYNCED_TABLES}
    try:
        check_deletes({name: plans[name] for name in model.SYNCED_TABLES}, safeguard)
        refusal = None
    except SyncError as error:
        refusal = str(error)
    counts = {name: plan.count for name, plan in plans.items()}
    return DryRun(counts, samples, read.rows.warnings, refusal, read.stats.requests)


def _sample(plan: Plan) -> Sample:
    size = DRY_RUN_SAMPLE
    inserts, updates = plan.inserted_rows(size), plan.updated_pairs(size)
    return Sample(tuple(plan.keys), inserts, updates, plan.deleted_rows(size))
