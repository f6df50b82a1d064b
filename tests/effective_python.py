"""The test oracle: effective access computed in Python, as the extension itself computes it
(what authz-sync did before the SQL derivation of sync/sql/effective.py):

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
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import insert, select

from sync import model
from sync.sql.twins import STAGE_BATCH, StagedTable
from sync.transform import TableRows

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


def stage_effective(
    rows: TableRows,
    role_permissions: StagedTable,
    stage: Callable[[str, tuple[str, ...]], StagedTable],
) -> dict[str, StagedTable]:
    """Stage the three effective tables from the run's new rows.

    Group by group, so only one group's users are in memory at a time: their memberships go to
    the effective members' twin, and (with the group's roles) to the effective roles' twin.
    Permissions need the distinct (user, role) pairs over all groups: the database computes
    them from the staged roles and the staged role permissions with one INSERT … SELECT
    DISTINCT.
    """
    children = _index(
        (r["parent_group_id"], r["child_group_id"]) for r in rows.tables[model.GROUP_NESTING]
    )
    group_roles = _index((r["group_id"], r["role_id"]) for r in rows.tables[model.GROUP_ROLES])
    staged = {name: stage(name, keys) for name, keys in model.EFFECTIVE_TABLES.items()}
    members_rows, roles_rows = [], []
    for role_id, user_ids in rows.role_users.items():
        roles_rows += [_user_role(user_id, role_id, DIRECT, "") for user_id in user_ids]
    for group in (r["group_id"] for r in rows.tables[model.GROUPS]):
        users: set[str] = set()
        for via, depth in descendants(group, children).items():
            for user_id in rows.members.get(via, ()):
                members_rows.append(
                    {"group_id": group, "user_id": user_id, "via_group_id": via, "depth": depth}
                )
                users.add(user_id)
        for role_id in group_roles.get(group, ()):
            roles_rows += [_user_role(user_id, role_id, THROUGH_GROUP, group) for user_id in users]
        # Distinct by construction: each group's descendants and users are sets.
        if len(members_rows) + len(roles_rows) >= STAGE_BATCH:
            _flush(staged, members_rows, roles_rows)
    _flush(staged, members_rows, roles_rows)
    _stage_permissions(staged, role_permissions)
    return staged


def _user_role(user_id: str, role_id: str, source: str, via_group_id: str) -> Row:
    return {"user_id": user_id, "role_id": role_id, "source": source, "via_group_id": via_group_id}


def _flush(staged: dict[str, StagedTable], members_rows: list[Row], roles_rows: list[Row]) -> None:
    staged[model.EFFECTIVE_GROUP_MEMBERS].add(members_rows, distinct=True)
    staged[model.EFFECTIVE_USER_ROLES].add(roles_rows, distinct=True)
    members_rows.clear()
    roles_rows.clear()


def _stage_permissions(staged: dict[str, StagedTable], role_permissions: StagedTable) -> None:
    roles = staged[model.EFFECTIVE_USER_ROLES].twin
    links = role_permissions.twin
    pairs = (
        select(roles.c.user_id, links.c.permission_id, roles.c.role_id)
        .join_from(roles, links, links.c.role_id == roles.c.role_id)
        .distinct()
    )
    permissions = staged[model.EFFECTIVE_USER_PERMISSIONS].twin
    role_permissions.connection.execute(
        insert(permissions).from_select(["user_id", "permission_id", "via_role_id"], pairs)
    )
