"""Ids and values are compared byte for byte on every database: on MySQL/MariaDB a PAD SPACE
collation (utf8mb4_bin) would make `auth0|x` and `auth0|x ` one key, and `'Ann' = 'Ann '`."""

from __future__ import annotations

from e2e import assert_tables_equal, authz_sync, command_env, ledger, read_tables, sorted_truth
from sqlalchemy import text

from sync.simulator import Simulator, generate_tenant, ground_truth
from sync.sql import revisions, schema
from sync.sql.engine import open_engine

TWINS = ("auth0|x", "auth0|x ", "auth0|x  ")


def test_ids_that_differ_only_by_trailing_spaces_are_different_users(database_url):
    tenant = generate_tenant(users=40, groups=13, memberships=60, roles=3, permissions=4)
    for index, user_id in enumerate(TWINS):
        tenant.add_user({"user_id": user_id, "name": f"Twin {index}", "email": f"t{index}@x.io"})
        tenant.groups[12]["members"].append(user_id)
    tenant.roles[0].setdefault("users", []).append(TWINS[1])
    with Simulator(tenant) as sim:
        env = command_env(sim, database_url)
        first = authz_sync("run", env=env)
        assert first.exit_code == 0, first.output
        assert_tables_equal(read_tables(database_url), sorted_truth(ground_truth(tenant)))
        users = {row["user_id"]: row["name"] for row in read_tables(database_url)["authz_users"]}
        assert {user_id: users[user_id] for user_id in TWINS} == {
            user_id: f"Twin {index}" for index, user_id in enumerate(TWINS)
        }

        tenant.users[TWINS[0]]["name"] = "Twin 0 "  # only a trailing space more: a change
        second = authz_sync("run", env=env)
        assert second.exit_code == 0, second.output
        assert "0 inserted, 1 updated, 0 deleted" in second.stdout
        assert_tables_equal(read_tables(database_url), sorted_truth(ground_truth(tenant)))
    assert ledger(database_url)[-1]["counts"]["authz_users"]["updated"] == 1


def test_every_text_column_has_a_no_pad_binary_collation(database_url):
    """MySQL/MariaDB only (elsewhere strings compare byte for byte anyway): the tables as the
    migrations leave them carry the collation of sync.schema, table default and columns."""
    engine = open_engine(database_url)
    try:
        revisions.upgrade(engine)
        if engine.dialect.name not in ("mysql", "mariadb"):
            return
        expected = schema.binary_collation(engine.dialect)
        with engine.connect() as connection:
            tables = dict(connection.execute(text(TABLE_COLLATIONS)).all())
            columns = connection.execute(text(COLUMN_COLLATIONS)).all()
    finally:
        engine.dispose()
    assert set(tables) == set(schema.metadata.tables)
    assert {name: collation for name, collation in tables.items()} == dict.fromkeys(
        tables, expected
    )
    wrong = [(table, column, found) for table, column, found in columns if found != expected]
    assert wrong == []
    assert ("authz_users", "user_id", expected) in columns


TABLE_COLLATIONS = """
SELECT table_name, table_collation FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_name LIKE 'authz%'"""
COLUMN_COLLATIONS = """
SELECT table_name, column_name, collation_name FROM information_schema.columns
WHERE table_schema = DATABASE() AND table_name LIKE 'authz%' AND collation_name IS NOT NULL"""
