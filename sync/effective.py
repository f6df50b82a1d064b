"""Effective access, computed as the extension itself computes it (pure functions, no SQL):

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

from . import schema

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


def effective_rows(tables: dict[str, list[Row]]) -> dict[str, list[Row]]:
    """The three effective tables, from the synced tables' rows."""
    members = _index((r["group_id"], r["user_id"]) for r in tables[schema.group_members.name])
    children = _index(
        (r["parent_group_id"], r["child_group_id"]) for r in tables[schema.group_nesting.name]
    )
    group_roles = _index((r["group_id"], r["role_id"]) for r in tables[schema.group_roles.name])
    role_permissions = _index(
        (r["role_id"], r["permission_id"]) for r in tables[schema.role_permissions.name]
    )

    group_members = []
    for group in (r["group_id"] for r in tables[schema.groups.name]):
        for via, depth in descendants(group, children).items():
            for user_id in members.get(via, ()):
                group_members.append(
                    {"group_id": group, "user_id": user_id, "via_group_id": via, "depth": depth}
                )

    user_roles = [
        {"user_id": r["user_id"], "role_id": r["role_id"], "source": DIRECT, "via_group_id": ""}
        for r in tables[schema.role_users.name]
    ]
    effective_pairs = {(r["user_id"], r["group_id"]) for r in group_members}
    for user_id, group in sorted(effective_pairs):
        for role_id in group_roles.get(group, ()):
            user_roles.append(
                {
                    "user_id": user_id,
                    "role_id": role_id,
                    "source": THROUGH_GROUP,
                    "via_group_id": group,
                }
            )

    user_permissions = [
        {"user_id": user_id, "permission_id": permission_id, "via_role_id": role_id}
        for user_id, role_id in sorted({(r["user_id"], r["role_id"]) for r in user_roles})
        for permission_id in role_permissions.get(role_id, ())
    ]
    return {
        schema.effective_group_members.name: group_members,
        schema.effective_user_roles.name: user_roles,
        schema.effective_user_permissions.name: user_permissions,
    }
