"""Staged (temporary-table) plans answer exactly as in-memory plans do, on every database.

The users and the effective tables are compared in SQL (sync/staging.py), the small tables in
Python (sync/store.py). Both must agree on every count, sample, change-log row and write, for
the awkward values: JSON, NULL ↔ value, timestamps with milliseconds, ids differing by case.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import insert, select

from sync import schema
from sync.database import ensure_schema, open_engine
from sync.staging import StagedTable
from sync.store import plan_table

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


def _both(connection):
    in_memory = plan_table(connection, schema.users, KEYS, AFTER)
    staged = StagedTable(connection, schema.users, KEYS)
    staged.add(AFTER[:3])
    staged.add(AFTER[2:])  # a key staged twice keeps one row
    return in_memory, staged.plan()


def test_a_staged_plan_counts_samples_and_logs_what_an_in_memory_plan_does(engine):
    with engine.connect() as connection:
        in_memory, staged = _both(connection)
        assert staged.count == in_memory.count
        assert (staged.count.inserted, staged.count.updated, staged.count.deleted) == (2, 4, 2)
        assert staged.count.unchanged == 2 and staged.rows_before == len(BEFORE)
        assert staged.inserted_rows() == in_memory.inserted_rows()
        assert staged.deleted_rows(1) == in_memory.deleted_rows(1)
        assert [u["user_id"] for u in staged.deleted_rows()] == ["auth0|gone-1", "auth0|gone-2"]
        assert staged.updated_pairs() == in_memory.updated_pairs()
        assert sorted(staged.change_rows(), key=repr) == sorted(in_memory.change_rows(), key=repr)


def test_a_staged_plan_writes_the_table_to_equal_its_rows(engine):
    with engine.connect() as connection:
        _, staged = _both(connection)
        staged.write(connection, NOW)
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


def test_change_rows_page_through_more_rows_than_one_page(engine, monkeypatch):
    monkeypatch.setattr("sync.staging.PAGE", 3)
    many = [user(f"auth0|new-{i:02}") for i in range(10)]
    with engine.connect() as connection:
        staged = StagedTable(connection, schema.users, KEYS)
        staged.add(BEFORE + many)
        plan = staged.plan()
        inserted = [after["user_id"] for _, _, after in plan.change_rows()]
        assert inserted == [u["user_id"] for u in many]
        assert [u["user_id"] for u in plan.inserted_rows(4)] == inserted[:4]
