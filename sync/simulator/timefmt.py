"""Auth0 timestamps: one place that formats and parses them.

Auth0 writes instants as ``2024-05-01T10:00:00.123Z``. The generator, the user search (which
compares instants, not strings) and the ground truth (naive UTC datetimes) must agree on how such
strings are read, so they all go through here. Python 3.10's ``fromisoformat`` rejects ``Z`` and
odd fraction lengths, hence the small hand-rolled parser.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_EPOCH = datetime(1970, 1, 1)


def format_auth0(moment: datetime) -> str:
    """Format a naive-UTC or aware datetime the way Auth0 does (milliseconds, ``Z``)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def parse_utc(text: str) -> datetime:
    """Parse an ISO date or datetime into a naive UTC datetime (a bare date is midnight UTC).

    Raises ValueError for anything that is not ISO 8601, so callers can answer 400.
    """
    match = _ISO.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 date or datetime: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro
    )
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


@lru_cache(maxsize=1 << 20)
def instant(text: str) -> int:
    """Microseconds since the epoch (exact, unlike a float); cached: searches compare 100k."""
    return (parse_utc(text) - _EPOCH) // timedelta(microseconds=1)
