"""The extension's API as a source of a run: the three lists, then every user, slice by slice.

A source (this one, or export_file.py) is an object with a `label` (what the ledger's `source`
column records) and `read(previous_windows)`: a generator of user slices — lists of checked user
rows, at most one `created_at` window (≤ 1000 users) each — that returns a `model.Fetched` when
exhausted. The runner stores each slice and lets it go, so memory stays one slice whatever the
tenant's size. Nothing here touches the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import httpx

from sync.config import Settings
from sync.fingerprint import UserDigests, combine
from sync.model import (
    Fetched,
    Fingerprints,
    RequestStats,
    Snapshot,
    UserSlices,
    UsersSource,
    Window,
)
from sync.progress import NO_PROGRESS, Progress
from sync.source.extension import ExtensionApi, Listing
from sync.source.user_sources import choose_users
from sync.transform import user_row

log = logging.getLogger(__name__)


class Source(Protocol):
    label: str

    def read(self, previous_windows: Sequence[Window], stats: RequestStats) -> UserSlices:
        """User slices, then the Fetched; every request counted in `stats` as it is sent."""


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
        self.label = settings.extension.url

    def read(self, previous_windows: Sequence[Window], stats: RequestStats) -> UserSlices:
        """The three lists, then every user, in the windows the last successful run read
        (`previous_windows`) where they still serve."""
        api = ExtensionApi(self.settings, transport=self.transport, sleep=self.sleep, stats=stats)
        with api:
            api.check_scopes()
            listings = [_listing(api, name, self.progress) for name in LISTS]
            users = choose_users(
                self.settings,
                api,
                previous_windows,
                stats,
                self.progress,
                self.transport,
                self.sleep,
            )
            digests, count = UserDigests(), 0
            for piece in users.read():
                rows = [user_row(user) for user in piece.values()]
                digests.add_all(rows)
                count += len(rows)
                yield rows
        _log_fetched(count, users.description, listings)
        fingerprints = Fingerprints(
            authz=combine(*(listing.digest for listing in listings)),
            user_ids=digests.ids.hexdigest(),
            users=digests.rows.hexdigest(),
        )
        snapshot = Snapshot(*(listing.records for listing in listings))
        source = UsersSource(
            users.name, users.description, users.name == "export" and bool(users.fallback),
            tuple(users.notes),
        )  # fmt: skip
        return Fetched(snapshot, True, fingerprints, users.windows, source)


LISTS = ("groups", "roles", "permissions")


def _listing(api: ExtensionApi, resource: str, progress: Progress) -> Listing:
    progress.update(resource, 0)  # one request: a pulsing bar until it answers
    listing = api.listing(resource)
    progress.update(resource, len(listing.records), len(listing.records))
    return listing


def _log_fetched(users: int, how: str, listings: list[Listing]) -> None:
    groups, roles, permissions = (len(listing.records) for listing in listings)
    log.info(
        "fetched %d users (%s), %d groups, %d roles, %d permissions",
        users,
        how,
        groups,
        roles,
        permissions,
    )
