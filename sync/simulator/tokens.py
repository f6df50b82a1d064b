"""Access tokens the simulated Auth0 issues and the simulated extension accepts.

Tokens look like Auth0's (a JWT with iss/sub/aud/exp/scope/gty) so a client that peeks at ``exp``
works, but they are only checked by lookup: the signature is random bytes. Expiry and
``expire_all`` let tests provoke the 401 a long sync meets when its token runs out.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class IssuedToken:
    """What the server remembers about a token: its scopes and when it stops working."""

    scopes: frozenset[str]
    expires_at: float
    audience: str = ""  # the API the token is for: an API accepts only its own tokens


class TokenStore:
    """Issued tokens by value. Not locked itself: the Simulator serializes access."""

    def __init__(self) -> None:
        self._tokens: dict[str, IssuedToken] = {}
        self.issued = 0

    def issue(
        self, *, issuer: str, client_id: str, audience: str, scopes: Iterable[str], lifetime: float
    ) -> str:
        """A new token valid for ``lifetime`` seconds with these scopes."""
        now = time.time()
        scope_list = list(scopes)
        header = {"alg": "RS256", "typ": "JWT", "kid": "simulator"}
        claims = {
            "iss": issuer,
            "sub": f"{client_id}@clients",
            "aud": audience,
            "iat": int(now),
            "exp": int(now + lifetime),
            "scope": " ".join(scope_list),
            "gty": "client-credentials",
            "jti": secrets.token_hex(8),
        }
        token = ".".join(
            [
                _b64(json.dumps(header).encode()),
                _b64(json.dumps(claims).encode()),
                _b64(secrets.token_bytes(32)),
            ]
        )
        self._tokens[token] = IssuedToken(frozenset(scope_list), now + lifetime, audience)
        self.issued += 1
        return token

    def check(self, token: str) -> IssuedToken | None:
        """The token's record if it is known and not expired, else None."""
        found = self._tokens.get(token)
        if found is None or found.expires_at <= time.time():
            return None
        return found

    def values(self) -> list[str]:
        return list(self._tokens)

    def expire_all(self) -> None:
        """Make every token issued so far invalid (new ones still work)."""
        for record in self._tokens.values():
            record.expires_at = 0.0
