"""The extension's endpoints a run reads, as data: path, the key of the list, the scope.

Scopes as the extension checks them: a route under /api/users/{id}/groups needs read:groups,
like /api/groups itself (api-reference.md, "Read endpoints").
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Endpoint:
    path: str
    list_key: str  # the answer's key that holds the records
    scope: str


USERS = Endpoint("/api/users", "users", "read:users")
LISTS = {  # each answers every record in one request, links inside
    "groups": Endpoint("/api/groups", "groups", "read:groups"),
    "roles": Endpoint("/api/roles", "roles", "read:roles"),
    "permissions": Endpoint("/api/permissions", "permissions", "read:permissions"),
}
CONFIGURATION = Endpoint("/api/configuration/export", "groups", "read:configuration")
REQUIRED_SCOPES = (USERS.scope, *(endpoint.scope for endpoint in LISTS.values()))
SCOPE_BY_RESOURCE = {"users": USERS.scope, "configuration": CONFIGURATION.scope} | {
    name: endpoint.scope for name, endpoint in LISTS.items()
}


def user_path(user_id: str, *rest: str) -> str:
    """/api/users/{id}/…, the id URL-encoded: ids hold `|`, `@`, spaces and non-ASCII."""
    return "/".join([USERS.path, quote(user_id, safe=""), *rest])


def scope_for(path: str) -> str:
    """The scope a route needs: /api/users/{id}/groups needs read:groups, like the extension."""
    parts = [part for part in path.split("/") if part][1:]  # drop "api"
    resource = parts[2] if len(parts) >= 3 and parts[0] == "users" else parts[0] if parts else ""
    return SCOPE_BY_RESOURCE.get(resource, "read:" + resource)
