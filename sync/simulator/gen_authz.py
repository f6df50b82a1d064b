"""Generated extension document: groups, roles and permissions with real-world damage.

Real stored documents accumulate leftovers the extension never cleans up: members that were
deleted from Auth0, duplicate member entries, nesting cycles, references to deleted groups, roles
and permissions. A sync must survive all of them, so the generator always puts them in (as long as
there are enough groups and roles to hold them), at fixed positions that tests can find.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

Json = dict[str, Any]

ORPHAN_MEMBER = "auth0|deleted-user-0001"
ORPHAN_ROLE_USER = "auth0|deleted-role-user"
DESCRIPTION_500 = (
    "Équipe plateforme 🚀: déploiements, astreinte et outils internes. 日本語の説明も少し。 "
    "Contact: #platform-oncall 🛠️ — "
)
NAME_50 = "Équipe d'intégration continue — Zürich & München 🚀 Ops"

DEPARTMENTS = (
    "Engineering", "Sales", "Finance", "Support", "Marketing", "Operations", "R&D", "Legal",
    "People", "Security", "Data", "Design", "Produkt", "Ventes", "販売", "Facilities",
)  # fmt: skip
REGIONS = ("EMEA", "AMER", "APAC", "Zürich", "São Paulo", "東京", "Global")
VERBS = ("read", "create", "update", "delete", "approve", "export")
NOUNS = ("invoices", "reports", "customers", "orders", "payroll", "tickets", "documents")
ROLE_NAMES = (
    "Administrator", "Invoice Approver", "Auditor", "Support Agent", "Lecteur", "Éditeur",
    "Gestionnaire de paie", "閲覧者", "Sales Manager", "Read-only",
)  # fmt: skip

# Fixed positions of the awkward groups (when the tenant has that many groups).
CYCLE = (0, 1, 2)  # A nests B, B nests C, C nests A
CHAIN = (3, 4, 5)  # top nests middle nests bottom, no loop
DANGLING_NESTED = 6  # nests group 7 and a group that was deleted
DANGLING_ROLE = 7  # has an existing role and a deleted one
EMPTY = 8  # no members, no nested, no roles
LONG_DESCRIPTION = 9  # description of exactly 500 characters
LONG_NAME = 10  # name of exactly 50 characters
EVERYONE = 11  # the big group: orphan member, duplicate entry, every special user


def _guid(rnd: random.Random) -> str:
    """A GUID drawn from the seeded generator, so ids are stable across runs."""
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def _applications(rnd: random.Random) -> list[tuple[str, str]]:
    """(applicationType, applicationId) pairs roles and permissions belong to."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    clients = ["".join(rnd.choice(alphabet) for _ in range(32)) for _ in range(2)]
    return [("client", clients[0]), ("client", clients[1]), ("resource_server", "urn:invoices")]


