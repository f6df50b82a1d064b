"""The simulated tenant: the extension's stored document plus the Auth0 users, as plain dicts.

Everything is kept in the exact shape the API answers with, so the HTTP routes can serve the
objects as they are and tests can mutate them between two syncs (rename a group, delete a user,
log someone in) without learning another model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .gen_authz import generate_authz
from .gen_users import generate_users
from .timefmt import format_auth0, instant

Json = dict[str, Any]


@dataclass
class Tenant:
    """A mutable tenant: Auth0 users and the extension's groups, roles and permissions.

    ``created_at`` is kept apart from the user objects because the extension does not return it
    (it asks Auth0 for a fixed field list), while Auth0's user search filters on it.
    """

    users: dict[str, Json] = field(default_factory=dict)
    groups: list[Json] = field(default_factory=list)
    roles: list[Json] = field(default_factory=list)
    permissions: list[Json] = field(default_factory=list)
    created_at: dict[str, str] = field(default_factory=dict)
    # Sorted (instant, user_id) pairs: makes created_at range searches fast enough to serve a
    # million users. Built on demand by index_created_at(), for tenants that are then only
    # changed through add_user/delete_user (which drop it); None: searches scan every user.
    created_index: list[tuple[int, str]] | None = field(default=None, repr=False)

    def index_created_at(self) -> None:
        self.created_index = sorted((instant(when), uid) for uid, when in self.created_at.items())

    def login(self, user_id: str, when: datetime | str | None = None) -> None:
        """Record a login: ``last_login`` moves (to now by default), so the user jumps to the
        front of ``/api/users`` (sorted by last_login, newest first) even in the middle of a sync.
        """
        user = self.users[user_id]
        if when is None:
            when = datetime.now(timezone.utc)
        user["last_login"] = when if isinstance(when, str) else format_auth0(when)
        user["logins_count"] = int(user.get("logins_count") or 0) + 1

    def add_user(self, user: Json, created_at: datetime | str | None = None) -> None:
        """Add (or replace) a user; ``created_at`` defaults to now, as Auth0 would set it."""
        when = created_at if created_at is not None else datetime.now(timezone.utc)
        self.created_index = None
        self.users[user["user_id"]] = user
        self.created_at[user["user_id"]] = when if isinstance(when, str) else format_auth0(when)

    def delete_user(self, user_id: str) -> None:
        """Delete a user from Auth0 only: like the real extension, memberships that name the user
        stay behind and become orphans."""
        self.created_index = None
        self.users.pop(user_id, None)
        self.created_at.pop(user_id, None)

    def group(self, group_id: str) -> Json | None:
        """The group with this id, or None."""
        return _find(self.groups, group_id)

    def role(self, role_id: str) -> Json | None:
        """The role with this id, or None."""
        return _find(self.roles, role_id)

    def permission(self, permission_id: str) -> Json | None:
        """The permission with this id, or None."""
        return _find(self.permissions, permission_id)


def _find(items: list[Json], object_id: str) -> Json | None:
    return next((item for item in items if item.get("_id") == object_id), None)


def generate_tenant(
    *,
    users: int = 300,
    groups: int = 30,
    memberships: int = 600,
    roles: int = 10,
    permissions: int = 25,
    seed: int = 0,
    same_created_at_block: int = 0,
) -> Tenant:
    """A deterministic tenant full of the awkward things real tenants contain.

    The same arguments always give the same tenant. ``memberships`` is the total length of all
    groups' ``members`` lists (orphans and the duplicate included) when enough distinct pairs
    exist. ``same_created_at_block=N`` gives N users one identical ``created_at`` instant, a slice
    no ``created_at`` range query can split (otherwise no instant is shared by more than a few).
    """
    user_map, created = generate_users(
        users, seed=seed, same_created_at_block=same_created_at_block
    )
    group_list, role_list, permission_list = generate_authz(
        list(user_map),
        groups=groups,
        memberships=memberships,
        roles=roles,
        permissions=permissions,
        seed=seed,
    )
    return Tenant(user_map, group_list, role_list, permission_list, created)
