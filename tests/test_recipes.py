"""Effective access, history, change log and every SQL recipe of the README, on every database,
checked against what the simulated extension itself answers."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from e2e import authz_sync, command_env, ledger
from sqlalchemy import bindparam, create_engine, text

from sync.simulator import Simulator
from sync.sql.schema import Timestamp

README = Path(__file__).resolve().parent.parent / "README.md"
RECIPE = re.compile(r"<!-- recipe: ([\w-]+) -->\s*```sql\n(.*?)```", re.S)
RECIPES = dict(RECIPE.findall(README.read_text()))
SIZE = {"users": 300, "groups": 30, "memberships": 700, "roles": 8, "permissions": 20}
pytestmark = pytest.mark.tenant(**SIZE)


class Extension:
    """The simulator's own answers, over HTTP, as the extension would give them."""

    def __init__(self, sim: Simulator):
        token = sim.issue_token()
        self.http = httpx.Client(base_url=sim.api_url, headers={"Authorization": f"Bearer {token}"})

    def ids(self, path: str) -> set[str]:
        response = self.http.get(path)
        response.raise_for_status()
        return {item["_id"] for item in response.json()}

    def effective_groups(self, user_id: str) -> set[str]:
        return self.ids(f"/users/{quote(user_id, safe='')}/groups/calculate")

    def effective_roles(self, user_id: str) -> set[str]:
        return self.ids(f"/users/{quote(user_id, safe='')}/roles/calculate")

    def nested_members(self, group_id: str) -> set[str]:
        users, page = set(), 1
        while True:
            body = self.http.get(f"/groups/{group_id}/members/nested", params={"page": page}).json()
            users |= {entry["user"]["user_id"] for entry in body["nested"]}
            if not body["nested"] or page * 25 >= body["total"]:
                return users
            page += 1


def query(database_url, name: str, **params) -> list[dict]:
    statement = text(RECIPES[name])
    for key, value in params.items():
        if key in ("since", "on_date"):
            # Bound as the columns store them (on SQLite: ISO 8601 text with a T).
            statement = statement.bindparams(bindparam(key, value, type_=Timestamp))
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(statement, params).mappings()]
    finally:
        engine.dispose()


def sync(sim, database_url) -> None:
    result = authz_sync("run", env=command_env(sim, database_url))
    assert result.exit_code == 0, result.output


def test_the_readme_has_every_recipe_the_issue_asks_for():
    assert set(RECIPES) == {
        "user-groups",
        "user-groups-effective",
        "group-members",
        "permission-holders",
        "changes-since",
        "membership-changes-since",
        "members-on-date",
        "orphans",
    }


def test_effective_access_equals_the_extensions_own_calculation(sim, database_url):
    sync(sim, database_url)
    extension = Extension(sim)
    tenant = sim.tenant
    existing = {p["_id"] for p in tenant.permissions}
    permissions_of = {r["_id"]: set(r.get("permissions") or []) & existing for r in tenant.roles}
    groups = _by_user(database_url, "group_id", "authz_effective_group_members")
    roles = _by_user(database_url, "role_id", "authz_effective_user_roles")
    permissions = _by_user(database_url, "permission_id", "authz_effective_user_permissions")
    for user_id in tenant.users:
        assert groups.get(user_id, set()) == extension.effective_groups(user_id), user_id
        expected_roles = extension.effective_roles(user_id)
        assert roles.get(user_id, set()) == expected_roles, user_id
        expected = set().union(*(permissions_of[r] for r in expected_roles))
        assert permissions.get(user_id, set()) == expected, user_id


def _by_user(database_url, column: str, table: str) -> dict[str, set[str]]:
    engine = create_engine(database_url)
    found: dict[str, set[str]] = {}
    with engine.connect() as connection:
        for user_id, value in connection.execute(text(f"SELECT user_id, {column} FROM {table}")):
            found.setdefault(user_id, set()).add(value)
    engine.dispose()
    return found


