"""`backfill --user-details`: every user's full profile (GET /api/users/{id}), resumable.

A run reads users through the search endpoint, which returns a fixed set of fields; the full
profile costs one request per user, so on a large tenant this is an hours-long, rate-limited job
run once (and now and then). Progress is committed every CHECKPOINT users, in the same
transaction as the profiles: a killed backfill resumes with the first user it had not
committed, and never fetches a committed one again. It holds the run lock, so it never overlaps
a sync of the same database (both spend the same rate limit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import Connection, Engine, func, insert, select, update

from sync.config import Settings
from sync.errors import ApiError, SchemaError
from sync.source.extension import ExtensionApi, user_path
from sync.sql import schema
from sync.sql.bulk import chunks, upsert_statement
from sync.sql.engine import database_errors, describe, open_engine, schema_is_current
from sync.sql.ledger import utcnow
from sync.sql.lock import run_lock

log = logging.getLogger(__name__)
CHECKPOINT = 50  # users per commit: what a kill can cost in refetching
KIND = "user-details"
Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class BackfillReport:
    backfill_id: int
    fetched: int
    skipped_missing: int
    total: int
    resumed: bool


def backfill_user_details(
    settings: Settings,
    *,
    restart: bool = False,
    progress: Progress | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillReport:
    engine = open_engine(settings.database_url, schema=settings.database_schema)
    try:
        with database_errors(engine), run_lock(engine, describe(engine)):
            if not schema_is_current(engine):
                raise SchemaError("the database has no authz-sync tables yet: run `authz-sync run`")
            backfill_id, resumed = _start(engine, restart)
            todo = _users_to_fetch(engine, backfill_id)
            report = BackfillReport(backfill_id, 0, 0, len(todo), resumed)
            with ExtensionApi(settings, transport=transport, sleep=sleep) as api:
                if progress:
                    progress(0, report.total)
                for chunk in chunks(todo, CHECKPOINT):
                    _fetch_chunk(engine, api, backfill_id, chunk, report)
                    if progress:
                        progress(report.fetched + report.skipped_missing, report.total)
            _finish(engine, backfill_id)
            return report
    finally:
        engine.dispose()


def _start(engine: Engine, restart: bool) -> tuple[int, bool]:
    """The unfinished backfill to resume, or a new one."""
    table = schema.backfills
    with engine.begin() as connection:
        unfinished = connection.scalar(
            select(table.c.backfill_id)
            .where(table.c.kind == KIND, table.c.status == "running")
            .order_by(table.c.backfill_id.desc())
        )
        if unfinished is not None and not restart:
            return unfinished, True
        if unfinished is not None:
            connection.execute(
                update(table).where(table.c.backfill_id == unfinished).values(status="abandoned")
            )
        created = connection.execute(
            insert(table).values(kind=KIND, started_at=utcnow(), status="running")
        )
        return created.inserted_primary_key[0], False


def _users_to_fetch(engine: Engine, backfill_id: int) -> list[str]:
    done = select(schema.user_details.c.user_id).where(
        schema.user_details.c.backfill_id == backfill_id
    )
    query = (
        select(schema.users.c.user_id)
        .where(schema.users.c.user_id.not_in(done))
        .order_by(schema.users.c.user_id)
    )
    with engine.connect() as connection:
        return list(connection.scalars(query))


def _fetch_chunk(
    engine: Engine, api: ExtensionApi, backfill_id: int, chunk: list[str], report: BackfillReport
) -> None:
    rows = []
    for user_id in chunk:
        try:
            profile = api.get(user_path(user_id))
        except ApiError as error:
            if error.status != 404:
                raise
            report.skipped_missing += 1  # deleted since the last sync: nothing to keep
            continue
        rows.append(
            {
                "user_id": user_id,
                "profile": profile,
                "fetched_at": utcnow(),
                "backfill_id": backfill_id,
            }
        )
    with engine.begin() as connection:  # the profiles and the checkpoint land together
        if rows:
            statement = upsert_statement(connection, schema.user_details, ("user_id",))
            connection.execute(statement, rows)
        report.fetched += len(rows)
        _record_progress(connection, backfill_id, report)


def _record_progress(connection: Connection, backfill_id: int, report: BackfillReport) -> None:
    details = schema.user_details
    fetched = connection.scalar(
        select(func.count()).select_from(details).where(details.c.backfill_id == backfill_id)
    )
    table = schema.backfills
    connection.execute(
        update(table)
        .where(table.c.backfill_id == backfill_id)
        .values(users_fetched=fetched, users_total=fetched + report.total - _handled(report))
    )


def _finish(engine: Engine, backfill_id: int) -> None:
    table = schema.backfills
    with engine.begin() as connection:
        connection.execute(
            update(table)
            .where(table.c.backfill_id == backfill_id)
            .values(status="finished", finished_at=utcnow())
        )


def _handled(report: BackfillReport) -> int:
    return report.fetched + report.skipped_missing
