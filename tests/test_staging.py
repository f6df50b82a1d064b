"""Staged (temporary-table) plans on every database: counts, samples, change-log rows, writes,
orphan flags, for the awkward values: JSON, NULL ↔ value, timestamps with milliseconds, ids
differing by case only.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from sync.errors import DatabaseError
from sync.sql import schema
from sync.sql.engine import begin_writing, open_engine
from sync.sql.revisions import ensure_schema
from sync.sql.twins import DEFERRED_KEY, TRANSACTIONAL_DDL, StagedTable

KEYS = ("user_id",)
NOW = datetime(2026, 11, 28, 12, 0, 0)


def user(user_id: str, **changes) -> dict:
    return {
        "user_id": user_id,
        "email": f"{user_id}@example.com",
        "name": "Zoë 🚀",
        "connection": "Username-Password-Authentication",
        "picture": None,
        "last_login": datetime(2024, 5, 1, 10, 0, 0, 123000),
        "logins_count": 3,
        "blocked": False,
        "multifactor": ["guardian"],
        "identities": [{"connection": "Username-Password-Authentication", "isSocial": False}],
    } | changes


BEFORE = [
    user("auth0|same"),
    user("auth0|abc"),
    user("auth0|email", email="old@example.com"),
    user("auth0|json", identities=[{"connection": "old"}]),
    user("auth0|null", multifactor=None, logins_count=None),
    user("auth0|time", last_login=datetime(2024, 5, 1, 10, 0, 0, 124000)),
    user("auth0|gone-1"),
    user("auth0|gone-2", blocked=True),
]
AFTER = [
    user("auth0|same"),
    user("auth0|abc"),
    user("auth0|ABC"),  # differs from an existing id by case only: a new user
    user("auth0|email", email="new@example.com"),
    user("auth0|json"),
    user("auth0|null"),
    user("auth0|time"),
    user("samlp|Corp Dir|jane@example.com"),
]


@pytest.fixture
def engine(database_url):
    engine = open_engine(database_url)
    ensure_schema(engine)
    with engine.begin() as connection:
        connection.execute(insert(schema.users), [row | {"changed_at": NOW} for row in BEFORE])
    yield engine
    engine.dispose()


def _staged(connection):
    staged = StagedTable(connection, schema.users, KEYS)
    staged.add(AFTER[:3])
    staged.add(AFTER[2:])  # a key staged twice keeps one row
    return staged.plan()


def _ids(rows) -> list[str]:
    return [row["user_id"] for row in rows]


def test_a_staged_plan_counts_samples_and_logs_every_difference(engine):
    before = {row["user_id"]: row for row in BEFORE}
    updated = ["auth0|email", "auth0|json", "auth0|null", "auth0|time"]
    with engine.connect() as connection:
        plan = _staged(connection)
        assert (plan.count.inserted, plan.count.updated, plan.count.deleted) == (2, 4, 2)
        assert plan.count.fetched == len(AFTER) and plan.count.unchanged == 2
        assert all(type(n) is int for n in plan.count.as_dict().values())  # the ledger's JSON
        assert plan.rows_before == len(BEFORE) and plan.changed
        assert sorted(_ids(plan.inserted_rows())) == [
            "auth0|ABC",
            "samlp|Corp Dir|jane@example.com",
        ]
        assert _ids(plan.deleted_rows()) == ["auth0|gone-1", "auth0|gone-2"]
        assert plan.deleted_rows(1) == [before["auth0|gone-1"]]  # whole rows, in key order
        pairs = plan.updated_pairs()
        assert sorted(_ids(after for _, after in pairs)) == updated
        assert all(old == before[old["user_id"]] for old, _ in pairs)
        changes = list(plan.change_rows())
        assert sorted((op, (new or old)["user_id"]) for op, old, new in changes) == sorted(
            [("insert", "auth0|ABC"), ("insert", "samlp|Corp Dir|jane@example.com")]
            + [("update", user_id) for user_id in updated]
            + [("delete", "auth0|gone-1"), ("delete", "auth0|gone-2")]
        )


def test_a_staged_plan_writes_the_table_to_equal_its_rows(engine):
    with engine.connect() as connection:
        _staged(connection).write(connection, NOW)
        connection.commit()
        stored = {
            row["user_id"]: {k: v for k, v in row.items() if k != "changed_at"}
            for row in connection.execute(select(schema.users)).mappings()
        }
        assert stored == {row["user_id"]: row for row in AFTER}
        # Only written rows get a new changed_at: unchanged ones keep theirs.
        again = StagedTable(connection, schema.users, KEYS)
        again.add(AFTER)
        assert again.plan().count.unchanged == len(AFTER)


def test_a_key_only_table_has_inserts_and_deletes_but_no_updates(engine):
    table, keys = schema.effective_user_permissions, ("user_id", "permission_id", "via_role_id")
    old = [{"user_id": "u1", "permission_id": "p1", "via_role_id": "r1"}]
    new = [{"user_id": "u2", "permission_id": "p1", "via_role_id": "r1"}]
    with engine.connect() as connection:
        connection.execute(insert(table), old)
        staged = StagedTable(connection, table, keys)
        staged.add(new, distinct=True)
        plan = staged.plan()
        assert (plan.count.inserted, plan.count.updated, plan.count.deleted) == (1, 0, 1)
        assert plan.updated_pairs() == []
        plan.write(connection, NOW)
        assert [dict(r) for r in connection.execute(select(table)).mappings()] == new


def test_orphans_are_flagged_against_the_users_given(engine):
    table, keys = schema.group_members, ("group_id", "user_id")
    rows = [
        {"group_id": "g", "user_id": user_id, "is_orphan": False}
        for user_id in ("auth0|abc", "auth0|ABC", "auth0|nobody")
    ]
    with engine.connect() as connection:
        staged = StagedTable(connection, table, keys)
        staged.add_all(iter(rows), distinct=True)
        staged.mark_orphans(schema.users)  # holds BEFORE: auth0|abc, not auth0|ABC
        flags = {r["user_id"]: r["is_orphan"] for r in staged.plan().inserted_rows()}
        assert flags == {"auth0|abc": False, "auth0|ABC": True, "auth0|nobody": True}


def test_change_rows_page_through_more_rows_than_one_page(engine, monkeypatch):
    monkeypatch.setattr("sync.sql.twins.PAGE", 3)
    many = [user(f"auth0|new-{i:02}") for i in range(10)]
    with engine.connect() as connection:
        staged = StagedTable(connection, schema.users, KEYS)
        staged.add(BEFORE + many)
        plan = staged.plan()
        inserted = [after["user_id"] for _, _, after in plan.change_rows()]
        assert inserted == [u["user_id"] for u in many]
        assert [u["user_id"] for u in plan.inserted_rows(4)] == inserted[:4]


def test_a_table_loaded_empty_builds_its_reader_indexes_after_the_load(engine):
    table = schema.group_members  # empty: the fixture stores users only
    rows = [
        {"group_id": f"g{n % 7}", "user_id": f"auth0|{n}", "is_orphan": False} for n in range(50)
    ]
    with engine.connect() as connection:
        indexes = _index_names(connection, table)
        assert indexes  # the user_id index readers need
        begin_writing(connection)  # as a run loads: inside its write transaction
        staged = StagedTable(connection, table, ("group_id", "user_id"), into_empty_table=True)
        transactional = connection.dialect.name in TRANSACTIONAL_DDL
        assert _index_names(connection, table) == (set() if transactional else indexes)
        keyless = connection.dialect.name in DEFERRED_KEY
        assert _key(connection, table) == ([] if keyless else ["group_id", "user_id"])
        staged.add(rows, distinct=True)
        assert staged.plan().count.inserted == 50
        assert _index_names(connection, table) == indexes
        assert _key(connection, table) == ["group_id", "user_id"]
        connection.rollback()
    with engine.connect() as connection:  # a run that fails leaves the table as it was
        assert _index_names(connection, table) == indexes
        assert _key(connection, table) == ["group_id", "user_id"]
        assert connection.scalar(select(func.count()).select_from(table)) == 0


def test_a_first_load_that_repeats_a_key_fails_whether_or_not_the_key_was_deferred(engine):
    table = schema.group_members
    twice = [{"group_id": "g", "user_id": "auth0|same", "is_orphan": False}] * 2
    with engine.connect() as connection:
        begin_writing(connection)
        staged = StagedTable(connection, table, ("group_id", "user_id"), into_empty_table=True)
        with pytest.raises(IntegrityError):  # at the load, or when the deferred key is built
            staged.add(twice, distinct=True)
            staged.plan()
        connection.rollback()
    with engine.connect() as connection:
        assert _key(connection, table) == ["group_id", "user_id"]
        assert connection.scalar(select(func.count()).select_from(table)) == 0


def test_a_table_loaded_without_its_key_refuses_rows_that_need_an_upsert(engine):
    with engine.connect() as connection:
        begin_writing(connection)
        staged = StagedTable(
            connection, schema.group_members, ("group_id", "user_id"), into_empty_table=True
        )
        row = {"group_id": "g", "user_id": "auth0|u", "is_orphan": False}
        if connection.dialect.name in DEFERRED_KEY:
            with pytest.raises(ValueError, match="without its key"):
                staged.add([row])
        else:
            staged.add([row])  # the key is there to upsert on
            assert staged.plan().count.inserted == 1
        connection.rollback()


def test_a_failed_first_load_rolls_the_dropped_indexes_back(engine):
    table = schema.group_members
    with engine.connect() as connection:
        indexes = _index_names(connection, table)
        begin_writing(connection)
        StagedTable(connection, table, ("group_id", "user_id"), into_empty_table=True)
        connection.rollback()  # before the load was planned: the indexes were dropped
    with engine.connect() as connection:
        assert _index_names(connection, table) == indexes


def _key(connection, table) -> list[str]:
    return inspect(connection).get_pk_constraint(table.name)["constrained_columns"]


def _index_names(connection, table) -> set[str]:
    return {index["name"] for index in inspect(connection).get_indexes(table.name)}


def test_a_twin_keyed_after_its_load_compares_like_a_keyed_one(engine):
    with engine.connect() as connection:
        staged = StagedTable(connection, schema.users, KEYS, keyed_after_load=True)
        with pytest.raises(ValueError, match="without its key"):
            staged.add(AFTER[:1])  # an upsert needs the key
        staged.add(AFTER, distinct=True)
        staged.add_key()
        assert staged.repeated_key() is None
        plan = staged.plan()
        assert (plan.count.inserted, plan.count.updated, plan.count.deleted) == (2, 4, 2)
        with pytest.raises((IntegrityError, DatabaseError)):  # the key holds (COPY: raw)
            staged.add(AFTER[:1], distinct=True)
        connection.rollback()


def test_a_twin_keyed_after_its_load_names_a_key_staged_twice(engine):
    with engine.connect() as connection:
        staged = StagedTable(connection, schema.users, KEYS, keyed_after_load=True)
        staged.add(AFTER[:4], distinct=True)
        staged.add(AFTER[3:5], distinct=True)  # AFTER[3] a second time
        connection.commit()
        with pytest.raises(IntegrityError):
            staged.add_key()
        connection.rollback()
        assert staged.repeated_key() == AFTER[3]["user_id"]
