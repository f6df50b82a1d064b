"""Where a run's data comes from: the extension's API (`run`), or another source of the same lists.

A source has a `label` (what the ledger's `source` column records), `stats` (the requests it
sent), `fingerprints` and `user_windows` (of what it read, once read: fingerprint.py,
paging.py) and `read(connection)`. That returns the users — staged into a temporary table on
the run's connection, or an UnchangedPlan when the source holds none and the stored users
stay — and the snapshot of groups, roles and permissions as the extension stores them. The
runner takes any source and does the rest (lock, ledger, checks, plan, safeguard, writes) the
same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

import httpx
from sqlalchemy import Connection, func, select

from sync.config import Settings
from sync.fingerprint import UNKNOWN, Fingerprints, UserDigests, combine
from sync.progress import NO_PROGRESS, Progress
from sync.source.extension import ExtensionApi, Listing, RequestStats
from sync.source.users import UserReader, Window
from sync.sql import schema
from sync.sql.ledger import last_success
from sync.sql.twins import StagedTable, UnchangedPlan
from sync.transform import Snapshot, user_row

log = logging.getLogger(__name__)

Users = StagedTable | UnchangedPlan  # a run's new users, or "keep the stored ones"


class SnapshotSource(Protocol):
    label: str
    stats: RequestStats
    fingerprints: Fingerprints
    user_windows: list[Window] | None  # the created_at windows users were read in, if any

    def read(self, connection: Connection) -> tuple[Users, Snapshot]: ...


class ApiSource:
    """Everything the extension's API answers: users, groups, roles and permissions."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        progress: Progress = NO_PROGRESS,
    ):
        self.settings, self.transport, self.sleep = settings, transport, sleep
        self.progress = progress
        self.label = settings.extension_url
        self.stats = RequestStats()
        self.fingerprints = UNKNOWN
        self.user_windows: list[Window] | None = None  # the created_at windows read, once read

    def read(self, connection: Connection) -> tuple[Users, Snapshot]:
        """Users staged on `connection` (a temporary table), the lists in memory."""
        last = last_success(connection)
        users = StagedTable(connection, schema.users, schema.SYNCED_TABLES[schema.users.name])
        api = ExtensionApi(self.settings, transport=self.transport, sleep=self.sleep)
        self.stats = api.stats
        with api:
            return users, self._fetch(api, users, last.user_windows if last else [])

    def _fetch(self, api: ExtensionApi, users: StagedTable, windows: list[Window]) -> Snapshot:
        """Read the three lists, and stream every user into the `users` twin, slice by slice,
        in the windows the last successful run read (`windows`) where they still serve.

        Each slice is validated and staged, then let go, so memory does not grow with the
        tenant. Staged rows are committed as they come: the twin is temporary and private to
        this connection, and a short transaction holds nothing back on the server during a
        long read.
        """
        api.check_scopes()
        groups, roles, permissions = (
            _listing(api, resource, self.progress)
            for resource in ("groups", "roles", "permissions")
        )
        reader = UserReader(
            api.users_page,
            self.settings.users_per_page,
            self.settings.concurrency,
            on_progress=partial(self.progress.update, "users"),
            previous=windows,
        )
        digests = UserDigests()
        for piece in reader.read():
            rows = [user_row(user) for user in piece.values()]
            for row in rows:
                digests.add(row)
            users.add(rows)
            users.connection.commit()
        log.info(
            "fetched %d users (%d slices, %d probes over the cap), %d groups, %d roles, "
            "%d permissions",
            reader.count,
            len(reader.slices),
            reader.probes_wasted,
            len(groups.records),
            len(roles.records),
            len(permissions.records),
        )
        self.fingerprints = Fingerprints(
            authz=combine(groups.digest, roles.digest, permissions.digest),
            user_ids=digests.ids.hexdigest(),
            users=digests.rows.hexdigest(),
        )
        self.user_windows = reader.windows
        return Snapshot(groups.records, roles.records, permissions.records)


def _listing(api: ExtensionApi, resource: str, progress: Progress) -> Listing:
    progress.update(resource, 0)  # one request: a pulsing bar until it answers
    listing = api.listing(resource)
    progress.update(resource, len(listing.records), len(listing.records))
    return listing


def stored_users(connection: Connection) -> UnchangedPlan:
    """The users as the database holds them, for a source that has none (an export file): they
    stay as they are, and members are flagged `is_orphan` against them (apply.plan_run)."""
    rows = connection.scalar(select(func.count()).select_from(schema.users))
    return UnchangedPlan.holding(schema.users, schema.SYNCED_TABLES[schema.users.name], rows)