def test_the_nesting_cycle_terminates_with_shortest_depths(sim, database_url):
    sync(sim, database_url)
    a, b, c = (sim.tenant.groups[i] for i in range(3))  # Cycle A → B → C → A
    assert b["_id"] in a["nested"] and c["_id"] in b["nested"] and a["_id"] in c["nested"]
    member_of_c = next(u for u in c["members"] if u in sim.tenant.users)
    rows = query(database_url, "group-members", group_id=a["_id"])
    depths = {(r["via_group_id"], r["depth"]) for r in rows if r["user_id"] == member_of_c}
    assert (c["_id"], 2) in depths
    assert {r["user_id"] for r in rows} == Extension(sim).nested_members(a["_id"])


def test_every_readme_recipe_over_three_runs(sim, database_url):
    tenant, extension = sim.tenant, Extension(sim)
    sync(sim, database_url)  # run 1
    group = next(
        g for g in tenant.groups[12:] if len([u for u in g["members"] if u in tenant.users]) >= 2
    )
    members_1 = sorted(set(group["members"]))
    leaving = next(u for u in members_1 if u in tenant.users)
    joining = next(u for u in tenant.users if u not in members_1)
    gone_user = next(u for u in tenant.users if u not in (leaving, joining))
    renamed = tenant.groups[13]

    group["members"] = [u for u in group["members"] if u != leaving] + [joining]
    renamed["description"] = "Renamed in run 2 ✨"
    tenant.add_user({"user_id": "auth0|joined-run-2", "name": "Neu Ankömmling", "email": "n@x.io"})
    tenant.delete_user(gone_user)
    sync(sim, database_url)  # run 2
    members_2 = sorted(set(group["members"]))

    group["members"].append(leaving)
    sync(sim, database_url)  # run 3
    runs = ledger(database_url)
    assert [r["status"] for r in runs] == ["succeeded"] * 3

    # members-on-date: the group as each run saw it; nothing before the first run
    on = {i: runs[i]["finished_at"] for i in range(3)}
    assert (
        _users(query(database_url, "members-on-date", group_id=group["_id"], on_date=on[0]))
        == members_1
    )
    assert (
        _users(query(database_url, "members-on-date", group_id=group["_id"], on_date=on[1]))
        == members_2
    )
    assert leaving in _users(
        query(database_url, "members-on-date", group_id=group["_id"], on_date=on[2])
    )
    before = runs[0]["started_at"]
    assert query(database_url, "members-on-date", group_id=group["_id"], on_date=before) == []

    # changes since run 2 began: exactly what changed in the source
    since = runs[1]["started_at"]
    changes = query(database_url, "changes-since", since=since)
    assert {(c["entity"], c["entity_id"], c["operation"]) for c in changes} == {
        ("group", renamed["_id"], "update"),
        ("user", "auth0|joined-run-2", "insert"),
        ("user", gone_user, "delete"),
    }
    update = next(c for c in changes if c["operation"] == "update")
    assert _json(update["new_values"]) == {"description": "Renamed in run 2 ✨"}
    membership = query(database_url, "membership-changes-since", since=since)
    assert {(m["group_id"], m["user_id"], m["change_kind"]) for m in membership} == {
        (group["_id"], leaving, "removed"),
        (group["_id"], joining, "added"),
        (group["_id"], leaving, "added"),
    }

    # a user's groups, direct and effective
    direct = {g["_id"] for g in tenant.groups if leaving in g["members"]}
    rows = query(database_url, "user-groups", user_id=leaving)
    assert {r["group_id"] for r in rows} == direct
    assert all(r["description"] == _group(tenant, r["group_id"]).get("description") for r in rows)
    effective = query(database_url, "user-groups-effective", user_id=leaving)
    assert {r["group_id"] for r in effective} == extension.effective_groups(leaving)
    assert [r["depth"] for r in effective] == sorted(r["depth"] for r in effective)

    # a group's members with nesting
    parent = next(g for g in tenant.groups if g.get("nested"))
    rows = query(database_url, "group-members", group_id=parent["_id"])
    assert {r["user_id"] for r in rows} == extension.nested_members(parent["_id"])

    # who holds a permission, and why
    permission = next(
        p
        for p in tenant.permissions
        if any(p["_id"] in (r.get("permissions") or []) for r in tenant.roles)
    )
    holders = {
        r["user_id"]
        for r in query(database_url, "permission-holders", permission_id=permission["_id"])
    }
    granting = {r["_id"] for r in tenant.roles if permission["_id"] in (r.get("permissions") or [])}
    expected = {u for u in tenant.users if extension.effective_roles(u) & granting}
    assert holders >= expected and holders - expected <= _orphans(tenant)

    # orphans
    orphans = query(database_url, "orphans")
    expected_orphans = {
        (g["_id"], u) for g in tenant.groups for u in g["members"] if u not in tenant.users
    }
    assert {(r["group_id"], r["user_id"]) for r in orphans} == expected_orphans
    # the user deleted in run 2 kept their memberships, now flagged
    assert {g for g, u in expected_orphans if u == gone_user} == {
        g["_id"] for g in tenant.groups if gone_user in g["members"]
    }


