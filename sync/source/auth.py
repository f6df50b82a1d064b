"""OAuth2 client credentials for the extension API: one token, reused, refreshed when needed.

Auth0 meters machine-to-machine tokens, so a run asks for one token and reuses it until shortly
before it expires; a 401 from the extension gets exactly one fresh token and one resend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from sync.config import Secret
from sync.errors import ApiError, AuthError, RetryableApiError
from sync.redact import register_secret
from sync.source.answers import body_text, json_or_none, retryable_status_error, transport_error
from sync.source.endpoints import REQUIRED_SCOPES

GRANT_WHERE = (
    "in the Auth0 dashboard: Applications → APIs → auth0-authorization-extension-api → "
    "Machine to Machine Applications, authorize the application and tick the scopes"
)
REFRESH_MARGIN = 60.0  # seconds before expiry when a token counts as expired


@dataclass
class Token:
    value: str
    refresh_at: float  # on the monotonic clock: shortly before it expires
    scopes: frozenset[str] | None  # None when Auth0 did not say


class ClientCredentialsAuth(httpx.Auth):
    """An httpx.Auth that adds `Authorization: Bearer …`, fetching the token when needed."""

    def __init__(
        self,
        token_client: httpx.Client,
        *,
        client_id: str,
        client_secret: Secret,
        audience: str,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._client = token_client
        self._client_id = client_id
        self._secret = client_secret
        self._audience = audience
        self._clock = clock
        self._token: Token | None = None
        self._lock = threading.Lock()  # pages may be fetched from several threads
        self.tokens_fetched = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.current_token()
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code == 401:
            fresh = self._refresh(stale=token)
            request.headers["Authorization"] = f"Bearer {fresh.value}"
            yield request

    def current_token(self) -> Token:
        with self._lock:
            if self._token is None or self._clock() >= self._token.refresh_at:
                self._token = self._fetch()
            return self._token

    def _refresh(self, stale: Token) -> Token:
        with self._lock:
            if self._token is stale:  # another thread may have refreshed it already
                self._token = self._fetch()
            return self._token

    def _fetch(self) -> Token:
        body = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.reveal(),
            "audience": self._audience,
        }
        try:
            response = self._client.post("/oauth/token", json=body)
        except httpx.TransportError as error:
            raise transport_error(error, "the token request to auth0.domain") from None
        self.tokens_fetched += 1
        if response.status_code != 200:
            raise self._token_error(response)
        return self._parse(response)

    def _parse(self, response: httpx.Response) -> Token:
        payload = json_or_none(response)
        if payload is None:  # a truncated or garbled answer: worth another try
            raise RetryableApiError("the token request answered 200 with a body that is not JSON")
        if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
            raise ApiError(
                "the token endpoint answered 200 without an access_token: "
                "check auth0.domain points at the Auth0 tenant"
            )
        expires_in = payload.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) else 3600.0
        scope = payload.get("scope")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else None
        register_secret(payload["access_token"])
        margin = min(REFRESH_MARGIN, lifetime / 10)  # short-lived tokens are still reused
        return Token(payload["access_token"], self._clock() + lifetime - margin, scopes)

    def _token_error(self, response: httpx.Response) -> Exception:
        status = response.status_code
        retryable = retryable_status_error(response, "token request")
        if retryable:
            return retryable
        if status == 401:
            return AuthError(
                f"Auth0 refused the client credentials (401 access_denied) for client "
                f"{self._client_id}: check auth0.client_id and the client secret"
            )
        if status == 403:
            return AuthError(
                f"the application {self._client_id} is not authorized for the API "
                f"{self._audience} (403 from /oauth/token): {GRANT_WHERE} "
                f"{', '.join(REQUIRED_SCOPES)}"
            )
        if status == 404:
            return ApiError("no token endpoint at auth0.domain/oauth/token: check auth0.domain")
        return AuthError(f"the token request failed with {status}: {body_text(response)}")


def missing_scopes(token: Token, needed: tuple[str, ...] = REQUIRED_SCOPES) -> list[str]:
    """Scopes the token lacks; empty when Auth0 did not list the granted scopes."""
    if token.scopes is None:
        return []
    return [scope for scope in needed if scope not in token.scopes]


def missing_scope_error(scopes: list[str]) -> AuthError:
    return AuthError(f"the token lacks the scope {', '.join(scopes)}: {GRANT_WHERE}")
