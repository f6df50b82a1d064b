"""The extension API as plain dicts: one GET with the retry policy, and the list endpoints.

No SQL here. Every answer is mapped to a result or to the error the caller should act on:
- 2xx with JSON                  → the payload
- 429, 5xx, timeouts, dropped connections, truncated or invalid JSON → RetryableApiError (retried)
- 401 after one fresh token, 403 → AuthError (what to grant, and where)
- any other status               → ApiError (not retried: retrying a 400 or 404 cannot help)
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import ijson
from tenacity import RetryCallState

from sync import __version__
from sync.config import Settings
from sync.errors import ApiDataError, ApiError, AuthError, RetryableApiError
from sync.fingerprint import DIGEST_BYTES
from sync.model import RequestStats
from sync.source.answers import (
    body_text,
    json_or_none,
    retryable_status_error,
    transport_error,
)
from sync.source.answers import html_excerpt as html_excerpt_of
from sync.source.auth import (
    GRANT_WHERE,
    ClientCredentialsAuth,
    Token,
    missing_scope_error,
    missing_scopes,
)
from sync.source.endpoints import LISTS, USERS, scope_for
from sync.source.pacing import Pacer
from sync.source.retry import retry_policy

log = logging.getLogger(__name__)
NOT_THE_API = "so this URL does not look like the extension's API: check extension.url"
MISCONFIGURED_TENANT_HINT = (
    " — the extension answers this when the token comes from another tenant than the one it "
    "trusts: check auth0.domain"
)


ReadBody = Callable[[Iterator[bytes]], Any]  # a 200 answer's body, chunk by chunk → the result


@dataclass(frozen=True)
class Listing:
    """One list endpoint's records, and a digest of the answer's bytes: the same digest means
    the very same answer (how a run tells that nothing changed, see fingerprint.py)."""

    records: list[Any]
    digest: str


class SharedIds(list):
    """The records of a listing as the parser completes them, one str object per distinct id
    in their lists (members, nested, roles, …): an ijson target.

    /api/groups names a user once per membership, and the parser makes each occurrence its own
    str: at 500k memberships of 95k users the groups take 51 MB, 34 MB of it copies, and that
    was the run's peak. Shared record by record, a repeat costs a pointer and the copies never
    pile up (bench/run.py at L: the peak RSS, 140 MB before, is in the README).
    """

    def __init__(self) -> None:
        super().__init__()
        self._shared: dict[str, str] = {}

    def send(self, record: Any) -> None:
        if isinstance(record, dict):
            shared = self._shared
            for key, value in record.items():
                if isinstance(value, list):
                    record[key] = [
                        shared.setdefault(item, item) if type(item) is str else item
                        for item in value
                    ]
        self.append(record)

    def close(self) -> None:
        """The listing is parsed: its strings stay shared, the table that found them goes (at
        a million users, 400k distinct member ids: about 20 MB held for the rest of the run)."""
        self._shared = {}


def _a_list_under(key: str, body: bytes) -> bool:
    found = list(ijson.items(body, key))
    return len(found) == 1 and isinstance(found[0], list)


class ExtensionApi:
    """A client of one extension; use as a context manager so its connections are closed."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        stats: RequestStats | None = None,
    ):
        common: dict[str, Any] = {
            "timeout": httpx.Timeout(
                settings.extension.read_timeout, connect=settings.extension.connect_timeout
            ),
            "verify": _tls_context(settings.extension.ca_bundle),
            "headers": {"User-Agent": f"authz-sync/{__version__}"},
            "transport": transport,
        }
        self.settings = settings
        self.stats = stats or RequestStats()  # the caller's, to count a failed run's too
        self.pacer = Pacer(wall_clock, sleep)
        self._token_client = httpx.Client(base_url=settings.auth0.url, **common)
        self.auth = ClientCredentialsAuth(
            self._token_client,
            client_id=settings.auth0.client_id,
            client_secret=settings.auth0.client_secret,
            audience=settings.auth0.audience,
            clock=clock,
        )
        self._http = httpx.Client(base_url=settings.extension.base_url, auth=self.auth, **common)
        self._base = settings.extension.base_url
        self._retrying = retry_policy(settings.retry, sleep=sleep, rng=rng, on_retry=self._retried)

    def __enter__(self) -> ExtensionApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._token_client.close()

    def token(self) -> Token:
        """The current token, fetched (with the retry policy) if there is none yet."""
        return self._with_retries(self.auth.current_token)

    def _with_retries(self, call, *args: Any) -> Any:
        try:
            return self._retrying(call, *args)
        except RetryableApiError as error:
            tries = self._retrying.statistics.get("attempt_number", 1)
            waited = self._retrying.statistics.get("idle_for", 0.0)
            raise ApiError(
                f"{error} (gave up after {tries} tries, {waited:.0f} s of waiting)"
            ) from None

    def check_scopes(self) -> None:
        """Fail before reading anything when Auth0 says the token lacks a scope we need."""
        missing = missing_scopes(self.token())
        if missing:
            raise missing_scope_error(missing)

    def get(
        self, path: str, params: dict[str, Any] | None = None, read: ReadBody | None = None
    ) -> Any:
        """GET one path with the retry policy; the decoded JSON answer, or what `read` makes
        of a 200 answer's body as it streams in."""
        return self._with_retries(self._get_once, path, params, read)

    def _retried(self, retry_state: RetryCallState) -> None:
        self.stats.add(retries=1)

    def _get_once(self, path: str, params: dict[str, Any] | None, read: ReadBody | None) -> Any:
        self.pacer.wait()
        self.stats.add(requests=1)
        what, started = f"GET {self._base}{path}", time.monotonic()
        try:
            with self._http.stream("GET", path, params=params) as response:
                self._log_answer(what, response, started)
                self.pacer.observe(response.headers)
                if response.status_code == 200 and (page := html_excerpt_of(response)):
                    raise ApiError(f"{what} {NOT_THE_API} (200 with an HTML page: {page})")
                if read is not None and response.status_code == 200:
                    return read(response.iter_bytes())
                response.read()
        except httpx.TransportError as error:
            raise transport_error(error, what) from None
        except httpx.DecodingError:  # a compressed body cut or garbled on the way: try again
            raise RetryableApiError(f"{what} answered a body that cannot be decoded") from None
        return self._payload(what, path, response)

    def _log_answer(self, what: str, response: httpx.Response, started: float) -> None:
        """-vv: every answer with its timing, its try and the rate-limit headers."""
        if not log.isEnabledFor(logging.DEBUG):
            return
        limits = " ".join(
            f"{name.removeprefix('X-RateLimit-').lower()}={response.headers[name]}"
            for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
            if name in response.headers
        )
        attempt = self._retrying.statistics.get("attempt_number", 1)
        log.debug(
            "%s → %d in %.0f ms (try %d)%s",
            what,
            response.status_code,
            (time.monotonic() - started) * 1000,
            attempt,
            f"; rate limit {limits}" if limits else "",
        )

    def _payload(self, what: str, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 200:
            payload = json_or_none(response)
            if payload is None:
                raise RetryableApiError(f"{what} answered 200 with a body that is not JSON")
            return payload
        if status == 429:
            self.stats.add(rate_limited=1)
        retryable = retryable_status_error(response, what)
        if retryable:
            if status == 500 and "internal server error occurred" in body_text(response):
                retryable.args = (retryable.args[0] + MISCONFIGURED_TENANT_HINT,)
            raise retryable
        if status == 401:
            raise AuthError(
                f"the extension refused a fresh token for {what} (401 {body_text(response)}): "
                f"its issuer or audience is not what the extension trusts — check auth0.domain "
                f"and auth0.audience ({self.settings.auth0.audience})"
            )
        if status == 403:
            scope = scope_for(path)
            raise AuthError(
                f"the token lacks the scope {scope} needed for {what} "
                f"(403 {body_text(response)}): {GRANT_WHERE} {scope}"
            )
        if page := html_excerpt_of(response):
            raise ApiError(f"{what} answered {status}, {NOT_THE_API} ({page})", status=status)
        raise ApiError(f"{what} answered {status}: {body_text(response)}", status=status)

    def list_all(self, resource: str) -> list[dict[str, Any]]:
        """GET /api/groups, /api/roles or /api/permissions: every record in one answer."""
        return self.listing(resource).records

    def listing(self, resource: str) -> Listing:
        """The records of a list endpoint, parsed as the answer streams in.

        /api/groups carries every membership of the tenant (500k of them are about 25 MB of
        JSON): parsing it whole would hold its bytes, its text and its objects at once, the
        largest peak of a run. Streamed, only the records are held.
        """
        endpoint = LISTS[resource]
        path, key = endpoint.path, endpoint.list_key

        def read(chunks: Iterator[bytes]) -> Listing:
            records = SharedIds()
            # Not use_float: its C parser refuses integers past 64 bits as "not JSON". Other
            # numbers arrive as Decimal; no column takes a number from these lists anyway.
            parser = ijson.items_coro(records, f"{key}.item")
            digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
            # Until a first record is complete, the bytes are kept: an answer with no record is
            # an empty list or no list at all, and only its whole (small) text tells which.
            head: list[bytes] | None = []
            try:
                for chunk in chunks:
                    digest.update(chunk)
                    parser.send(chunk)
                    if head is not None and records:
                        head = None
                    elif head is not None:
                        head.append(chunk)
                parser.close()
                records.close()
                if head is not None and not _a_list_under(key, b"".join(head)):
                    raise ApiDataError(f"GET {path} answered without a {key!r} list")
            except (ijson.JSONError, UnicodeDecodeError):  # truncated or garbled: try again
                raise RetryableApiError(
                    f"GET {path} answered 200 with a body that is not JSON"
                ) from None
            return Listing(records, digest.hexdigest())

        return self.get(path, read=read)

    def users_page(self, page: int, per_page: int, query: str | None) -> dict[str, Any]:
        """One page of /api/users (1-based pages), optionally restricted by a search query."""
        params: dict[str, Any] = {"page": page, "per_page": per_page}
        if query:
            params["q"] = query
        payload = self.get(USERS.path, params)
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("users"), list)
            or not isinstance(payload.get("total"), int)
        ):
            raise ApiDataError("GET /api/users answered without a 'users' list and a 'total'")
        return payload


@functools.cache
def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verification is always on; a custom CA bundle replaces the trust store httpx would use.
    One context per bundle for the whole process: loading a bundle costs tens of milliseconds,
    and a run opens up to five clients (contexts are safe to share between them)."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else httpx.create_ssl_context()
