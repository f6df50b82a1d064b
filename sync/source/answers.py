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


# A connection that no server takes (nothing listens, no such host) is retried once only: a
# typo in a URL is not worth minutes of backoff. Dropped connections and timeouts, which a
# serverless host does produce, get the whole retry policy.
UNREACHABLE_TRIES = 2
DNS_FAILURES = (
    "name or service not known",
    "nodename nor servname",
    "name resolution",
    "getaddrinfo",
)
HTML_EXCERPT = 80  # characters of an HTML page quoted in a message


def where(request: httpx.Request | None, fallback: str) -> str:
    """`METHOD scheme://host:port/path` of a request, without its query (it may hold a signed
    link's signature); `fallback` when the error carries no request."""
    if request is None:
        return fallback
    url = request.url
    return f"{request.method} {url.scheme}://{_host_port(url)}{url.path}"


def _host_port(url: httpx.URL) -> str:
    port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    return f"{url.host}:{port}"


def transport_error(error: httpx.TransportError, what: str) -> ApiError:
    """A failed exchange, named with its host and port and its cause: retryable, except a
    certificate that does not verify (retrying cannot fix that, and it may be an interception)."""
    request = _request_of(error)
    what = where(request, what)
    host = _host_port(request.url) if request is not None else "the server"
    text = str(error)
    if isinstance(error, httpx.ConnectTimeout):
        return RetryableApiError(f"{what}: connecting to {host} timed out")
    if isinstance(error, httpx.TimeoutException):
        return RetryableApiError(f"{what}: {host} sent no answer in time (read timeout)")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return ApiError(
            f"{what}: the server's TLS certificate could not be verified; if it is signed by "
            f"your own CA, set extension.ca_bundle to that CA's PEM file"
        )
    lowered = text.lower()
    if any(phrase in lowered for phrase in DNS_FAILURES):
        name = request.url.host if request is not None else "the host"
        problem = f"cannot resolve the host name {name} (DNS): check the URL"
        return RetryableApiError(f"{what}: {problem}", max_tries=UNREACHABLE_TRIES)
    if "refused" in lowered:
        problem = f"connection refused by {host}: nothing listens there, check the URL"
        return RetryableApiError(f"{what}: {problem}", max_tries=UNREACHABLE_TRIES)
    if "ssl" in lowered or "tls" in lowered:
        return RetryableApiError(
            f"{what}: the TLS handshake with {host} failed ({_one_line(text)})"
        )
    cause = _one_line(text) or "no reason given"
    return RetryableApiError(
        f"{what}: {host} dropped the connection ({type(error).__name__}: {cause})"
    )


def _request_of(error: httpx.TransportError) -> httpx.Request | None:
    try:
        return error.request
    except RuntimeError:  # raised without a request (a transport's own test double)
        return None


def html_excerpt(response: httpx.Response) -> str | None:
    """A short excerpt of an HTML answer (a login page, a proxy's error page), else None."""
    declared = "html" in response.headers.get("Content-Type", "").lower()
    if declared:
        response.read()  # a page, not a list: small, and read at most once
    try:
        text = response.text.lstrip()
    except httpx.ResponseNotRead:  # a streamed answer that says it is not HTML
        return None
    if not declared and not text[:15].lower().startswith(("<!doctype", "<html")):
        return None
    excerpt = " ".join(text.split())
    return excerpt if len(excerpt) <= HTML_EXCERPT else excerpt[:HTML_EXCERPT] + "…"
