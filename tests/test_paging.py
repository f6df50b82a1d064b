"""Reading every user past the 1000-result cap, against an in-memory fake of /api/users."""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
from datetime import datetime, timedelta, timezone

import pytest

from sync.errors import IncompleteReadError
from sync.source.users import SEARCH_CAP, UserReader
from sync.sql.ledger import windows_from_json, windows_to_json

RANGE = re.compile(r"^created_at:\[(\S+) TO (\S+)[\]}]$")
START = datetime(2020, 1, 1, tzinfo=timezone.utc)
BURSTY_RATIO = 1.17  # the walk before bulk-import handling: 1.19-1.26 on these seeds
LARGE_BURST_RATIO = 1.2


def _bound(text: str) -> datetime | None:
    return None if text == "*" else datetime.fromisoformat(text.replace("Z", "+00:00"))


class FakeUsers:
    """Sorted by last_login like the extension; refuses to page past the first 1000."""

    def __init__(self, created: list[datetime]):
        self.users = [
            {"user_id": f"auth0|{i}", "created": at, "last_login": i}
            for i, at in enumerate(created)
        ]
        self.calls: list[tuple[int, int, str | None]] = []
        self.after_call = None
        self.extra_total = 0

    def matching(self, query: str | None) -> list[dict]:
        if query is None:
            found = self.users
        else:
            low, high = (_bound(part) for part in RANGE.match(query).groups())
            found = [
                u
                for u in self.users
                if (low is None or u["created"] >= low) and (high is None or u["created"] < high)
            ]
        return sorted(found, key=lambda u: -u["last_login"])

    def __call__(self, page: int, per_page: int, query: str | None) -> dict:
        self.calls.append((page, per_page, query))
        index = max(page, 1) - 1
        assert index * per_page + per_page <= SEARCH_CAP, "paged past the first 1000 results"
        found = self.matching(query)
        chunk = found[index * per_page : (index + 1) * per_page]
        answer = {
            "users": [{"user_id": u["user_id"]} for u in chunk],
            "total": len(found) + self.extra_total,
        }
        if self.after_call:
            self.after_call(self)
        return answer


def spread(count: int, days: int = 1500) -> list[datetime]:
    return [START + timedelta(days=days * i / count) for i in range(count)]


def test_small_tenant_is_read_page_by_page_without_a_query():
    fake = FakeUsers(spread(250))
    users = UserReader(fake, per_page=100).read_all()
    assert len(users) == 250
    assert fake.calls == [(1, 100, None), (2, 100, None), (3, 100, None)]


def test_a_tenant_of_exactly_1000_users_needs_no_query():
    """Auth0 lets a query page through its first 1000 results: 1000 users are ten pages."""
    fake = FakeUsers(spread(SEARCH_CAP))
    assert len(UserReader(fake, per_page=100).read_all()) == SEARCH_CAP
    assert fake.calls == [(page, 100, None) for page in range(1, 11)]


def test_large_tenant_is_sliced_by_created_at_and_read_completely():
    created = spread(2000) + [START + timedelta(days=700, minutes=i) for i in range(1500)]
    fake = FakeUsers(created)
    reader = UserReader(fake, per_page=100, now=lambda: START + timedelta(days=1600))
    users = reader.read_all()
    assert sorted(users) == sorted(u["user_id"] for u in fake.users)
    sliced = [q for _, _, q in fake.calls if q]
    assert sliced and all(q.startswith("created_at:[") for q in sliced)
    # Every slice that was read page by page stayed under the cap.
    assert all(len(fake.matching(q)) <= SEARCH_CAP for p, _, q in fake.calls if p > 1)
    # A burst of 1500 sign-ups in one day amid sparse years costs some narrowing down.
    floor = math.ceil(3500 / 100)
    assert len(fake.calls) <= floor * 1.75, (len(fake.calls), floor, reader.probes_wasted)


