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


def ground_truth(tenant: Tenant) -> dict[str, list[Row]]:
    """For every table of ``SYNCED_TABLES``, its rows (``changed_at`` excluded)."""
    group_ids = {g["_id"] for g in tenant.groups}
    role_ids = {r["_id"] for r in tenant.roles}
    permission_ids = {p["_id"] for p in tenant.permissions}
    users = tenant.users
    tables: dict[str, list[Row]] = {
        "authz_users": [_user_row(u) for u in users.values()],
        "authz_groups": [
            {"group_id": g["_id"], "name": g["name"], "description": g.get("description")}
            for g in tenant.groups
        ],
        "authz_roles": [_catalog_row(r, "role_id") for r in tenant.roles],
        "authz_permissions": [_catalog_row(p, "permission_id") for p in tenant.permissions],
        "authz_group_members": [
            {"group_id": g["_id"], "user_id": u, "is_orphan": u not in users}
            for g in tenant.groups
            for u in _distinct(g.get("members"))
        ],
        "authz_group_nesting": [
            {"parent_group_id": g["_id"], "child_group_id": c}
            for g in tenant.groups
            for c in _distinct(g.get("nested"))
            if c in group_ids
        ],
        "authz_group_mappings": [
            {
                "mapping_id": m["_id"],
                "group_id": g["_id"],
                "group_name": m.get("groupName"),
                "connection_name": m.get("connectionName"),
            }
            for g in tenant.groups
            for m in g.get("mappings") or []
        ],
        "authz_group_roles": [
            {"group_id": g["_id"], "role_id": r}
            for g in tenant.groups
            for r in _distinct(g.get("roles"))
            if r in role_ids
        ],
        "authz_role_permissions": [
            {"role_id": r["_id"], "permission_id": p}
            for r in tenant.roles
            for p in _distinct(r.get("permissions"))
            if p in permission_ids
        ],
        "authz_role_users": [
            {"role_id": r["_id"], "user_id": u, "is_orphan": u not in users}
            for r in tenant.roles
            for u in _distinct(r.get("users"))
        ],
    }
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