def _permissions(rnd: random.Random, count: int, apps: list[tuple[str, str]]) -> list[Json]:
    result = []
    for index in range(count):
        verb, noun = VERBS[index % len(VERBS)], NOUNS[(index // len(VERBS)) % len(NOUNS)]
        cycle = index // (len(VERBS) * len(NOUNS))
        name = f"{verb}:{noun}" + (f"-{cycle}" if cycle else "")
        app_type, app_id = apps[index % len(apps)]
        description = f"Allows to {verb} {noun}" if index % 5 else f"Darf {noun} prüfen ✅"
        result.append(
            {
                "_id": _guid(rnd),
                "name": name,
                "description": description,
                "applicationType": app_type,
                "applicationId": app_id,
            }
        )
    return result


def _roles(
    rnd: random.Random, count: int, apps: list[tuple[str, str]], perms: list[Json], users: list[str]
) -> list[Json]:
    result = []
    for index in range(count):
        app_type, app_id = apps[index % len(apps)]
        own = [p["_id"] for p in perms if p["applicationId"] == app_id]
        role: Json = {
            "_id": _guid(rnd),
            "name": ROLE_NAMES[index % len(ROLE_NAMES)] + (f" {index}" if index >= 10 else ""),
            "description": f"Role {index} — generated for tests",
            "applicationType": app_type,
            "applicationId": app_id,
            "permissions": rnd.sample(own, min(len(own), rnd.randint(1, 5))),
        }
        if index != 2 and rnd.random() < 0.7:  # role 2 never has a users list
            role["users"] = rnd.sample(users, min(len(users), rnd.randint(0, 6)))
        result.append(role)
    if count > 0:
        role = result[0]
        role["users"] = [*role.get("users", []), ORPHAN_ROLE_USER]
        if users:
            role["users"] += [users[0], users[0]]  # a duplicate entry
    if count > 1:
        result[1]["permissions"].append(_guid(rnd))  # a permission deleted since
    return result


def _groups(rnd: random.Random, count: int, roles: list[Json]) -> list[Json]:
    result = []
    for index in range(count):
        name = f"{DEPARTMENTS[index % len(DEPARTMENTS)]} {REGIONS[(index // 2) % len(REGIONS)]}"
        group: Json = {
            "_id": _guid(rnd),
            "name": f"{name} {index}",
            "description": f"Members of {name}",
            "members": [],
        }
        if rnd.random() < 0.6:
            group["nested"] = []
        if rnd.random() < 0.6 and roles:
            group["roles"] = [r["_id"] for r in rnd.sample(roles, min(len(roles), 2))]
        group["mappings"] = []
        result.append(group)
    _shape_groups(rnd, result, roles)
    return result


def _shape_groups(rnd: random.Random, groups: list[Json], roles: list[Json]) -> None:
    """Put the awkward structures at their fixed positions (each only when it fits)."""
    ids = [g["_id"] for g in groups]
    if len(groups) > max(CYCLE):
        for parent, child in zip(CYCLE, CYCLE[1:] + CYCLE[:1], strict=True):
            groups[parent]["nested"] = [ids[child]]
            groups[parent]["name"] = f"Cycle {'ABC'[parent]}"
    if len(groups) > max(CHAIN):
        groups[CHAIN[0]]["nested"] = [ids[CHAIN[1]]]
        groups[CHAIN[1]]["nested"] = [ids[CHAIN[2]]]
        groups[CHAIN[2]].pop("nested", None)
        groups[CHAIN[0]]["mappings"] = [
            {"_id": _guid(rnd), "groupName": "Chain-Top-AD", "connectionName": "Corp Dir"},
            {"_id": _guid(rnd), "groupName": "Ops Ünïcode", "connectionName": "contoso-azure-ad"},
        ]
    if len(groups) > DANGLING_ROLE:
        groups[DANGLING_NESTED]["nested"] = [ids[DANGLING_ROLE], _guid(rnd)]
        groups[DANGLING_ROLE]["roles"] = [r["_id"] for r in roles[:1]] + [_guid(rnd)]
    if len(groups) > EMPTY:
        for key in ("nested", "roles"):
            groups[EMPTY].pop(key, None)
        groups[EMPTY]["name"] = "Empty group"
    if len(groups) > LONG_DESCRIPTION:
        text = DESCRIPTION_500 * (500 // len(DESCRIPTION_500) + 1)
        groups[LONG_DESCRIPTION]["description"] = text[:499] + "🎉"
    if len(groups) > LONG_NAME:
        groups[LONG_NAME]["name"] = NAME_50[:50]
    if len(groups) > EVERYONE:
        groups[EVERYONE]["name"] = "Everyone 🌍"
        groups[EVERYONE]["mappings"] = [
            {"_id": _guid(rnd), "groupName": "All Staff", "connectionName": "google-oauth2"}
        ]
    for index in range(EVERYONE + 1, len(groups) - 1):  # some plain, acyclic nesting too
        if rnd.random() < 0.25:
            groups[index]["nested"] = [ids[rnd.randrange(index + 1, len(groups))]]
    if groups:
        groups[-1].pop("description", None)  # descriptions are optional


def _fill_members(
    rnd: random.Random, groups: list[Json], users: list[str], memberships: int
) -> None:
    """Spread ``memberships`` member entries over the groups, leaving some users in no group."""
    everyone = groups[EVERYONE] if len(groups) > EVERYONE else groups[0]
    total = 0
    if users:
        specials = [u for u in users[:7] if "|" in u]
        everyone["members"] += [*specials, ORPHAN_MEMBER, specials[0]]  # orphan and a duplicate
        if len(groups) > max(CYCLE):  # (a conditional expression after += would still index)
            groups[CYCLE[-1]]["members"] += specials[:2]
        total = sum(len(g["members"]) for g in groups)
    targets = [i for i in range(len(groups)) if i != EMPTY or len(groups) <= EMPTY]
    weights = [6.0 if groups[i] is everyone else rnd.uniform(0.3, 2.0) for i in targets]
    loners = max(1, len(users) // 20) if len(users) > 20 else 0
    pool = users[7:][:-loners] if loners else users[7:]
    seen = {(i, u) for i, g in enumerate(groups) for u in g["members"]}
    capacity = len(seen) + len(pool) * len(targets)
    attempts = 0
    while pool and total < min(memberships, capacity) and attempts < 50 * memberships + 100:
        picks = rnd.choices(targets, weights, k=memberships - total)
        for group_index in picks:
            attempts += 1
            user_id = pool[rnd.randrange(len(pool))]
            if (group_index, user_id) not in seen:
                seen.add((group_index, user_id))
                groups[group_index]["members"].append(user_id)
                total += 1


def generate_authz(
    users: list[str],
    *,
    groups: int = 30,
    memberships: int = 600,
    roles: int = 10,
    permissions: int = 25,
    seed: int = 0,
) -> tuple[list[Json], list[Json], list[Json]]:
    """Groups, roles and permissions for these user ids (in API shape)."""
    rnd = random.Random(f"authz-sync-authz-{seed}")
    apps = _applications(rnd)
    perms = _permissions(rnd, permissions, apps)
    role_list = _roles(rnd, roles, apps, perms, users)
    group_list = _groups(rnd, groups, role_list)
    if group_list:
        _fill_members(rnd, group_list, users, memberships)
    return group_list, role_list, perms
