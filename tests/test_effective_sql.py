"""Effective access derived in SQL (effective_sql.py) gives exactly the rows effective.py derives
in Python, on every database: generated tenants (a nesting cycle, a chain, dangling references,
orphans) and hand-made graphs (cycles, a self-nest, a diamond with two depths, a long chain).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from effective_python import stage_effective
from sqlalchemy import select

from sync.model import Snapshot
from sync.simulator import generate_tenant
from sync.simulator.routes import _full_group
from sync.sql import schema
from sync.sql.effective import EffectiveLinks, derive_effective, stage_effective_sql
from sync.sql.engine import open_engine
from sync.sql.revisions import ensure_schema
from sync.sql.twins import StagedTable
from sync.transform import TableRows, build_rows

LINKS = (
    schema.groups,
    schema.group_members,
    schema.group_nesting,
    schema.group_roles,
    schema.role_users,
    schema.role_permissions,
)


@pytest.fixture
def engine(database_url):
    engine = open_engine(database_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def stage_links(connection, rows: TableRows) -> dict[str, StagedTable]:
    staged = {}
    for table in LINKS:
        staged[table.name] = StagedTable(connection, table, schema.SYNCED_TABLES[table.name])
        staged[table.name].add_all(rows.rows(table.name), distinct=True)
    return staged


def table_rows(connection, table) -> set[tuple]:
    return {tuple(row) for row in connection.execute(select(table))}


def both_derivations(engine, rows: TableRows) -> tuple[dict, dict]:
    """(Python's rows, SQL's rows) of each effective table: Python's staged into twins, SQL's
    written into the (empty) tables themselves."""
    with engine.connect() as connection:
        staged = stage_links(connection, rows)
        python = stage_effective(rows, staged[schema.role_permissions.name], _twin(connection))
        expected = {name: table_rows(connection, t.twin) for name, t in python.items()}
        links = EffectiveLinks.of({name: t.twin for name, t in staged.items()})
        derive_effective(connection, links, schema.metadata.tables)
        derived = {name: table_rows(connection, schema.metadata.tables[name]) for name in expected}
        connection.rollback()
    return expected, derived


def _twin(connection):
    return lambda name, keys: StagedTable(connection, schema.metadata.tables[name], keys)


def snapshot_of(tenant) -> Snapshot:
    return Snapshot([_full_group(g) for g in tenant.groups], tenant.roles, tenant.permissions)


@pytest.mark.parametrize("seed", [0, 1])
def test_generated_tenants_give_the_same_rows(engine, seed):
    tenant = generate_tenant(
        users=200, groups=40, memberships=500, roles=8, permissions=20, seed=seed
    )
    rows = build_rows(snapshot_of(tenant))
    assert rows.warnings  # the tenant's dangling references were left out
    expected, derived = both_derivations(engine, rows)
    assert derived == expected
    assert all(expected.values())
    depths = {row[3] for row in derived[schema.effective_group_members.name]}
    assert {0, 1, 2} <= depths  # the cycle and the chain nest


# --- hand-made graphs -------------------------------------------------------------------------


def gid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


def group(name: str, members=(), nested=(), roles=()) -> dict:
    return {
        "_id": gid(name),
        "name": name,
        "members": list(members),
        "nested": [gid(child) for child in nested],
        "roles": [gid(role) for role in roles],
        "mappings": [],
    }


def role(name: str, permissions=(), users=()) -> dict:
    return {
        "_id": gid(name),
        "name": name,
        "permissions": [gid(p) for p in permissions],
        "users": list(users),
    }


def permission(name: str) -> dict:
    return {"_id": gid(name), "name": name}


ROLES = [role("reader", ["read"], ["auth0|direct"]), role("writer", ["read", "write"])]
PERMISSIONS = [permission("read"), permission("write")]


def derive(engine, groups: list[dict]) -> tuple[dict, dict]:
    rows = build_rows(Snapshot(groups, ROLES, PERMISSIONS))
    return both_derivations(engine, rows)


def members_of(derived: dict) -> set[tuple]:
    return derived[schema.effective_group_members.name]


def test_three_cycle_reaches_every_group_once_at_its_shortest_depth(engine):
    groups = [
        group("a", ["auth0|ann"], nested=["b"], roles=["reader"]),
        group("b", ["auth0|bob"], nested=["c"]),
        group("c", ["auth0|cy"], nested=["a"], roles=["writer"]),
    ]
    expected, derived = derive(engine, groups)
    assert derived == expected
    assert (gid("a"), "auth0|cy", gid("c"), 2) in members_of(derived)
    assert (gid("c"), "auth0|bob", gid("b"), 2) in members_of(derived)
    assert len(members_of(derived)) == 9  # three users in each of three groups


def test_self_nest_adds_nothing(engine):
    groups = [group("self", ["auth0|ann"], nested=["self"], roles=["reader"])]
    expected, derived = derive(engine, groups)
    assert derived == expected
    assert members_of(derived) == {(gid("self"), "auth0|ann", gid("self"), 0)}


def test_diamond_takes_the_shorter_of_two_paths(engine):
    groups = [
        group("top", nested=["left", "bottom"], roles=["writer"]),
        group("left", nested=["middle"]),
        group("middle", nested=["bottom"]),
        group("bottom", ["auth0|ann", "auth0|orphan-not-in-users"]),
    ]
    expected, derived = derive(engine, groups)
    assert derived == expected
    assert (gid("top"), "auth0|ann", gid("bottom"), 1) in members_of(derived)
    assert (gid("left"), "auth0|ann", gid("bottom"), 2) in members_of(derived)
    roles = derived[schema.effective_user_roles.name]
    assert ("auth0|ann", gid("writer"), "group", gid("top")) in roles
    assert ("auth0|direct", gid("reader"), "direct", "") in roles


def test_long_chain_with_a_dangling_link(engine):
    depth = 60
    names = [f"level-{i}" for i in range(depth)]
    groups = [
        group(name, [f"auth0|user-{i}"], nested=names[i + 1 : i + 2] or ["deleted-group"])
        for i, name in enumerate(names)
    ]
    groups[0]["roles"] = [gid("reader")]
    expected, derived = derive(engine, groups)
    assert derived == expected
    assert (gid(names[0]), f"auth0|user-{depth - 1}", gid(names[-1]), depth - 1) in members_of(
        derived
    )
    assert len(members_of(derived)) == depth * (depth + 1) // 2


def test_empty_tenant_derives_nothing(engine):
    expected, derived = derive(engine, [])
    assert derived == expected
    assert derived[schema.effective_user_roles.name] == {
        ("auth0|direct", gid("reader"), "direct", "")
    }


def test_unchanged_links_are_read_from_the_real_tables(engine):
    """A table not staged this run (unchanged) is read where it is: the real table."""
    groups = [group("a", ["auth0|ann"], nested=["b"], roles=["writer"]), group("b", ["auth0|bob"])]
    rows = build_rows(Snapshot(groups, ROLES, PERMISSIONS))
    with engine.begin() as connection:
        for table in LINKS:
            stamp = {"changed_at": datetime(2026, 1, 1)} if "changed_at" in table.c else {}
            connection.execute(table.insert(), [row | stamp for row in rows.rows(table.name)])
    with engine.connect() as connection:
        staged = stage_effective_sql(connection, EffectiveLinks.of({}), _twin(connection))
        permissions = table_rows(connection, staged[schema.effective_user_permissions.name].twin)
        connection.rollback()
    assert permissions == {
        ("auth0|ann", gid("read"), gid("writer")),
        ("auth0|ann", gid("write"), gid("writer")),
        ("auth0|bob", gid("read"), gid("writer")),
        ("auth0|bob", gid("write"), gid("writer")),
        ("auth0|direct", gid("read"), gid("reader")),
    }
