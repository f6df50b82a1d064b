"""Pacing: slow down before the rate-limit bucket is empty, instead of meeting 429s.

Auth0 answers every call with X-RateLimit-Limit (bucket size), X-RateLimit-Remaining and
X-RateLimit-Reset (Unix seconds when the bucket is full again). While more than half the bucket
is left we go at full speed; below that, the time until the reset is shared out evenly over the
requests that remain, so the bucket drains no faster than it refills; at zero we wait for the
reset. A 429 that slips through is still handled by the retry policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name, "").strip()
    try:
        return float(value) if value else None
    except ValueError:
        return None


class Pacer:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._clock, self._sleep = clock, sleep
        self._not_before = 0.0
        self._spacing = 0.0  # the last interval observe() asked for
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent pacing

    def wait(self) -> None:
        """Sleep until the next request may go (call before each request)."""
        with self._lock:
            now = self._clock()
            delay = self._not_before - now
            if delay > 0:
                # Take this slot: a concurrent caller queues one spacing behind it, so that
                # parallel page reads do not all fire together when the wait ends.
                self._not_before += self._spacing
                self.waited += delay
        if delay > 0:
            self._sleep(delay)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the rate-limit headers of an answer and set when the next request may go."""
        limit = _number(headers, "X-RateLimit-Limit")
        remaining = _number(headers, "X-RateLimit-Remaining")
        reset = _number(headers, "X-RateLimit-Reset")
        if remaining is None or reset is None:
            return
        until_reset = max(0.0, reset - self._clock())
        if remaining < 1:
            delay = until_reset
        elif limit and remaining < limit / 2:
            delay = until_reset / (remaining + 1)
        else:
            delay = 0.0
        with self._lock:
            self._spacing = delay
            self._not_before = max(self._not_before, self._clock() + delay)
