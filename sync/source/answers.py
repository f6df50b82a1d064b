"""Turn an HTTP answer into the error the caller should act on (see errors.py)."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from sync.errors import ApiError, RetryableApiError

MAX_BODY_IN_MESSAGE = 200


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def body_text(response: httpx.Response) -> str:
    """The error message the server gave, short and on one line, for our own messages."""
    payload = json_or_none(response)
    if isinstance(payload, dict):
        text = payload.get("message") or payload.get("error_description") or payload.get("error")
        if isinstance(text, str):
            return _one_line(text)
    return _one_line(response.text) or "(empty body)"


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_BODY_IN_MESSAGE else text[:MAX_BODY_IN_MESSAGE] + "…"


def wait_hint(response: httpx.Response, now: Callable[[], float] | None = None) -> float | None:
    """Seconds the server asked to wait: Retry-After (seconds or a date), else X-RateLimit-Reset."""
    now = now or time.time
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        if retry_after.strip().isdigit():
            return float(retry_after)
        try:
            return max(0.0, email.utils.parsedate_to_datetime(retry_after).timestamp() - now())
        except (TypeError, ValueError):
            pass  # an unreadable Retry-After: fall back to X-RateLimit-Reset or our backoff
    reset = response.headers.get("X-RateLimit-Reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now())
    return None


def retryable_status_error(
    response: httpx.Response, what: str, now: Callable[[], float] | None = None
) -> RetryableApiError | None:
    """A RetryableApiError for 429 and 5xx answers, None for everything else."""
    status = response.status_code
    if status == 429:
        return RetryableApiError(f"{what} was rate limited (429)", wait_hint(response, now))
    if status >= 500:
        return RetryableApiError(f"{what} failed with {status}: {body_text(response)}")
    return None


def transport_error(error: httpx.TransportError, what: str) -> ApiError:
    """A failed exchange: retryable, except a certificate that does not verify (retrying
    cannot fix that, and it may be an interception)."""
    if isinstance(error, httpx.TimeoutException):
        return RetryableApiError(f"{what} timed out")
    if "CERTIFICATE_VERIFY_FAILED" in str(error):
        return ApiError(
            f"{what}: the server's TLS certificate could not be verified; if it is signed by "
            f"your own CA, set extension.ca_bundle to that CA's PEM file"
        )
    return RetryableApiError(f"{what} failed: {type(error).__name__}")
