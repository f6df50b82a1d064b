"""Read every user of /api/users, past Auth0's 1000-result cap, or fail saying why.

Auth0's user search returns at most the first 1000 results of a query, sorted by last_login (so
pages shift when someone logs in mid-read). We therefore:
1. ask for the whole tenant; if `total` fits in the pages a query can give (1000 with 100 per
   page, 990 with 30), read its pages;
2. otherwise walk through time in `created_at` windows (`q=created_at:[A TO B}`) — a user's
   created_at never changes, so windows never overlap — reading again the windows the last
   successful run read (_replayed_end), else sizing each window from every count the totals
   gave (_next_end), and shrinking one whose `total` is still over 1000;
3. in every slice, de-duplicate by user_id and compare what we got with `total`; a short slice
   is read again (a login moved somebody across a page boundary); still short → IncompleteReadError.
A slice that cannot be split (≥ 1000 users created within the same millisecond) is an
IncompleteReadError too: a partial read is never passed off as complete.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sync.errors import ApiDataError, IncompleteReadError
from sync.model import Window

log = logging.getLogger(__name__)

SEARCH_CAP = 1000  # Auth0 returns at most this many results of one query
# Users a window aims at, as a share of the cap. A guessed window's count is uncertain by a few
# percent (random sign-ups, a rate that drifts); aiming just under 9 full pages costs least
# between a partial last page and a probe over the cap (measured: bench/slicing.py).
TARGET = 0.885
FULL = 0.85  # a known count at least this share of the cap is read as it is
EVEN_SLACK = 3.0  # standard deviations of surplus before a span counts as holding a clump
QUIET_GROWTH = 8.0  # a window that came back nearly empty is followed by one this much longer
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


def _next_end(
    cursor: datetime,
    known: list[tuple[datetime, int]],
    density: float,
    reach: float,
    cap: int,
) -> tuple[datetime | None, float | None]:
    """Where the next window [cursor, end) should end (None: the rest of the tenant fits in
    it), and how many users beyond the background rate it may hold (None: it may hold so many
    that its count says nothing about the background).

    `known` lists (t, users in [cursor, t)) for every t a total told us, ascending, ending with
    the tenant's end: the window reaches into the first known span [a, b) that takes it to the
    cap, (a, na) the last point at or under the cap and (b, nb) the first over it. `density`
    is the background sign-up rate near the cursor (users per second; 0 while unknown).

    Sign-ups are a background rate plus clumps (bulk imports: hundreds or thousands of users
    within an hour). A span holding about what the background predicts is cut where the
    rate says. A short span holding a clump (it came back over the cap) is cut so that the
    window stays under the cap even if the whole clump lies in it; a clump too big for that is
    narrowed down by halving the span, then split evenly. Never reaching b saves a probe known
    to come back over the cap.
    """
    over = next((i for i, (_, n) in enumerate(known) if n > cap), None)
    if over is None:
        return None, 0.0
    a, na = known[over - 1] if over else (cursor, 0)
    b, nb = known[over]
    held = na - density * (a - cursor).total_seconds()  # beyond the background in [cursor, a)
    if na >= FULL * cap:
        return a, held  # a known count that fills the window: no guess needed
    if b - a <= RESOLUTION:  # cannot be split: read up to a, or the probe fails and says so
        return (a, held) if a > cursor else (b, None)
    span = (b - a).total_seconds()
    share, clump = _share(span, TARGET * cap - na, na, nb - na, density, reach, cap, held)
    if share is None:
        return a, held  # the clump does not fit beside what is known: read that first
    high = a + timedelta(seconds=share) if share < span else a + (b - a) / 2
    return min(max(_round_ms(high), a + RESOLUTION), b - RESOLUTION), clump


def _share(
    span: float,
    room: float,
    na: int,
    inside: int,
    density: float,
    reach: float,
    cap: int,
    held: float,
) -> tuple[float | None, float | None]:
    """How many seconds of the span [a, b) the window takes (None: none, stop at a), and the
    users beyond the background it may then hold. `room`: users the window can still take;
    `inside`: users the span holds."""
    if density <= 0:  # nothing seen yet (or only empty windows): split the span's average,
        # reaching further after each empty window (the tenant may start years after 2013)
        return max(span * room / inside, reach), held
    background = density * span
    excess = inside - background  # users the span holds beyond the background rate
    if background > 2 * cap or excess <= EVEN_SLACK * math.sqrt(background + 1):
        # A long span (the rest of the tenant) or one that holds what the background
        # rate predicts: the local rate says where the users are.
        return room / max(density, inside / span), held
    if (room - excess) / density >= span / 4:
        # A clump (a bulk import) somewhere in a short span: take a window that stays
        # under the cap even if the whole clump lies in it.
        return (room - excess) / density, held + excess
    if na:
        return None, held
    if background > room / 8:
        return span / 2, held  # find the clump: halve the span
    # The span is little but the clump: assume it is even, but split a clump that needs two
    # windows anyway in half (it may lie anywhere in the span)
    return max(span * min(room / inside, 0.5), reach), held


def _replayed_end(cursor: datetime, previous: list[Window], cap: int) -> datetime | None:
    """The end of the longest run of the last run's windows ahead of `cursor` that held at most
    `cap` users together; None once they are all behind. A window that starts before `cursor`
    counts whole: that overestimates, which is safe."""
    held, high = 0, None
    for end, count in previous:
        if end <= cursor:
            continue
        if held + count > cap:
            return high or end  # one window alone over the cap: let its probe say so
        held, high = held + count, end
    return high


def _background(rates: list[float]) -> float:
    """The background rate: the median of the last three windows, so one window over a bulk
    import does not set the size of the windows after it."""
    recent = sorted(rates[-3:])
    return recent[len(recent) // 2] if recent else 0.0


def _learn(
    known: list[tuple[datetime, int]], at: datetime, count: int
) -> list[tuple[datetime, int]]:
    """`known` with (at, count) added; counts stay monotonic even if the tenant changed."""
    before = [(t, min(n, count)) for t, n in known if t < at]
    after = [(t, max(n, count)) for t, n in known if t > at]
    return [*before, (at, count), *after]


def _lucene_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def _round_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass
class _Walk:
    """Where a walk through the tenant's created_at windows stands."""

    end: datetime  # beyond every user: the last window is open-ended anyway
    known: list[tuple[datetime, int]]  # (t, users in [cursor, t)) for every t a total told us
    previous: list[Window]  # the last successful run's windows, while they still serve
    cursor: datetime = AUTH0_EPOCH
    start: datetime | None = None  # the first window is open towards the past
    rates: list[float] = field(default_factory=list)  # users per second, latest last
    reach: float = 0.0  # seconds: how far the next window reaches at least, after an empty one

    def next_window(self, cap: int) -> tuple[datetime | None, float | None, bool]:
        """The next window's end, the clump it may hold, and whether it is a replayed one."""
        replayed = _replayed_end(self.cursor, self.previous, cap)
        if replayed is not None:
            # A replayed window is not a guess: nothing in it is known to be a bulk import,
            # so its whole count goes into the background rate (clump 0).
            return replayed, 0.0, True
        high, clump = _next_end(self.cursor, self.known, _background(self.rates), self.reach, cap)
        return high, clump, False

    def over_cap(self, piece: Slice, high: datetime | None, found: int, replayed: bool) -> None:
        """A window came back over the cap: learn its count, to size a smaller one."""
        if replayed:  # users were created in the past after all:
            self.previous = []  # trust the totals of this run only
        if (high or self.end) - self.cursor <= RESOLUTION:
            raise IncompleteReadError(
                f"{found} users were created in the same millisecond ({piece.query()}): "
                f"Auth0 returns only the first {SEARCH_CAP} of them, so the user list "
                f"cannot be read completely"
            )
        self.known = _learn(self.known, high or self.end, found)

    def advance(self, high: datetime, found: int, clump: float | None, cap: int) -> None:
        """The window [cursor, high) held `found` users: move past it."""
        length = (high - self.cursor).total_seconds()
        if clump is not None and self.start and not self.reach:  # not the tenant's start
            # The users beyond the clump the window was sized around are background.
            self.rates.append((found - clump if found > clump > 0 else found) / length)
        self.reach = length * QUIET_GROWTH if found < TARGET * cap / QUIET_GROWTH else 0.0
        self.known = [(t, max(n - found, 0)) for t, n in self.known if t > high]
        self.start = self.cursor = high


