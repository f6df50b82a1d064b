"""Answers the simulator sends: a small Reply type and the exact error bodies of the extension
(v2.13) and of Auth0, copied from the API reference so clients meet the real wording."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

CAP_MESSAGE = (
    "You can only page through the first 1000 records. See "
    "https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation"
)
WWW_AUTHENTICATE = 'Token error="token is null"'


@dataclass
class Reply:
    """One HTTP answer: status, a JSON-able body (or raw bytes) and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        """The body as bytes: bytes and str are sent as they are, anything else as JSON."""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False).encode()


def error(status: int, message: str, error_name: str | None = None, **extra: Any) -> Reply:
    """A hapi/Boom error body: ``{"statusCode","error","message",...}``."""
    name = error_name or HTTPStatus(status).phrase
    return Reply(status, {"statusCode": status, "error": name, "message": message, **extra})


def missing_authentication() -> Reply:
    reply = error(401, "Missing authentication")
    reply.headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return reply


def invalid_credentials() -> Reply:
    return error(401, "Invalid credentials", attributes={"error": "Invalid credentials"})


def insufficient_scope() -> Reply:
    return error(403, "Insufficient scope")


def validation(message: str, key: str, source: str = "query") -> Reply:
    """Joi validation failure, as hapi reports it."""
    return error(400, message, validation={"source": source, "keys": [key]})


def not_found_record(object_id: str, collection: str) -> Reply:
    return error(404, f"The record {object_id} in {collection} does not exist.", "NotFoundError")


def user_not_found() -> Reply:
    return error(404, "The user does not exist.", errorCode="inexistent_user")


def route_not_found() -> Reply:
    return error(404, "Not Found")


def page_cap() -> Reply:
    return error(400, CAP_MESSAGE)


def bad_query(query: str) -> Reply:
    return error(
        400,
        f"Query validation error: 'Invalid query string: {query}' on property q (Search Criteria).",
        errorCode="invalid_query_string",
    )


def too_many_requests() -> Reply:
    return error(429, "Global limit has been reached")


def default_fault_body(status: int) -> Any:
    """A realistic body for an injected status: hapi-style JSON, or the host's own pages."""
    if status == 429:
        return too_many_requests().body
    if status == 500:
        return error(500, "An internal server error occurred").body
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"statusCode": status, "error": phrase, "message": phrase}


def token_denied() -> Reply:
    return Reply(401, {"error": "access_denied", "error_description": "Unauthorized"})


def token_wrong_audience(audience: str) -> Reply:
    description = (
        f'Client is not authorized to access "{audience}". You need to create a "client-grant" '
        "associated to this API. See: https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants"
    )
    return Reply(403, {"error": "access_denied", "error_description": description})


def token_error(status: int, code: str, description: str) -> Reply:
    return Reply(status, {"error": code, "error_description": description})
