"""Ground truth: the rows a correct sync of a tenant must leave in each synced table.

Computed straight from the tenant, with no sync code involved (only the table names come from
sync.model), so tests can compare what the job wrote against an independent answer. The
conventions (orphans kept and flagged, dangling references dropped, duplicates collapsed) are the
ones the sync implements.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sync.model import SYNCED_TABLES

from .tenant import Json, Tenant
from .timefmt import parse_utc

Row = dict[str, Any]


def _distinct(values: list[Any] | None) -> list[Any]:
    """The entries of a list, first occurrence kept, order preserved."""
    return list(dict.fromkeys(values or []))


def _user_row(user: Json) -> Row:
    identities = user.get("identities")
    last_login = user.get("last_login")
    logins = user.get("logins_count")
    blocked = user.get("blocked")
    return {
        "user_id": user["user_id"],
        "email": user.get("email"),
        "name": user.get("name"),
        "connection": identities[0].get("connection") if identities else None,
        "picture": user.get("picture"),
        "last_login": parse_utc(last_login) if last_login else None,
        "logins_count": int(logins) if logins is not None else None,
        "blocked": bool(blocked) if blocked is not None else None,
        "multifactor": user.get("multifactor"),
        "identities": identities,
    }


def _catalog_row(item: Json, key: str) -> Row:
    return {
        key: item["_id"],
        "name": item["name"],
        "description": item.get("description"),
        "application_type": item.get("applicationType"),
        "application_id": item.get("applicationId"),
    }


def _members(
    owners: list[Json], owner_key: str, list_key: str, users: dict[str, Json]
) -> list[Row]:
    """Links to users, kept whether or not the user exists (an orphan is flagged)."""
    return [
        {owner_key: owner["_id"], "user_id": user, "is_orphan": user not in users}
        for owner in owners
        for user in _distinct(owner.get(list_key))
    ]


def _references(
    owners: list[Json], owner_key: str, list_key: str, target_key: str, known: set[str]
) -> list[Row]:
    """Links between catalog items: a reference to an item that does not exist is dropped."""
    return [
        {owner_key: owner["_id"], target_key: target}
        for owner in owners
        for target in _distinct(owner.get(list_key))
        if target in known
    ]


def _mappings(groups: list[Json]) -> list[Row]:
    return [
        {
            "mapping_id": m["_id"],
            "group_id": g["_id"],
            "group_name": m.get("groupName"),
            "connection_name": m.get("connectionName"),
        }
        for g in groups
        for m in g.get("mappings") or []
    ]


def _entity_tables(tenant: Tenant) -> dict[str, list[Row]]:
    return {
        "authz_users": [_user_row(u) for u in tenant.users.values()],
        "authz_groups": [
            {"group_id": g["_id"], "name": g["name"], "description": g.get("description")}
            for g in tenant.groups
        ],
        "authz_roles": [_catalog_row(r, "role_id") for r in tenant.roles],
        "authz_permissions": [_catalog_row(p, "permission_id") for p in tenant.permissions],
    }


def _link_tables(tenant: Tenant) -> dict[str, list[Row]]:
    groups, roles, users = tenant.groups, tenant.roles, tenant.users
    group_ids = {g["_id"] for g in groups}
    role_ids = {r["_id"] for r in roles}
    permission_ids = {p["_id"] for p in tenant.permissions}
    return {
        "authz_group_members": _members(groups, "group_id", "members", users),
        "authz_group_nesting": _references(
            groups, "parent_group_id", "nested", "child_group_id", group_ids
        ),
        "authz_group_mappings": _mappings(groups),
        "authz_group_roles": _references(groups, "group_id", "roles", "role_id", role_ids),
        "authz_role_permissions": _references(
            roles, "role_id", "permissions", "permission_id", permission_ids
        ),
        "authz_role_users": _members(roles, "role_id", "users", users),
    }


def ground_truth(tenant: Tenant) -> dict[str, list[Row]]:
    """For every table of ``SYNCED_TABLES``, its rows (``changed_at`` excluded)."""
    tables = _entity_tables(tenant) | _link_tables(tenant)
    return {name: tables[name] for name in SYNCED_TABLES}


def truth_as_json(tenant: Tenant) -> dict[str, list[Row]]:
    """``ground_truth`` with datetimes as ISO strings, for the ``/_sim/truth`` endpoint."""
    return {
        table: [
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
            for row in rows
        ]
        for table, rows in ground_truth(tenant).items()
    }