class UserReader:
    """Reads every user through `fetch(page, per_page, q)`, slicing as the module doc says."""

    def __init__(
        self,
        fetch: FetchPage,
        per_page: int = 100,
        concurrency: int = 1,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        on_progress: OnProgress | None = None,
        previous: Sequence[Window] = (),
    ):
        """`previous`: the windows the last successful run read, if any. Users' created_at
        never changes and new users are created now, so those windows hold at most what they
        held then: read again as they are (adjacent ones merged while they fit under the cap),
        they cost no probe over the cap."""
        self.fetch = fetch
        self.previous = [(end, count) for end, count in previous if end is not None]
        self.on_progress = on_progress or (lambda done, total: None)
        self.total = 0  # what the first answer said the tenant holds
        self.per_page = per_page
        # What one query can deliver: whole pages within the first 1000 (990 with 30 per page).
        self.cap = SEARCH_CAP // per_page * per_page
        self.concurrency = concurrency
        self.now = now
        self.slices: list[Slice] = []  # the windows read, in order
        self.windows: list[Window] = []  # … with the users each held, for the next run
        self.probes_wasted = 0  # first pages of windows that held too many users
        self.count = 0  # users read so far

    def read(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Every user, one slice at a time (by user_id; at most `cap` of them), so a caller
        can store each slice and let it go: memory does not grow with the tenant."""
        self.count = 0
        first = self.fetch(1, self.per_page, None)
        self.total = first["total"]
        if first["total"] <= self.cap:  # the first 1000 can be paged through
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
        """Read the tenant in consecutive created_at windows, each sized to hold nearly the
        cap, from what the totals already told us (see _next_end)."""
        end = _round_ms(self.now() + timedelta(days=1))  # the last window is open-ended anyway
        walk = _Walk(end, [(end, total)], list(self.previous))
        while True:
            high, clump, replayed = walk.next_window(self.cap)
            piece = Slice(walk.start, high)
            first = self.fetch(1, self.per_page, piece.query())
            if first["total"] > self.cap:
                walk.over_cap(piece, high, first["total"], replayed)
                self.probes_wasted += 1
                continue
            self.slices.append(piece)
            users = self._read_slice(piece, first)
            self.windows.append((high, len(users)))
            yield users
            if high is None:
                return
            walk.advance(high, first["total"], clump, self.cap)

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