def _users(rows: list[dict]) -> list[str]:
    return [row["user_id"] for row in rows]


def _group(tenant, group_id: str) -> dict:
    return next(g for g in tenant.groups if g["_id"] == group_id)


def _orphans(tenant) -> set[str]:
    listed = {u for g in tenant.groups for u in g["members"]}
    listed |= {u for r in tenant.roles for u in r.get("users") or []}
    return listed - set(tenant.users)


def _json(value):
    import json

    return json.loads(value) if isinstance(value, str) else value


def test_effective_tables_are_rebuilt_when_they_disagree(sim, database_url):
    sync(sim, database_url)
    before = _by_user(database_url, "role_id", "authz_effective_user_roles")
    engine = create_engine(database_url)
    with engine.begin() as connection:  # e.g. tables created empty by an upgrade
        connection.execute(text("DELETE FROM authz_effective_user_roles"))
    engine.dispose()
    sync(sim, database_url)  # nothing changed upstream, but the counts disagree
    assert _by_user(database_url, "role_id", "authz_effective_user_roles") == before
    assert ledger(database_url)[-1]["counts"]["authz_effective_user_roles"]["inserted"] > 0


def test_recipes_take_iso_8601_strings_on_every_database(sim, database_url):
    """What people paste: `status --json`'s timestamps (T, Z), or a date. Bound as plain strings,
    as a SQL client or a script would bind them, they must select what the datetimes do."""
    tenant = sim.tenant
    sync(sim, database_url)
    group = tenant.groups[13]
    leaving = next(u for u in group["members"] if u in tenant.users)
    group["members"] = [u for u in group["members"] if u != leaving]
    group["description"] = "Changed in run 2"
    sync(sim, database_url)
    first, second = ledger(database_url)
    since = second["started_at"]
    expected_changes = _ids(query(database_url, "changes-since", since=since))
    expected_members = _ids(query(database_url, "membership-changes-since", since=since))
    assert expected_changes and expected_members
    on_date = first["finished_at"]
    expected_on_date = _ids(
        query(database_url, "members-on-date", group_id=group["_id"], on_date=on_date)
    )
    assert (leaving,) in expected_on_date
    for text_since in (since.isoformat(), since.isoformat() + "Z"):
        assert _ids(text_query(database_url, "changes-since", since=text_since)) == (
            expected_changes
        ), text_since
        assert _ids(text_query(database_url, "membership-changes-since", since=text_since)) == (
            expected_members
        ), text_since
    whole = since.replace(microsecond=0)  # to the second, as people type it (maybe run 1 too)
    for name in ("changes-since", "membership-changes-since"):
        by_value = _ids(query(database_url, name, since=whole))
        assert _ids(text_query(database_url, name, since=whole.isoformat())) == by_value, name
    day = since.date().isoformat()  # a date alone: from midnight on
    assert set(_ids(text_query(database_url, "changes-since", since=day))) >= set(expected_changes)
    for text_on_date in (on_date.isoformat(), on_date.isoformat() + "Z"):
        found = text_query(
            database_url, "members-on-date", group_id=group["_id"], on_date=text_on_date
        )
        assert _ids(found) == expected_on_date, text_on_date


def text_query(database_url, name: str, **params) -> list[dict]:
    """A recipe with every parameter bound as the string it is, no type given."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(RECIPES[name]), params).mappings()
            return [dict(row) for row in rows]
    finally:
        engine.dispose()


def _ids(rows: list[dict]) -> list[tuple]:
    return [tuple(str(value) for key, value in row.items() if key.endswith("_id")) for row in rows]
