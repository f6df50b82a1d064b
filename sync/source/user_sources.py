"""Where a run reads its users: the extension's created_at windows, or Auth0's export job.

`users.source` chooses (config.USER_SOURCES): `extension` pages /api/users in windows
(users.py, about one request per 100 users); `export` reads one bulk export job of the
Management API (export_job.py, a handful of requests whatever the size); `auto` takes the export
job when the application has a Management API grant with read:users, else the windows. Both
yield the same slices, {user_id: user} of at most 1000 users, mapped to the same rows by
transform.user_row, so switching sources writes nothing.

An export job that fails twice falls back to the windows (`users.export_fallback`), as long as
no user was handed on yet; the fallback is a warning, a note in the run's warnings (the
ledger keeps them) and a metric. The export's count is checked against the extension's total.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import httpx

from sync.config import EXPORT_TOLERANCE_USERS, Settings
from sync.errors import ExportJobFailed, ExportNotGranted
from sync.model import RequestStats, Window
from sync.progress import Progress
from sync.source.export_job import USER_FIELDS, ExportJobClient, ExportSettings, compare_counts
from sync.source.extension import ExtensionApi
from sync.source.users import UserReader

log = logging.getLogger(__name__)
Piece = dict[str, dict[str, Any]]


class WindowUsers:
    """Users through the extension's /api/users, in the windows the last run read."""

    name = "extension"

    def __init__(self, api: ExtensionApi, settings: Settings, previous: Sequence[Window], progress):
        self.reader = UserReader(
            api.users_page,
            settings.extension.users_per_page,
            settings.extension.concurrency,
            on_progress=partial(progress.update, "users"),
            previous=previous,
        )
        self.notes: list[str] = []

    def read(self) -> Iterator[Piece]:
        yield from self.reader.read()
        log.info(
            "read %d users in %d windows (%d probes over the cap)",
            self.reader.count,
            len(self.reader.slices),
            self.reader.probes_wasted,
        )

    @property
    def windows(self) -> list[Window] | None:
        return self.reader.windows

    @property
    def description(self) -> str:
        return "users: extension windows"


class ExportUsers:
    """Users through one Management API export job, checked against the extension's total;
    the windows when the job fails twice and the fallback is on."""

    name = "export"

    def __init__(self, client: ExportJobClient, api: ExtensionApi, settings: Settings, windows):
        self.client, self.api, self.settings = client, api, settings
        self._windows: Callable[[], WindowUsers] = windows  # built only if it falls back
        self.fallback: WindowUsers | None = None
        self.notes: list[str] = []

    def read(self) -> Iterator[Piece]:
        handed_on = 0
        try:
            with self.client:
                for piece in self.client.read():
                    handed_on += len(piece)
                    yield piece
        except ExportJobFailed as failure:
            if handed_on or not self.settings.users.export_fallback:
                raise ExportJobFailed(
                    f"{failure}; users.export_fallback is off, so the run stops (set it to true, "
                    f"or users.source = extension)"
                    if not handed_on
                    else str(failure)
                ) from None
            yield from self._fall_back(failure)
            return
        self._check_count()

    def _fall_back(self, failure: ExportJobFailed) -> Iterator[Piece]:
        note = f"export job failed ({failure}); users read through the extension instead"
        log.warning("%s", note)
        self.notes.append(note)
        self.fallback = self._windows()
        yield from self.fallback.read()

    def _check_count(self) -> None:
        total = self.api.users_page(1, 1, None)["total"]
        tolerance = self.settings.users.export_tolerance / 100
        check = compare_counts(self.client.count, total, tolerance, EXPORT_TOLERANCE_USERS)
        check.raise_for_error()  # ApiDataError: exit 65, nothing written
        if check.level == "warning":
            log.warning("%s", check.message)
            self.notes.append(check.message)
        else:
            log.info("%s", check.message)

    @property
    def windows(self) -> list[Window] | None:
        """None (keep the last run's windows) unless the run fell back to them."""
        return self.fallback.windows if self.fallback else None

    @property
    def description(self) -> str:
        if self.fallback:
            return "users: extension windows, after the export job failed"
        return f"users: export job {self.client.job_id}"


def export_client(
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stats: RequestStats | None = None,
    fields: tuple[str, ...] = USER_FIELDS,
) -> ExportJobClient:
    """A client for export jobs of `fields` (a backfill asks for PROFILE_FIELDS)."""
    users = settings.users
    export = ExportSettings.from_settings(
        settings,
        settings.auth0.management_audience,
        deadline=users.export_timeout,
        poll_initial=users.export_poll_interval,
        fields=fields,
    )
    return ExportJobClient(export, transport=transport, sleep=sleep, stats=stats)


def export_grant(client: ExportJobClient) -> str | None:
    """None when the application may run export jobs, else why not (one line)."""
    try:
        client.check_grant()
    except ExportNotGranted as refusal:
        return str(refusal)
    return None


def choose_users(
    settings: Settings,
    api: ExtensionApi,
    previous: Sequence[Window],
    stats: RequestStats,
    progress: Progress,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> WindowUsers | ExportUsers:
    """The user source `users.source` asks for; `auto` probes the Management API grant (one
    token request, reused by the job)."""
    windows = partial(WindowUsers, api, settings, previous, progress)
    if settings.users.source == "extension":
        return windows()
    client = export_client(settings, transport, sleep, stats)
    if settings.users.source == "auto" and (refusal := export_grant(client)):
        client.close()
        log.info("users through the extension's /api/users (users.source = auto): %s", refusal)
        return windows()
    return ExportUsers(client, api, settings, windows)