def test_users_are_handed_over_one_slice_at_a_time():
    """What keeps a run's memory flat: the caller gets each slice and can let it go."""
    fake = FakeUsers(spread(5000, days=2000))
    reader = UserReader(fake, now=lambda: START + timedelta(days=2100))
    pieces = reader.read()
    first = next(piece for piece in pieces if piece)  # a window may hold nobody
    assert len(first) < reader.cap
    assert len(fake.calls) < 5000 / 100  # the rest is not read yet
    rest = list(pieces)
    assert sum(map(len, [first, *rest])) == reader.count == 5000
    assert len(rest) >= 5 and max(map(len, rest)) < reader.cap


def test_a_large_even_tenant_costs_within_five_percent_of_the_floor():
    fake = SortedUsers(spread(100_000, days=3000))
    reader = UserReader(fake, now=lambda: START + timedelta(days=3001))
    assert len(reader.read_all()) == 100_000
    floor = math.ceil(100_000 / 100) + 1  # the pages, plus the first look at the whole tenant
    assert fake.calls <= floor * 1.05, (fake.calls, reader.probes_wasted)


def test_windows_cover_all_time_without_overlap():
    fake = FakeUsers(spread(5000, days=2000))
    reader = UserReader(fake, now=lambda: START + timedelta(days=2100))
    assert len(reader.read_all()) == 5000
    windows = reader.slices
    assert windows[0].start is None and windows[-1].end is None
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert windows[0].query().startswith("created_at:[* TO ")
    assert windows[-1].query().endswith(" TO *]")
    assert windows[1].query().endswith("}")  # the end is exclusive


def test_users_created_in_the_same_millisecond_cannot_be_sliced_and_say_so():
    fake = FakeUsers([START] * 1200 + [START + timedelta(days=1 + i) for i in range(100)])
    with pytest.raises(
        IncompleteReadError, match="1200 users were created in the same millisecond"
    ):
        UserReader(fake, now=lambda: START + timedelta(days=2000)).read_all()


def test_a_login_during_the_read_is_recovered_by_a_second_pass():
    fake = FakeUsers(spread(300))

    def someone_logs_in(fake: FakeUsers) -> None:
        if len(fake.calls) == 1:  # after page 1: the last user moves to the front
            fake.users[0]["last_login"] = 10_000

    fake.after_call = someone_logs_in
    users = UserReader(fake, per_page=100).read_all()
    assert len(users) == 300
    assert len(fake.calls) == 3 + 3  # one full second pass


def test_a_persistent_shortfall_is_an_error_not_a_partial_copy():
    fake = FakeUsers(spread(150))
    fake.extra_total = 1  # the API keeps claiming one more user than it returns
    with pytest.raises(IncompleteReadError, match="read 150 distinct users of the 151"):
        UserReader(fake, per_page=100).read_all()


def test_concurrent_pages_give_the_same_users():
    fake = FakeUsers(spread(2600))
    reader = UserReader(fake, per_page=50, concurrency=4, now=lambda: START + timedelta(days=1600))
    assert len(reader.read_all()) == 2600


def test_a_page_size_that_does_not_divide_1000_still_reads_everything():
    fake = FakeUsers(spread(2995, days=900))
    reader = UserReader(fake, per_page=30, now=lambda: START + timedelta(days=901))
    assert len(reader.read_all()) == 2995  # windows stay under the 990 that 33 pages hold


class SortedUsers:
    """/api/users over sorted created_at instants, fast enough for tens of thousands of users:
    `total` by bisect; the users of a page are named by their position in created_at order (the
    order within a window does not matter to the reader)."""

    def __init__(self, created: list[datetime]):
        self.created = sorted(created)
        self.calls = 0

    def span(self, query: str | None) -> tuple[int, int]:
        if query is None:
            return 0, len(self.created)
        low, high = (_bound(part) for part in RANGE.match(query).groups())
        first = 0 if low is None else bisect.bisect_left(self.created, low)
        return first, len(self.created) if high is None else bisect.bisect_left(self.created, high)

    def __call__(self, page: int, per_page: int, query: str | None) -> dict:
        self.calls += 1
        low, high = self.span(query)
        start = low + (max(page, 1) - 1) * per_page
        assert start - low + per_page <= SEARCH_CAP, "paged past the first 1000 results"
        ids = range(start, min(start + per_page, high))
        return {"users": [{"user_id": f"auth0|{i}"} for i in ids], "total": high - low}


