"""A run skips the tables whose source answered exactly as at the last successful run
(fingerprint.py), on SQLite, PostgreSQL and MariaDB, through the real command over HTTP: the
skipped tables must still end up right, and everything else must still be compared."""

from __future__ import annotations

import re

import pytest
from e2e import assert_synced, authz_sync, command_env, ledger
from sqlalchemy import create_engine, delete, insert, select, update

from sync import __version__
from sync.fingerprint import RowSum
from sync.model import Fingerprints
from sync.sql import revisions, schema
from sync.sql.engine import open_engine
from sync.sql.ledger import keep_windows_of, last_success, utcnow, windows_to_json

# Past the 1000-user cap, so users are read in windows.
SIZE = {"users": 1200, "groups": 40, "memberships": 1500, "roles": 8, "permissions": 20}
SKIPPED = re.compile(r"(\d+) of (\d+) tables not compared")
pytestmark = pytest.mark.tenant(**SIZE)


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`authz-sync -v run`; how many tables it did not compare, and its output."""
    result = authz_sync("-v", "run", *args, env=env)
    assert result.exit_code == 0, result.output
    skipped = SKIPPED.search(result.stderr)
    return (int(skipped.group(1)) if skipped else 0), result.output


def execute(database_url, statement) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(statement)
    engine.dispose()


def test_a_rerun_compares_nothing_and_a_change_compares_only_what_it_touches(
    sim, tenant, database_url
):
    env = command_env(sim, database_url)
    assert run(env)[0] == 0  # the first run has nothing to skip
    skipped, _ = run(env)
    assert skipped == len(schema.SYNCED_TABLES)  # a no-op run compares no table
    first, second = ledger(database_url)
    assert second["fingerprints"]["users"]
    # The windows users were read in are kept (the newest run's only), and the next run reads
    # them again.
    assert sum(count for _, count in second["user_windows"]) == SIZE["users"]
    assert first["user_windows"] is None
    assert second["api_requests"] <= first["api_requests"]

    # A login moves only the users: the link tables are not compared, the users are.
    user = next(u for u in tenant.users.values() if u.get("last_login"))
    user["last_login"] = "2026-11-30T08:00:00.000Z"
    skipped, output = run(env)
    assert skipped == len(schema.SYNCED_TABLES) - 1
    assert "0 inserted, 1 updated, 0 deleted" in output
    assert_synced(database_url, tenant)


def test_a_deleted_user_is_flagged_an_orphan_although_the_groups_did_not_change(
    sim, tenant, database_url
):
    """Members' `is_orphan` depends on which users exist: a changed set of users must compare
    the member tables even when /api/groups answered the same bytes."""
    env = command_env(sim, database_url)
    run(env)
    member = next(m for g in tenant.groups for m in g["members"] if m in tenant.users)
    del tenant.users[member]
    skipped, _ = run(env)
    # Users and the two member tables are compared; groups, roles and their links are not.
    assert skipped == len(schema.SYNCED_TABLES) - 3
    engine = create_engine(database_url)
    with engine.connect() as connection:
        flags = connection.scalars(
            select(schema.group_members.c.is_orphan).where(schema.group_members.c.user_id == member)
        ).all()
    engine.dispose()
    assert flags and all(flags)
    assert_synced(database_url, tenant)


def test_a_table_changed_by_hand_is_put_right(sim, tenant, database_url):
    env = command_env(sim, database_url)
    run(env)
    group_id = tenant.groups[0]["_id"]
    groups = schema.groups

    # A deleted row changes the count: the table is compared, and the row comes back.
    execute(database_url, delete(groups).where(groups.c.group_id == group_id))
    skipped, output = run(env)
    assert skipped == len(schema.SYNCED_TABLES) - 1
    assert "1 inserted, 0 updated, 0 deleted" in output
    assert_synced(database_url, tenant)

    # An edit in place keeps the count: only --compare-all sees it (as the README says).
    execute(
        database_url,
        update(groups).where(groups.c.group_id == group_id).values(description="edited by hand"),
    )
    skipped, _ = run(env)
    assert skipped == len(schema.SYNCED_TABLES)
    skipped, output = run(env, "--compare-all")
    assert skipped == 0
    assert "0 inserted, 1 updated, 0 deleted" in output
    assert_synced(database_url, tenant)


def test_another_version_s_run_is_not_trusted(sim, sqlite_url):
    """A new version may derive the tables differently: its first run compares everything.
    (Which run is trusted is decided in Python: one database shows it.)"""
    env = command_env(sim, sqlite_url)
    run(env)
    runs = schema.sync_runs
    execute(sqlite_url, update(runs).values(version="0.0.1"))
    assert run(env)[0] == 0
    assert run(env)[0] == len(schema.SYNCED_TABLES)


def test_row_sums_do_not_depend_on_order_but_on_every_row():
    rows = [("auth0|1", "Ann", None), ("auth0|2", "Bob", 3), ("auth0|3", "Cy", [1, 2])]
    forward, backward, other = RowSum(), RowSum(), RowSum()
    for row in rows:
        forward.add(row)
    for row in reversed(rows):
        backward.add(row)
    for row in [*rows[:2], ("auth0|3", "Cy", [2, 1])]:
        other.add(row)
    assert forward.hexdigest() == backward.hexdigest() != other.hexdigest()
    assert len(forward.hexdigest()) == 32


@pytest.mark.parametrize("stored", [None, "garbage", {"authz": 3}, {}])
def test_unreadable_stored_fingerprints_match_nothing(stored):
    last = Fingerprints.from_dict(stored)
    now = Fingerprints(authz="a" * 32, user_ids="b" * 32, users="c" * 32)
    assert not (now.same_authz(last) or now.same_user_ids(last) or now.same_users(last))
    assert not Fingerprints().same_authz(Fingerprints())  # unknown is never "the same"


def test_an_import_between_two_runs_keeps_the_user_windows(sqlite_url):
    """An import reads no users: the next API run still reads the windows the last one did."""
    engine = open_engine(sqlite_url)
    revisions.upgrade(engine)
    windows = [["2024-05-01T10:00:00.123Z", 870], [None, 330]]
    succeeded = {"status": "succeeded", "started_at": utcnow(), "version": __version__}
    with engine.begin() as connection:
        api_run = connection.execute(
            insert(schema.sync_runs).values(**succeeded, counts={}, user_windows=windows)
        ).inserted_primary_key[0]
        connection.execute(insert(schema.sync_runs).values(**succeeded, counts={}))  # an import
        assert windows_to_json(last_success(connection).user_windows) == windows
        keep_windows_of(connection, api_run + 5)  # a later run that read users
        assert last_success(connection).user_windows == []
    engine.dispose()
