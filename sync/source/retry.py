"""The one retry policy for every request: which failures to retry, how long to wait, when to stop.

Retried: RetryableApiError only (429, 5xx, timeouts, dropped connections, garbled bodies — see
api.py). A server's own hint (Retry-After, X-RateLimit-Reset) is honoured as given; otherwise the
wait grows exponentially with "equal jitter" (half fixed, half random), so that parallel clients
spread out but never hammer the server with near-zero waits. A request stops being retried after
`max_attempts` tries, or when the next wait would take the total wait past `max_total_wait`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from sync.config import RetrySettings
from sync.errors import RetryableApiError

log = logging.getLogger(__name__)


class wait_for_server_or_backoff(wait_base):
    """The server's hint when it gave one, else exponential backoff with equal jitter."""

    def __init__(self, initial: float, maximum: float, rng: Callable[[], float] = random.random):
        self.initial, self.maximum, self.rng = initial, maximum, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        hint = getattr(error, "wait_hint", None)
        if hint is not None:
            return max(0.0, hint)
        ceiling = min(self.maximum, self.initial * 2 ** (retry_state.attempt_number - 1))
        return ceiling / 2 + self.rng() * ceiling / 2


class stop_before_total_wait(stop_base):
    """Give up instead of starting a wait that would take the total past `limit` seconds."""

    def __init__(self, limit: float):
        self.limit = limit

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.idle_for + (retry_state.upcoming_sleep or 0.0) > self.limit


class stop_at_the_errors_limit(stop_base):
    """Give up once a failure has had the tries its error allows (RetryableApiError.max_tries)."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        limit = getattr(error, "max_tries", None)
        return limit is not None and retry_state.attempt_number >= limit


def _log_retry(retry_state: RetryCallState) -> None:
    error = retry_state.outcome.exception() if retry_state.outcome else None
    # INFO, not WARNING: a retry that works is routine, and cron mails whatever reaches stderr.
    log.info(
        "%s; retrying in %.1f s (attempt %d)",
        error,
        retry_state.upcoming_sleep,
        retry_state.attempt_number + 1,
    )


def retry_policy(
    settings: RetrySettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    def before_sleep(retry_state: RetryCallState) -> None:
        _log_retry(retry_state)
        if on_retry:
            on_retry(retry_state)

    return Retrying(
        retry=retry_if_exception_type(RetryableApiError),
        wait=wait_for_server_or_backoff(settings.initial_wait, settings.max_wait, rng),
        stop=stop_after_attempt(settings.max_attempts)
        | stop_before_total_wait(settings.max_total_wait)
        | stop_at_the_errors_limit(),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
