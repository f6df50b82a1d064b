"""`backfill --user-details`: every user's full profile, resumable.

A run reads users through the search endpoint, which returns a fixed set of fields. The full
profiles come one of two ways, chosen by `users.source` as a run's users are:
- the bulk user export job (Management API, read:users): one job with PROFILE_FIELDS, a few
  polls, one download, whatever the tenant's size; `auto` takes it when the application has
  the grant, `export` insists on it (no grant: exit 77 naming the fix);
- one `GET /api/users/{id}` per user through the extension: on a large tenant an hours-long,
  rate-limited job (`extension`, or `auto` without the grant).
A job that fails twice falls back to the requests per user (`users.export_fallback`, with a
warning line), or ends the backfill with exit 69 when the fallback is off.

Checkpoints: profiles are committed with the backfill's counts in one transaction, every
CHECKPOINT users on the per-user path and every slice of the file (≤ 1000 users) on the export
path (sql/backfills.py). What is still to do is asked of the database each time, so a killed
backfill resumes without fetching or writing again any profile it had committed: the per-user
path with the first user it had not committed, the export path with a new job (a handful of
requests; the old job's link expired within a minute) of which only the missing profiles are
stored. It holds the run lock, so it never overlaps a sync of the same database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from sync.config import Settings
from sync.errors import ApiError, ExportJobFailed, ExportNotGranted, SchemaError
from sync.source.endpoints import user_path
from sync.source.export_job import PROFILE_FIELDS
from sync.source.extension import ExtensionApi
from sync.source.user_sources import export_client
from sync.sql import backfills
from sync.sql.bulk import chunks
from sync.sql.engine import database_errors, describe, engine_for
from sync.sql.lock import run_lock
from sync.sql.revisions import schema_is_current

log = logging.getLogger(__name__)
CHECKPOINT = 50  # users per commit on the per-user path: what a kill can cost in refetching
Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class BackfillReport:
    backfill_id: int
    fetched: int
    skipped_missing: int
    total: int
    resumed: bool
    requests: int = 0  # API requests (token requests apart), every source counted
    export_job: str | None = None  # the export job whose file gave the profiles
    fallback: str | None = None  # why the export job was given up for requests per user

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
    engine = engine_for(settings.database)
    try:
        with database_errors(engine), run_lock(engine, describe(engine)):
            if not schema_is_current(engine):
                raise SchemaError("the database has no authz-sync tables yet: run `authz-sync run`")
            backfill_id, resumed = backfills.start(engine, backfills.USER_DETAILS, restart)
            total = backfills.count_without_profile(engine, backfill_id)
            report = BackfillReport(backfill_id, 0, 0, total, resumed)
            job = _Backfill(engine, settings, report, progress, transport, sleep)
            job.progress(0, total)
            if total:
                job.read_profiles()
            backfills.finish(engine, backfill_id)
            return report
    finally:
        engine.dispose()


@dataclass
class _Backfill:
    """One backfill's reading: the source chosen, the profiles stored slice by slice."""

    engine: Any
    settings: Settings
    report: BackfillReport
    on_progress: Progress | None
    transport: httpx.BaseTransport | None
    sleep: Callable[[float], None]

    def progress(self, done: int, total: int) -> None:
        if self.on_progress:
            self.on_progress(done, total)

    def read_profiles(self) -> None:
        """Through the export job or per user, as `users.source` says (module docstring)."""
        users = self.settings.users
        if users.source == "extension":
            self.per_user()
            return
        try:
            self.through_export()
        except ExportNotGranted as refused:
            if users.source == "export":
                raise ExportNotGranted(
                    f"{refused}; or set users.source = auto to fetch each profile through the "
                    f"extension instead"
                ) from None
            log.info("no export job (%s): one request per user instead", refused)
            self.per_user()
        except ExportJobFailed as failed:
            if not users.export_fallback:
                raise ExportJobFailed(
                    f"{failed}; users.export_fallback is off, so the backfill stops here "
                    f"(run it again, or turn the fallback on to fetch each profile instead)"
                ) from None
            log.warning("%s; fetching each profile through the extension instead", failed)
            self.report.fallback = str(failed)
            self.per_user()

    def through_export(self) -> None:
        """One export job; each slice's profiles that are still missing, committed with the
        counts. Synced users the file lacks were deleted since the sync: nothing to keep."""
        report, backfill_id = self.report, self.report.backfill_id
        client = export_client(self.settings, self.transport, self.sleep, fields=PROFILE_FIELDS)
        with client as export:
            try:
                for piece in export.read():
                    wanted = backfills.without_profile_among(self.engine, backfill_id, piece)
                    self._save({user_id: piece[user_id] for user_id in sorted(wanted)})
            finally:
                report.requests += export.stats.requests
            report.export_job = export.job_id
        report.skipped_missing += backfills.count_without_profile(self.engine, backfill_id)
        backfills.save_profiles(self.engine, backfill_id, {}, 0)
        self.progress(report.handled, report.total)

    def per_user(self) -> None:
        """`GET /api/users/{id}` for each synced user without a profile, committed every
        CHECKPOINT users, in id order."""
        todo = backfills.users_without_profile(self.engine, self.report.backfill_id)
        with ExtensionApi(self.settings, transport=self.transport, sleep=self.sleep) as api:
            try:
                for chunk in chunks(todo, CHECKPOINT):
                    self._save(_fetch_profiles(api, chunk, self.report))
            finally:
                self.report.requests += api.stats.requests

    def _save(self, profiles: dict[str, Any]) -> None:
        report = self.report
        report.fetched += len(profiles)
        still_to_do = report.total - report.handled
        backfills.save_profiles(self.engine, report.backfill_id, profiles, still_to_do)
        self.progress(report.handled, report.total)


def _fetch_profiles(api: ExtensionApi, chunk: list[str], report: BackfillReport) -> dict[str, Any]:
    """The profiles of `chunk`; a user answering 404 is counted as gone (deleted since the
    last sync: nothing to keep)."""
    profiles = {}
    for user_id in chunk:
        try:
            profiles[user_id] = api.get(user_path(user_id))
        except ApiError as error:
            if error.status != 404:
                raise
            report.skipped_missing += 1
    return profiles