def bursty(count: int, burst: int, share: float, seed: int) -> list[datetime]:
    """Sign-ups over 3.5 years: a random background, plus `share` of them in bulk imports of
    up to `burst` users within one hour."""
    rnd = random.Random(seed)
    hours = 3 * 8766 + 4383
    moments: list[datetime] = []
    left = int(count * share)
    while left > 0:
        size = min(left, rnd.randint(burst // 2, burst))
        hour = START + timedelta(hours=rnd.randrange(hours))
        moments += [hour + timedelta(milliseconds=rnd.randrange(3_600_000)) for _ in range(size)]
        left -= size
    background = count - len(moments)
    return moments + [START + timedelta(hours=rnd.random() * hours) for _ in range(background)]


def read_sorted(created: list[datetime], previous=()) -> tuple[SortedUsers, UserReader]:
    fake = SortedUsers(created)
    reader = UserReader(fake, now=lambda: START + timedelta(days=1600), previous=previous)
    seen: set[str] = set()
    for piece in reader.read():
        assert seen.isdisjoint(piece), "a user was read twice"
        seen |= piece.keys()
    assert len(seen) == len(created)
    assert all(a.end == b.start for a, b in itertools.pairwise(reader.slices))
    assert all(
        fake.span(w.query())[1] - fake.span(w.query())[0] <= SEARCH_CAP for w in reader.slices
    )
    return fake, reader


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_imports_of_hundreds_cost_little_over_the_floor(seed):
    fake, reader = read_sorted(bursty(20_000, burst=600, share=0.3, seed=seed))
    floor = math.ceil(20_000 / 100)
    assert fake.calls <= floor * BURSTY_RATIO, (fake.calls, floor, reader.probes_wasted)


def test_bulk_imports_of_thousands_are_narrowed_down_not_walked_through():
    fake, reader = read_sorted(bursty(30_000, burst=6_000, share=0.3, seed=4))
    floor = math.ceil(30_000 / 100)
    assert fake.calls <= floor * LARGE_BURST_RATIO, (fake.calls, floor, reader.probes_wasted)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_next_run_reads_the_last_run_s_windows_without_probing(seed):
    """created_at never changes and new users are created now: last night's windows hold at
    most what they held, so the next run reads them (merged where they fit) and probes nothing
    over the cap but in the new users' stretch."""
    created = bursty(20_000, burst=600, share=0.3, seed=seed)
    first_fake, first = read_sorted(created)
    rnd = random.Random(seed)
    night = [moment for moment in created if rnd.random() > 0.002]  # some users deleted …
    newest = max(created)
    night += [newest + timedelta(minutes=rnd.randrange(1440)) for _ in range(100)]  # … and new
    fake, reader = read_sorted(night, previous=first.windows)
    assert reader.probes_wasted == 0
    assert len(reader.slices) < len(first.slices)  # small windows were merged
    assert fake.calls <= math.ceil(len(night) / 100) * 1.07 < first_fake.calls


def test_last_night_s_windows_that_no_longer_fit_are_narrowed_like_any_other():
    """A window that now holds more than the cap (the tenant was rebuilt; or 30 users per page
    instead of 100) costs a probe, then the reader sizes windows afresh: still every user."""
    created = spread(5000, days=1000)
    _, first = read_sorted(created)
    doubled = created + [moment + timedelta(seconds=1) for moment in created]
    _, reader = read_sorted(doubled, previous=first.windows)
    assert reader.probes_wasted >= 1


def test_windows_survive_the_ledger_and_garbage_is_ignored():
    windows = [(START + timedelta(days=3, microseconds=123000), 870), (None, 12)]
    assert windows_from_json(windows_to_json(windows)) == windows
    for garbage in (None, "x", [["not a time", 3]], [[None]], [["2024-01-01T00:00:00", 3]]):
        assert windows_from_json(garbage) == []
