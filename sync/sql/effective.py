"""Effective access derived in the database: set-based statements, no membership graph in Python.

The same rows as the extension computes (its own semantics, api-reference.md: a parent's
members include its nested groups' members, transitively, cycles visited once; a user's roles
are those of its effective groups plus the direct ones; their permissions follow), from the
tables that hold this run's links: each a staged twin or, when it is unchanged, the table.

- The group closure (ancestor, descendant, shortest depth) is found breadth-first, one level per
  statement: the pairs one nesting step below the last level that no level has reached yet.
  Each pair is therefore found once, at its shortest depth, and a cycle ends the walk as soon as
  it has nothing new to add, after at most as many levels as the longest shortest path.
  A recursive CTE cannot do this: it may not look at what it has already found, so with cycles
  it must carry the depth in its rows (UNION over (ancestor, descendant, depth)) and walk every
  cycle round and round up to a depth bound — rows multiply with each ancestor and descendant
  of a cycle — and MariaDB and MySQL stop it at 1000 iterations unless a session setting says
  otherwise. The levels' temporary tables are each named once per statement (MySQL cannot
  open a temporary table twice in one statement).
- Effective members: the closure joined to the members, one INSERT … SELECT. Distinct by
  construction: (ancestor, descendant) is the closure's key and (group, user) the members'.
- Effective user roles: direct assignments, then the roles of every effective group with the
  distinct users it holds.
- Effective user permissions: the permissions of each distinct (user, role) of those roles.
- The two big ones are written in their key's order where a table is a B-tree on its key
  (SQLite, InnoDB): appending costs a fraction of inserting at random. Not on PostgreSQL,
  whose tables are heaps: the sort costs more than the index saves (L, 2.4M permissions:
  6.8 s unsorted, 9.0 s sorted into a keyed table; 2.6 s bare and 2.5 s to key it after).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    insert,
    literal,
    select,
)

from sync.sql import schema
from sync.sql.twins import StagedTable

UNORDERED_TABLES = ("postgresql",)  # heaps: rows are not kept in their key's order
DIRECT = "direct"  # effective_user_roles.source of a role assigned to the user
THROUGH_GROUP = "group"  # … of a role held by one of the user's effective groups

# The closure and its frontiers: temporary twins (twins.StagedTable) of these never-created
# tables, so they are created, named and dropped the way every twin is.
_scratch = MetaData()
_CLOSURE = Table(
    "authz_group_closure",
    _scratch,
    Column("ancestor_id", String(schema.OBJECT_ID), nullable=False),
    Column("descendant_id", String(schema.OBJECT_ID), nullable=False),
    Column("depth", Integer, nullable=False),
)
_PAIR = ("ancestor_id", "descendant_id")


def _frontier(name: str) -> Table:
    return Table(
        name,
        _scratch,
        Column("ancestor_id", String(schema.OBJECT_ID), nullable=False),
        Column("descendant_id", String(schema.OBJECT_ID), nullable=False),
    )


_FRONTIERS = (_frontier("authz_group_frontier_a"), _frontier("authz_group_frontier_b"))


@dataclass(frozen=True)
class EffectiveLinks:
    """The tables holding this run's groups and links: twins, or real tables left unchanged."""

    groups: Table = schema.groups
    group_members: Table = schema.group_members
    group_nesting: Table = schema.group_nesting
    group_roles: Table = schema.group_roles
    role_users: Table = schema.role_users
    role_permissions: Table = schema.role_permissions

    @classmethod
    def of(cls, twins: Mapping[str, Table]) -> EffectiveLinks:
        """From twins by real table name (e.g. {name: staged.twin}); a table not named there
        holds this run's rows itself (it was read unchanged)."""
        by_name = {field.name: getattr(schema, field.name) for field in fields(cls)}
        return cls(**{key: twins.get(table.name, table) for key, table in by_name.items()})


def derive_effective(
    connection: Connection, links: EffectiveLinks, targets: Mapping[str, Table]
) -> None:
    """Fill the three effective tables' `targets` (empty twins or empty tables, by the
    effective table's name) from `links`, on `connection`, in its transaction."""
    members = targets[schema.effective_group_members.name]
    roles = targets[schema.effective_user_roles.name]
    with _Scratch(connection) as scratch:
        fill_closure(connection, links, scratch.closure, scratch.frontiers)
        connection.execute(_members_from(scratch.closure, links.group_members, members))
    connection.execute(_direct_roles(links.role_users, roles))
    ordered = connection.dialect.name not in UNORDERED_TABLES
    connection.execute(_group_roles(members, links.group_roles, roles, ordered))
    permissions = targets[schema.effective_user_permissions.name]
    connection.execute(_permissions(roles, links.role_permissions, permissions, ordered))


