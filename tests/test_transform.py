"""API records → rows: the orphan and dangling-reference rules, and errors that name the
entity, the id and the field."""

from __future__ import annotations

from datetime import datetime

import pytest

from sync.errors import ApiDataError
from sync.simulator import generate_tenant
from sync.transform import (
    Snapshot,
    TableRows,
    _checked_user_row,
    _plain_user_row,
    build_rows,
    user_row,
)

G1, G2, GONE = (
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "99999999-9999-4999-8999-999999999999",
)
R1 = "33333333-3333-4333-8333-333333333333"
P1 = "44444444-4444-4444-8444-444444444444"


USERS = {"auth0|1": {"user_id": "auth0|1", "last_login": "2024-05-01T10:00:00.123Z"}}


def snapshot(**changes) -> Snapshot:
    groups = [
        {
            "_id": G1,
            "name": "One",
            "members": ["auth0|1", "auth0|gone", "auth0|1"],
            "nested": [G2, GONE],
            "roles": [R1, GONE],
            "mappings": [{"_id": "m1", "groupName": "AD", "connectionName": "corp"}],
        },
        {"_id": G2, "name": "Two", "members": [], "mappings": []},
    ]
    roles = [{"_id": R1, "name": "Admin", "permissions": [P1, GONE], "users": ["auth0|x"]}]
    permissions = [{"_id": P1, "name": "read:x", "applicationType": "client"}]
    base = {"groups": groups, "roles": roles, "permissions": permissions}
    return Snapshot(**(base | changes))


def build(users: dict = USERS, **changes) -> TableRows:
    """What a run derives: user rows (staged, slice by slice, in a run) and the other tables."""
    user_rows = [user_row(user) for user in users.values()]
    rows = build_rows(snapshot(**changes))
    rows.tables["authz_users"] = user_rows
    return rows


def test_members_are_kept_dangling_links_left_out_duplicates_collapsed():
    rows = build()
    tables = rows.tables
    # Orphans are kept; their flag is set in the database, against the users read (e2e tests).
    assert rows.members == {G1: ["auth0|1", "auth0|gone"], G2: []}
    assert list(rows.rows("authz_group_members")) == [
        {"group_id": G1, "user_id": "auth0|1", "is_orphan": False},
        {"group_id": G1, "user_id": "auth0|gone", "is_orphan": False},
    ]
    assert list(rows.rows("authz_role_users")) == [
        {"role_id": R1, "user_id": "auth0|x", "is_orphan": False}
    ]
    assert tables["authz_group_nesting"] == [{"parent_group_id": G1, "child_group_id": G2}]
    assert tables["authz_group_roles"] == [{"group_id": G1, "role_id": R1}]
    assert tables["authz_role_permissions"] == [{"role_id": R1, "permission_id": P1}]
    assert len(rows.warnings) == 3 and all(GONE in w for w in rows.warnings)
    assert tables["authz_users"][0]["last_login"] == datetime(2024, 5, 1, 10, 0, 0, 123000)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"groups": [{"_id": "not-a-guid", "name": "x"}]},
            "group 'not-a-guid': field '_id' is not a GUID",
        ),
        ({"groups": [{"_id": G1}]}, f"group '{G1}': field 'name' is missing"),
        ({"groups": [{"_id": G1, "name": 5}]}, "field 'name' must be a non-empty string"),
        ({"groups": [{"_id": G1, "name": "x", "members": "auth0|1"}]}, "'members' must be a list"),
        ({"roles": [{"_id": R1, "name": "r", "users": [1]}]}, f"role '{R1}': field 'users'"),
        ({"users": {"u": {"user_id": "u", "logins_count": "7"}}}, "user 'u': field 'logins_count'"),
        ({"users": {"u": {"user_id": "u", "blocked": "no"}}}, "field 'blocked' has the wrong type"),
        ({"users": {"u": {"user_id": "u", "last_login": "yesterday"}}}, "not an ISO 8601"),
        ({"users": {"u": {"user_id": "u", "name": "x" * 300}}}, "longer than 255"),
        ({"groups": [{"_id": G1, "name": "a"}, {"_id": G1, "name": "b"}]}, "appears twice"),
        ({"permissions": ["read:x"]}, "permission: expected an object"),
    ],
)
def test_bad_records_fail_naming_entity_id_and_field(changes, message):
    with pytest.raises(ApiDataError, match=message.replace("(", r"\(")) as caught:
        build(**changes)
    assert caught.value.exit_code == 65


def test_well_formed_users_take_the_fast_path_with_the_checked_row():
    """The simulator's users are what a tenant sends (emails, pictures, identities, logins):
    every one is read by the fast path, to the row the checks give."""
    users = list(generate_tenant(users=500).users.values())
    assert all(_plain_user_row(user) == _checked_user_row(user) for user in users)
    assert all(_plain_user_row(user) is not None for user in users)
    # A user the checks refuse is never taken: the placeholder, an over-long email.
    assert _plain_user_row(users[0] | {"name": "<Error: Unknown>"}) is None
    assert _plain_user_row(users[0] | {"email": "x" * 321}) is None
