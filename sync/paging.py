"""Read every user of /api/users, past Auth0's 1000-result cap, or fail saying why.

Auth0's user search returns at most the first 1000 results of a query, sorted by last_login (so
pages shift when someone logs in mid-read). We therefore:
1. ask for the whole tenant; if `total` < 1000, read its pages;
2. otherwise walk through time in `created_at` windows (`q=created_at:[A TO B}`) — a user's
   created_at never changes, so windows never overlap — sizing each window from the density the
   last one showed, and shrinking one whose `total` is still ≥ 1000;
3. in every slice, de-duplicate by user_id and compare what we got with `total`; a short slice
   is read again (a login moved somebody across a page boundary); still short → IncompleteReadError.
A slice that cannot be split (≥ 1000 users created within the same millisecond) is an
IncompleteReadError too: a partial read is never passed off as complete.
"""

from __future__ import annotations

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
SLICE_TARGET = 900  # users per window: near the cap, with room for uneven density
MAX_GROWTH = 8.0  # a window is at most this much longer than the last one (sparse periods)
MEASURED_GROWTH = 2.0  # … inside a span known to hold over 1000 users
MAX_PASSES = 3  # reads of one slice before a shortfall counts as real
AUTH0_EPOCH = datetime(2013, 1, 1, tzinfo=timezone.utc)  # no tenant has users from before
RESOLUTION = timedelta(milliseconds=1)  # created_at precision in Auth0

FetchPage = Callable[[int, int, "str | None"], dict[str, Any]]
OnProgress = Callable[[int, int], None]  # (users read, users the tenant holds)


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


def _next_window(
    start: datetime | None,
    cursor: datetime,
    span: tuple[datetime, int, bool],
    end: datetime,
    last: tuple[timedelta, int] | None,
    cap: int = SEARCH_CAP,
) -> Slice:
    """The next window: the whole span if it holds fewer than the cap, else a guess.

    `span` is (end, users in it, measured): a measured span is a window that came back over
    the cap, so its users are known to be there, and the guess never shrinks below the span's
    average share (growing at most MEASURED_GROWTH past empty stretches); the rest of the
    tenant is only an average over years, so the density just seen rules there.
    """
    span_end, span_count, measured = span
    if span_count < cap:
        high = span_end
    else:
        share = (span_end - cursor) * SLICE_TARGET / span_count
        if last is not None:
            length, found = last
            growth = MEASURED_GROWTH if measured else MAX_GROWTH
            local = length * min(growth, SLICE_TARGET / max(found, 1))
            share = max(share, local) if measured else local
        high = min(span_end, cursor + max(RESOLUTION, share))
    if high >= end:
        return Slice(start, None)
    return Slice(start, max(_round_ms(high), cursor + RESOLUTION))


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
        on_progress: OnProgress | None = None,
    ):
        self.fetch = fetch
        self.on_progress = on_progress or (lambda done, total: None)
        self.total = 0  # what the first answer said the tenant holds
        self.per_page = per_page
        # What one query can deliver: whole pages within the first 1000 (990 with 30 per page).
        self.cap = SEARCH_CAP // per_page * per_page
        self.concurrency = concurrency
        self.now = now
        self.slices: list[Slice] = []  # the windows read, in order
        self.probes_wasted = 0  # first pages of windows that held too many users
        self.count = 0  # users read so far

    def read(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Every user, one slice at a time (by user_id; at most `cap` of them), so a caller
        can store each slice and let it go: memory does not grow with the tenant."""
        self.count = 0
        first = self.fetch(1, self.per_page, None)
        self.total = first["total"]
        if first["total"] < self.cap:
            yield self._read_slice(Slice(), first)
        else:
            yield from self._walk(first["total"])
        self.on_progress(self.count, self.count)  # the tenant may have changed meanwhile

    def read_all(self) -> dict[str, dict[str, Any]]:
        """Every user in one dict: for tests and small tenants."""
        users: dict[str, dict[str, Any]] = {}
        for piece in self.read():
            users.update(piece)
        return users

    def _walk(self, total: int) -> Iterator[dict[str, dict[str, Any]]]:
        """Read the tenant in consecutive created_at windows, each sized to hold about
        SLICE_TARGET users, from what the totals already told us.

        Counts add up: while walking we always know how many users lie in a span ahead (at
        first the whole tenant; after a window came back over the cap, that window). A span
        holding fewer than the cap is read as one window. Otherwise the next window is sized
        from the density of the window just read (users are created unevenly: launches, bulk
        imports) or, with no such window, from the span's own average. A window at or over the
        cap is the only request wasted, and it becomes the span for the next guess.
        """
        end = self.now() + timedelta(days=1)  # the last window is open-ended anyway
        start: datetime | None = None  # the first window is open towards the past
        cursor = AUTH0_EPOCH
        span = (end, total, False)  # (end, users known to lie in [cursor, end), measured)
        last: tuple[timedelta, int] | None = None  # length and count of the last window read
        while True:
            piece = _next_window(start, cursor, span, end, last, self.cap)
            first = self.fetch(1, self.per_page, piece.query())
            found = first["total"]
            window_end = piece.end or end
            if found >= self.cap:
                if window_end - cursor <= RESOLUTION:
                    raise IncompleteReadError(
                        f"{found} users were created in the same millisecond ({piece.query()}): "
                        f"Auth0 returns only the first {SEARCH_CAP} of them, so the user list "
                        f"cannot be read completely"
                    )
                span, last = (window_end, found, True), None
                self.probes_wasted += 1
                continue
            self.slices.append(piece)
            yield self._read_slice(piece, first)
            if piece.end is None:
                return
            last = (piece.end - cursor, found)
            start = cursor = piece.end
            if cursor >= span[0]:  # the known span is read: the rest of the tenant is ahead
                span = (end, max(total - self.count, 0), False)
            else:
                span = (span[0], max(span[1] - found, 0), span[2])

    def _read_slice(self, piece: Slice, first: dict[str, Any]) -> dict[str, dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        total = first["total"]
        for attempt in range(1, MAX_PASSES + 1):
            pages = [first] if attempt == 1 else []
            pages_needed = min(math.ceil(total / self.per_page), self.cap // self.per_page)
            start = 2 if attempt == 1 else 1
            pages.extend(self._fetch_pages(piece, range(start, pages_needed + 1)))
            for page in pages:
                total = page["total"]  # the latest count: users come and go during a read
                for user in _page_users(page):
                    seen[user["user_id"]] = user
                self.on_progress(self.count + len(seen), self.total)
            if len(seen) >= total:
                self.count += len(seen)
                return seen
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