def stage_effective_sql(
    connection: Connection,
    links: EffectiveLinks,
    stage: Callable[[str, tuple[str, ...]], StagedTable],
) -> dict[str, StagedTable]:
    """The effective tables' plans' twins: the three effective tables staged with
    `stage(name, keys)` (as plan.plan_run makes them) and filled in SQL."""
    staged = {name: stage(name, keys) for name, keys in schema.EFFECTIVE_TABLES.items()}
    derive_effective(connection, links, {name: table.twin for name, table in staged.items()})
    return staged


class _Scratch:
    """The closure and two frontier tables, temporary, dropped when done."""

    def __init__(self, connection: Connection):
        self.tables = [
            StagedTable(connection, table, keys)
            for table, keys in ((_CLOSURE, _PAIR), (_FRONTIERS[0], _PAIR), (_FRONTIERS[1], _PAIR))
        ]
        self.closure = self.tables[0].twin
        self.frontiers = (self.tables[1].twin, self.tables[2].twin)

    def __enter__(self) -> _Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        for table in self.tables:
            table.drop()


def fill_closure(
    connection: Connection, links: EffectiveLinks, closure: Table, frontiers: tuple[Table, Table]
) -> int:
    """Every (ancestor, descendant, shortest depth), each group its own at depth 0, into the
    empty `closure`, level by level through the two empty `frontiers`; returns the levels."""
    groups = links.groups.c.group_id
    pairs = select(groups.label("ancestor_id"), groups.label("descendant_id"))
    every_group = pairs.add_columns(literal(0))
    connection.execute(insert(closure).from_select([*_PAIR, "depth"], every_group))
    level, (current, following) = 0, frontiers
    connection.execute(insert(current).from_select(list(_PAIR), pairs))
    nesting = links.group_nesting
    while connection.execute(_next_level(current, nesting, closure, following)).rowcount:
        level += 1
        found = select(following.c.ancestor_id, following.c.descendant_id, literal(level))
        connection.execute(insert(closure).from_select([*_PAIR, "depth"], found))
        connection.execute(delete(current))
        current, following = following, current
    connection.execute(delete(current))
    return level


def _next_level(frontier: Table, nesting: Table, closure: Table, into: Table):
    """The pairs one nesting step below `frontier` that the closure does not hold yet."""
    child = nesting.c.child_group_id
    known = and_(closure.c.ancestor_id == frontier.c.ancestor_id, closure.c.descendant_id == child)
    pairs = (
        select(frontier.c.ancestor_id, child)
        .join_from(frontier, nesting, nesting.c.parent_group_id == frontier.c.descendant_id)
        .where(~select(literal(1)).select_from(closure).where(known).exists())
        .distinct()
    )
    # The level's size is its rowcount, which SQLAlchemy keeps for an INSERT only when asked.
    return insert(into).from_select(list(_PAIR), pairs).execution_options(preserve_rowcount=True)


def _members_from(closure: Table, members: Table, into: Table):
    """(group, user, via group, depth): every member of every group the group contains."""
    rows = select(
        closure.c.ancestor_id, members.c.user_id, closure.c.descendant_id, closure.c.depth
    ).join_from(closure, members, members.c.group_id == closure.c.descendant_id)
    return insert(into).from_select(["group_id", "user_id", "via_group_id", "depth"], rows)


_ROLE_COLUMNS = ["user_id", "role_id", "source", "via_group_id"]


def _direct_roles(role_users: Table, into: Table):
    rows = select(role_users.c.user_id, role_users.c.role_id, literal(DIRECT), literal(""))
    return insert(into).from_select(_ROLE_COLUMNS, rows)


def _group_roles(effective_members: Table, group_roles: Table, into: Table, ordered: bool):
    """Each role of each effective group, for every distinct user the group holds.

    The distinct (group, user) pairs are read off the members' key in order (a user listed
    through several nested groups is one pair), so only they are joined; `ordered`: the rows
    go in in the target's key order, appended instead of inserted at random (L, SQLite:
    7.1 s -> 2.3 s).
    """
    pairs = select(effective_members.c.group_id, effective_members.c.user_id).distinct()
    members = pairs.subquery("members")
    rows = select(
        members.c.user_id, group_roles.c.role_id, literal(THROUGH_GROUP), members.c.group_id
    ).join_from(members, group_roles, group_roles.c.group_id == members.c.group_id)
    if ordered:
        rows = rows.order_by(members.c.user_id, group_roles.c.role_id, members.c.group_id)
    return insert(into).from_select(_ROLE_COLUMNS, rows)


def _permissions(user_roles: Table, role_permissions: Table, into: Table, ordered: bool):
    """Each permission of each distinct (user, role): a role the user holds directly and
    through three groups is one pair, read off the roles' key; `ordered`: rows in the target's
    key order."""
    held = select(user_roles.c.user_id, user_roles.c.role_id).distinct().subquery("held")
    links = role_permissions
    rows = select(held.c.user_id, links.c.permission_id, held.c.role_id).join_from(
        held, links, links.c.role_id == held.c.role_id
    )
    if ordered:
        rows = rows.order_by(held.c.user_id, links.c.permission_id, held.c.role_id)
    return insert(into).from_select(["user_id", "permission_id", "via_role_id"], rows)
