"""Auth0's user search as the extension uses it: filter by ``q``, sort by last_login.

Only what a sync needs is understood: Lucene ranges on ``created_at`` (how a job slices a tenant
under the 1000-result cap). Anything else is rejected with 400 instead of being guessed at, so a
client that sends queries the simulator cannot check finds out at once.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .tenant import Json, Tenant
from .timefmt import instant

_RANGE = re.compile(r"^\s*created_at:([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])\s*$")


@dataclass(frozen=True)
class CreatedRange:
    """A ``created_at`` range; bounds are epoch microseconds, None for an open end (``*``)."""

    low: int | None
    low_inclusive: bool
    high: int | None
    high_inclusive: bool

    def matches(self, moment: int) -> bool:
        """Whether an instant lies in the range (bounds compared as instants, not strings)."""
        if self.low is not None and (
            moment < self.low or (moment == self.low and not self.low_inclusive)
        ):
            return False
        return not (
            self.high is not None
            and (moment > self.high or (moment == self.high and not self.high_inclusive))
        )


def _bound(text: str) -> int | None:
    text = text.strip('"')
    return None if text == "*" else instant(text)


def parse_query(query: str) -> CreatedRange | None:
    """The range a ``q`` asks for; None for an empty query. ValueError for anything else."""
    if not query.strip():
        return None
    match = _RANGE.match(query)
    if not match:
        raise ValueError(f"unsupported query: {query!r}")
    opening, low, high, closing = match.groups()
    return CreatedRange(_bound(low), opening == "[", _bound(high), closing == "]")


def _order(user: Json) -> tuple[int, int, str]:
    """Sort key for ``sort=last_login:-1``: newest first, never-logged-in last, then user_id."""
    last = user.get("last_login")
    return (0, -instant(last), user["user_id"]) if last else (1, 0, user["user_id"])


def matching_users(tenant: Tenant, query: str, field: str = "") -> list[Json]:
    """Users matching a search (unordered). ``field`` set: case-insensitive substring of that
    field, as the extension's own search box does; otherwise ``q`` is a created_at range."""
    if field:
        needle = query.lower()
        return [u for u in tenant.users.values() if needle in str(u.get(field, "")).lower()]
    wanted = parse_query(query)
    if wanted is None:
        return list(tenant.users.values())
    if tenant.created_index is not None:
        return _in_range(tenant, wanted)
    created = tenant.created_at
    return [
        u
        for uid, u in tenant.users.items()
        if uid in created and wanted.matches(instant(created[uid]))
    ]


def _moment(pair: tuple[int, str]) -> int:
    return pair[0]


def _in_range(tenant: Tenant, wanted: CreatedRange) -> list[Json]:
    """The range's users by binary search in the sorted (instant, user_id) index."""
    index = tenant.created_index
    low = 0 if wanted.low is None else bisect.bisect_left(index, wanted.low, key=_moment)
    high = (
        len(index) if wanted.high is None else bisect.bisect_right(index, wanted.high, key=_moment)
    )
    return [
        tenant.users[uid]
        for moment, uid in index[low:high]
        if uid in tenant.users and wanted.matches(moment)
    ]


def first_in_order(users: Iterable[Json], count: int) -> list[Json]:
    """The first ``count`` users in last_login order (a partial sort: pages are never deep)."""
    return heapq.nsmallest(count, users, key=_order)


def ordered(users: Iterable[Json]) -> list[Json]:
    """Every user in last_login order (a full sort: for the uncapped listing only)."""
    return sorted(users, key=_order)
