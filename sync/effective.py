"""Effective access, computed as the extension itself computes it:

- `parent.nested = [child…]`: every member of the child is a member of the parent, transitively;
  nesting may contain cycles, and each group is visited once;
- a user's effective groups: the groups listing the user, plus all their ancestors;
- a user's effective roles: the roles of the effective groups, plus roles listing the user;
- a user's effective permissions: the permissions of the effective roles.

Each row says why it holds (`via_group_id`, `source`, `via_role_id`), so an access review can
answer "why does Ann have billing:write" with one query.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, insert, select

from . import schema
from .staging import StagedTable

Row = dict[str, Any]
DIRECT = "direct"
THROUGH_GROUP = "group"


def _index(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = defaultdict(list)
    for key, value in pairs:
        index[key].append(value)
    return index


def descendants(group_id: str, children: dict[str, list[str]]) -> dict[str, int]:
    """Every group whose members belong to `group_id`, with its shortest nesting depth.

    Breadth-first, so depth is the shortest path; a visited set makes cycles terminate.
    """
    depth = {group_id: 0}
    queue = deque([group_id])
    while queue:
        current = queue.popleft()
        for child in children.get(current, ()):
            if child not in depth:
                depth[child] = depth[current] + 1
                queue.append(child)
    return depth


def stage_effective(connection: Connection, tables: dict[str, list[Row]]) -> dict[str, StagedTable]:
    """Stage the three effective tables from the synced tables' rows.

    Group by group, so only one group's users are in memory at a time: their memberships go to
    the effective members' twin, and (with the group's roles) to the effective roles' twin.
    Permissions need the distinct (user, role) pairs over all groups: the database computes
    them from the staged roles with one INSERT … SELECT DISTINCT.
    """
    members = _index((r["group_id"], r["user_id"]) for r in tables[schema.group_members.name])
    children = _index(
        (r["parent_group_id"], r["child_group_id"]) for r in tables[schema.group_nesting.name]
    )
    group_roles = _index((r["group_id"], r["role_id"]) for r in tables[schema.group_roles.name])
    staged = {
        name: StagedTable(connection, schema.metadata.tables[name], keys)
        for name, keys in schema.EFFECTIVE_TABLES.items()
    }
    group_members = _Batches(staged[schema.effective_group_members.name])
    user_roles = _Batches(staged[schema.effective_user_roles.name])
    for r in tables[schema.role_users.name]:
        user_roles.add(
            {"user_id": r["user_id"], "role_id": r["role_id"], "source": DIRECT, "via_group_id": ""}
        )
    for group in (r["group_id"] for r in tables[schema.groups.name]):
        users: set[str] = set()
        for via, depth in descendants(group, children).items():
            for user_id in members.get(via, ()):
                group_members.add(
                    {"group_id": group, "user_id": user_id, "via_group_id": via, "depth": depth}
                )
                users.add(user_id)
        for role_id in group_roles.get(group, ()):
            for user_id in users:
                user_roles.add(
                    {
                        "user_id": user_id,
                        "role_id": role_id,
                        "source": THROUGH_GROUP,
                        "via_group_id": group,
                    }
                )
    group_members.flush()
    user_roles.flush()
    _stage_permissions(connection, tables, staged)
    return staged


def _stage_permissions(
    connection: Connection, tables: dict[str, list[Row]], staged: dict[str, StagedTable]
) -> None:
    role_permissions = StagedTable(
        connection, schema.role_permissions, schema.SYNCED_TABLES[schema.role_permissions.name]
    )
    role_permissions.add(tables[schema.role_permissions.name], distinct=True)
    roles = staged[schema.effective_user_roles.name].twin
    links = role_permissions.twin
    pairs = (
        select(roles.c.user_id, links.c.permission_id, roles.c.role_id)
        .join_from(roles, links, links.c.role_id == roles.c.role_id)
        .distinct()
    )
    permissions = staged[schema.effective_user_permissions.name].twin
    connection.execute(
        insert(permissions).from_select(["user_id", "permission_id", "via_role_id"], pairs)
    )


class _Batches:
    """Rows for one staged table, handed over a batch at a time."""

    SIZE = 5000

    def __init__(self, staged: StagedTable):
        self.staged, self.rows = staged, []

    def add(self, row: Row) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.SIZE:
            self.flush()

    def flush(self) -> None:
        # Distinct by construction: each group's descendants and users are sets.
        self.staged.add(self.rows, distinct=True)
        self.rows = []
