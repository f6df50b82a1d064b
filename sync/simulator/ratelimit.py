"""A token bucket with Auth0's rate-limit headers, to exercise a client's 429 handling.

Auth0 reports ``X-RateLimit-Limit`` (bucket size), ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (Unix seconds when a request will be accepted again); ``Retry-After`` is
optional, because some clients rely on it and must also cope without it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` requests per second on average, bursts of up to ``burst``. Not locked itself."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.time) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return now

    def take(self, retry_after_header: bool = True) -> tuple[bool, dict[str, str]]:
        """Spend one token if there is one; returns (allowed, headers to send)."""
        now = self._refill()
        allowed = self._tokens >= 1.0
        if allowed:
            self._tokens -= 1.0
            wait = (self.burst - self._tokens) / self.rate  # until the bucket is full again
        else:
            wait = (1.0 - self._tokens) / self.rate  # until one request fits
        headers = limit_headers(self.burst, int(self._tokens), now + wait)
        if not allowed and retry_after_header:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return allowed, headers


def limit_headers(limit: int, remaining: int, reset_at: float) -> dict[str, str]:
    """The three X-RateLimit-* headers (reset rounded up to whole Unix seconds)."""
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(math.ceil(reset_at)),
    }
