"""authz_changes tells a change of the tenant from a repair: a row changed by hand in the
database, put right by a run, is logged with cause `repair`, not as if Auth0 had changed."""

from __future__ import annotations

from e2e import authz_sync, command_env
from sqlalchemy import create_engine, delete, select, update

from sync.sql import schema


def execute(database_url, statement) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(statement)
    engine.dispose()


def logged(database_url) -> list[tuple]:
    engine = create_engine(database_url)
    changes = schema.changes
    columns = (changes.c.run_id, changes.c.entity_id, changes.c.operation, changes.c.cause)
    with engine.connect() as connection:
        rows = connection.execute(select(*columns).order_by(changes.c.change_id)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_a_repair_of_a_hand_edit_is_logged_as_a_repair(sim, tenant, database_url):
    env = command_env(sim, database_url)
    run = lambda *args: authz_sync("run", *args, env=env)  # noqa: E731
    assert run().exit_code == 0  # run 1: the first load is not logged
    edited, deleted = tenant.groups[0]["_id"], tenant.groups[1]["_id"]
    groups = schema.groups
    execute(database_url, update(groups).where(groups.c.group_id == edited).values(name="hand"))
    assert run("--compare-all").exit_code == 0  # run 2 puts the edit right
    execute(database_url, delete(groups).where(groups.c.group_id == deleted))
    assert run().exit_code == 0  # run 3: the count differs, the row comes back
    tenant.groups[2]["name"] = "Renamed in Auth0"
    assert run().exit_code == 0  # run 4: the tenant changed
    assert logged(database_url) == [
        (2, edited, "update", "repair"),
        (3, deleted, "insert", "repair"),
        (4, tenant.groups[2]["_id"], "update", "tenant"),
    ]
