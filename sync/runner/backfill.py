"""`backfill --user-details`: every user's full profile (GET /api/users/{id}), resumable.

A run reads users through the search endpoint, which returns a fixed set of fields; the full
profile costs one request per user, so on a large tenant this is an hours-long, rate-limited job
run once (and now and then). Progress is committed every CHECKPOINT users, in the same
transaction as the profiles (sql/backfills.py): a killed backfill resumes with the first user it
had not committed, and never fetches a committed one again. It holds the run lock, so it never
overlaps a sync of the same database (both spend the same rate limit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from sync.config import Settings
from sync.errors import ApiError, SchemaError
from sync.source.endpoints import user_path
from sync.source.extension import ExtensionApi
from sync.sql import backfills
from sync.sql.bulk import chunks
from sync.sql.engine import database_errors, describe, engine_for
from sync.sql.lock import run_lock
from sync.sql.revisions import schema_is_current

log = logging.getLogger(__name__)
CHECKPOINT = 50  # users per commit: what a kill can cost in refetching
Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class BackfillReport:
    backfill_id: int
    fetched: int
    skipped_missing: int
    total: int
    resumed: bool

    @property
    def handled(self) -> int:
        return self.fetched + self.skipped_missing


def backfill_user_details(
    settings: Settings,
    *,
    restart: bool = False,
    progress: Progress | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillReport:
    progress = progress or (lambda done, total: None)
    engine = engine_for(settings.database)
    try:
        with database_errors(engine), run_lock(engine, describe(engine)):
            if not schema_is_current(engine):
                raise SchemaError("the database has no authz-sync tables yet: run `authz-sync run`")
            backfill_id, resumed = backfills.start(engine, backfills.USER_DETAILS, restart)
            todo = backfills.users_without_profile(engine, backfill_id)
            report = BackfillReport(backfill_id, 0, 0, len(todo), resumed)
            with ExtensionApi(settings, transport=transport, sleep=sleep) as api:
                progress(0, report.total)
                for chunk in chunks(todo, CHECKPOINT):
                    profiles = _fetch_profiles(api, chunk, report)
                    backfills.save_profiles(
                        engine, backfill_id, profiles, report.total - report.handled
                    )
                    progress(report.handled, report.total)
            backfills.finish(engine, backfill_id)
            return report
    finally:
        engine.dispose()


def _fetch_profiles(api: ExtensionApi, chunk: list[str], report: BackfillReport) -> dict[str, Any]:
    profiles = {}
    for user_id in chunk:
        try:
            profiles[user_id] = api.get(user_path(user_id))
        except ApiError as error:
            if error.status != 404:
                raise
            report.skipped_missing += 1  # deleted since the last sync: nothing to keep
    report.fetched += len(profiles)
    return profiles
