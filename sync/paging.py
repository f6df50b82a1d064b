"""Read every user of /api/users, past Auth0's 1000-result cap, or fail saying why.

Auth0's user search returns at most the first 1000 results of a query, sorted by last_login (so
pages shift when someone logs in mid-read). We therefore:
1. ask for the whole tenant; if `total` < 1000, read its pages;
2. otherwise slice the query by `created_at` ranges (`q=created_at:[A TO B}`) — a user's
   created_at never changes, so slices never overlap — and split a slice again while its `total`
   is still ≥ 1000;
3. in every slice, de-duplicate by user_id and compare what we got with `total`; a short slice
   is read again (a login moved somebody across a page boundary); still short → IncompleteReadError.
A slice that cannot be split (≥ 1000 users created within the same millisecond) is an
IncompleteReadError too: a partial read is never passed off as complete.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import ApiDataError, IncompleteReadError

log = logging.getLogger(__name__)

SEARCH_CAP = 1000  # Auth0 returns at most this many results of one query
SLICE_TARGET = 800  # aim below the cap so that users created during the read still fit
MAX_PASSES = 3  # reads of one slice before a shortfall counts as real
AUTH0_EPOCH = datetime(2013, 1, 1, tzinfo=timezone.utc)  # no tenant has users from before
RESOLUTION = timedelta(milliseconds=1)  # created_at precision in Auth0

FetchPage = Callable[[int, int, "str | None"], dict[str, Any]]


@dataclass(frozen=True)
class Slice:
    """created_at in [start, end); None is an open end, so no user can fall outside the slices."""

    start: datetime | None = None
    end: datetime | None = None

    def query(self) -> str | None:
        if self.start is None and self.end is None:
            return None
        low = _lucene_time(self.start) if self.start else "*"
        high = _lucene_time(self.end) if self.end else "*"
        return f"created_at:[{low} TO {high}{'}' if self.end else ']'}"

    def split(self, parts: int, now: datetime) -> list[Slice]:
        low = self.start or AUTH0_EPOCH
        high = self.end or now + timedelta(days=1)
        step = max(RESOLUTION, (high - low) / parts)
        points = []
        point = low + step
        while point < high and len(points) < parts - 1:
            points.append(_round_ms(point))
            point += step
        bounds = [self.start, *points, self.end]
        return [Slice(a, b) for a, b in itertools.pairwise(bounds)]

    def can_split(self, now: datetime) -> bool:
        low = self.start or AUTH0_EPOCH
        high = self.end or now + timedelta(days=1)
        return high - low > RESOLUTION


def _lucene_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def _round_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class UserReader:
    """Reads every user through `fetch(page, per_page, q)`, slicing as the module doc says."""

    def __init__(
        self,
        fetch: FetchPage,
        per_page: int = 100,
        concurrency: int = 1,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.fetch = fetch
        self.per_page = per_page
        self.concurrency = concurrency
        self.now = now
        self.slices_read = 0

    def read_all(self) -> dict[str, dict[str, Any]]:
        users: dict[str, dict[str, Any]] = {}
        self._read_slice(Slice(), users)
        return users

    def _read_slice(self, piece: Slice, users: dict[str, dict[str, Any]]) -> None:
        first = self.fetch(1, self.per_page, piece.query())
        total = first["total"]
        if total >= SEARCH_CAP:
            now = self.now()
            if not piece.can_split(now):
                raise IncompleteReadError(
                    f"{total} users were created in the same millisecond ({piece.query()}): "
                    f"Auth0 returns only the first {SEARCH_CAP} of them, so the user list cannot "
                    f"be read completely"
                )
            parts = max(2, math.ceil(total / SLICE_TARGET))
            log.debug("slice %s holds %d users: splitting in %d", piece.query(), total, parts)
            for sub_slice in piece.split(parts, now):
                self._read_slice(sub_slice, users)
            return
        self.slices_read += 1
        self._read_pages(piece, first, users)

    def _read_pages(self, piece: Slice, first: dict[str, Any], users: dict[str, dict]) -> None:
        seen: set[str] = set()
        total = first["total"]
        for attempt in range(1, MAX_PASSES + 1):
            pages = [first] if attempt == 1 else []
            pages_needed = min(math.ceil(total / self.per_page), SEARCH_CAP // self.per_page)
            start = 2 if attempt == 1 else 1
            pages.extend(self._fetch_pages(piece, range(start, pages_needed + 1)))
            for page in pages:
                total = page["total"]  # the latest count: users come and go during a read
                for user in _page_users(page):
                    seen.add(user["user_id"])
                    users[user["user_id"]] = user
            if len(seen) >= total:
                return
            log.info(
                "read %d of %d users in %s; reading it again (logins reorder pages)",
                len(seen),
                total,
                piece.query() or "the tenant",
            )
        raise IncompleteReadError(
            f"read {len(seen)} distinct users of the {total} that /api/users reported "
            f"for {piece.query() or 'the tenant'} after {MAX_PASSES} passes: users are being "
            f"deleted or reordered faster than they can be read; run again later"
        )

    def _fetch_pages(self, piece: Slice, numbers: range) -> Iterator[dict[str, Any]]:
        query = piece.query()
        if self.concurrency == 1 or len(numbers) < 2:
            return (self.fetch(number, self.per_page, query) for number in numbers)
        with ThreadPoolExecutor(self.concurrency) as pool:
            return iter(list(pool.map(lambda n: self.fetch(n, self.per_page, query), numbers)))


def _page_users(page: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for user in page["users"]:
        if not isinstance(user, dict) or not isinstance(user.get("user_id"), str):
            raise ApiDataError(f"GET /api/users answered a user without a user_id: {user!r:.120}")
        yield user
