"""The extension's read endpoints: pure functions from (tenant, path params, query) to a Reply.

Kept free of HTTP and auth so each answer's shape is easy to check against the API reference.
The server matches the route, checks the token and scope, then calls the handler while holding
its lock.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import responses as r
from .responses import Reply
from .search import first_in_order, matching_users, ordered
from .tenant import Json, Tenant

SEARCH_CAP = 1000
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

Query = dict[str, str]
Handler = Callable[[Tenant, list[str], Query], Reply]


class _Invalid(Exception):
    """A validation failure carrying the 400 reply hapi would send."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body["message"])
        self.reply = reply


def _int(query: Query, name: str, default: int, low: int, high: int | None = None) -> int:
    """A Joi-validated integer query parameter (same messages as Joi)."""
    text = query.get(name, "")
    if text == "":
        return default
    try:
        number = float(text)
    except ValueError:
        raise _Invalid(r.validation(f'"{name}" must be a number', name)) from None
    if not number.is_integer():
        raise _Invalid(r.validation(f'"{name}" must be an integer', name))
    if number < low:
        raise _Invalid(r.validation(f'"{name}" must be larger than or equal to {low}', name))
    if high is not None and number > high:
        raise _Invalid(r.validation(f'"{name}" must be less than or equal to {high}', name))
    return int(number)


def _paging(query: Query, max_per_page: int) -> tuple[int, int]:
    """(0-based page index, per_page): ``page`` is 1-based and page 0 means the first page."""
    per_page = _int(query, "per_page", max_per_page, 1, max_per_page)
    page = _int(query, "page", 0, 0)
    return max(page - 1, 0), per_page


def _by_id(items: list[Json], object_id: str, collection: str) -> Json:
    if not _GUID.match(object_id):
        raise _Invalid(r.validation('"id" must be a valid GUID', "id", source="params"))
    for item in items:
        if item.get("_id") == object_id:
            return item
    raise _Invalid(r.not_found_record(object_id, collection))


def _summary(group: Json) -> Json:
    """``{"_id","name","description"}``; keys absent in storage stay absent."""
    return {k: group[k] for k in ("_id", "name", "description") if k in group}


def _full_group(group: Json) -> Json:
    """A stored group as listed: ``members`` and ``mappings`` always present."""
    return {**group, "members": group.get("members", []), "mappings": group.get("mappings", [])}


def _role_summary(role: Json) -> Json:
    return {k: role[k] for k in ("_id", "name", "applicationId", "description") if k in role}


def _member(tenant: Tenant, user_id: str) -> Json:
    """A member as /members answers it: the Auth0 user, or the extension's error placeholder."""
    user = tenant.users.get(user_id)
    if user is not None:
        return user
    return {
        "user_id": user_id,
        "name": "<Error: ManagementApiError>",
        "email": user_id,
        "identities": [{"connection": "N/A"}],
    }


def _descendants(tenant: Tenant, root: Json) -> list[Json]:
    """The group and every group nested in it, transitively, each once (cycles terminate)."""
    by_id = {g["_id"]: g for g in tenant.groups}
    seen, order, todo = {root["_id"]}, [root], deque([root])
    while todo:
        for child_id in todo.popleft().get("nested") or []:
            child = by_id.get(child_id)
            if child is not None and child_id not in seen:
                seen.add(child_id)
                order.append(child)
                todo.append(child)
    return order


def _calculated_groups(tenant: Tenant, user_id: str) -> list[Json]:
    """Groups listing the user, then all their ancestors through ``nested``, each once."""
    parents: dict[str, list[Json]] = {}
    for group in tenant.groups:
        for child_id in group.get("nested") or []:
            parents.setdefault(child_id, []).append(group)
    direct = [g for g in tenant.groups if user_id in (g.get("members") or [])]
    seen, order, todo = {g["_id"] for g in direct}, list(direct), deque(direct)
    while todo:
        for parent in parents.get(todo.popleft()["_id"], []):
            if parent["_id"] not in seen:
                seen.add(parent["_id"])
                order.append(parent)
                todo.append(parent)
    return order


# --- handlers ---------------------------------------------------------------------------------


def list_users(tenant: Tenant, _: list[str], query: Query) -> Reply:
    index, per_page = _paging(query, 100)
    start = index * per_page
    if start + per_page > SEARCH_CAP:
        return r.page_cap()
    try:
        found = matching_users(tenant, query.get("q", ""), query.get("field", ""))
    except ValueError:
        return r.bad_query(query.get("q", ""))
    users = first_in_order(found, start + per_page)[start:]
    body = {"users": users, "start": start, "limit": per_page, "length": len(users)}
    return Reply(200, {**body, "total": len(found)})


def list_users_uncapped(
    tenant: Tenant, query: Query, cap: int | None, orders: dict[tuple[str, str], list[Json]]
) -> Reply:
    """/api/users with Auth0's 1000-result cap moved to `cap` (None: lifted), for a client that
    pages a whole tenant without slicing it (bench/compare.py's dlt pipeline). Not Auth0's
    behaviour. The order of a query is taken on its first page and kept in `orders` for its
    later pages, like a cursor, so a deep page costs no sort of the whole tenant; the users
    themselves are served as they are when asked."""
    index, per_page = _paging(query, 100)
    start = index * per_page
    if cap is not None and start + per_page > cap:
        return r.page_cap()
    key = (query.get("q", ""), query.get("field", ""))
    if start == 0 or key not in orders:
        try:
            orders[key] = ordered(matching_users(tenant, *key))
        except ValueError:
            return r.bad_query(key[0])
    users = orders[key][start : start + per_page]
    body = {"users": users, "start": start, "limit": per_page, "length": len(users)}
    return Reply(200, {**body, "total": len(orders[key])})


def get_user(tenant: Tenant, params: list[str], _: Query) -> Reply:
    user = tenant.users.get(params[0])
    return Reply(200, user) if user is not None else r.user_not_found()


def user_groups(tenant: Tenant, params: list[str], _: Query) -> Reply:
    return Reply(200, [_summary(g) for g in tenant.groups if params[0] in (g.get("members") or [])])


def user_groups_calculated(tenant: Tenant, params: list[str], _: Query) -> Reply:
    return Reply(200, [_summary(g) for g in _calculated_groups(tenant, params[0])])


def user_roles(tenant: Tenant, params: list[str], _: Query) -> Reply:
    roles = [x for x in tenant.roles if params[0] in (x.get("users") or [])]
    return Reply(200, [_role_summary(x) for x in roles])


def user_roles_calculated(tenant: Tenant, params: list[str], _: Query) -> Reply:
    wanted = {rid for g in _calculated_groups(tenant, params[0]) for rid in g.get("roles") or []}
    roles = [x for x in tenant.roles if x["_id"] in wanted or params[0] in (x.get("users") or [])]
    return Reply(200, [_role_summary(x) for x in roles])


def list_groups(tenant: Tenant, _: list[str], __: Query) -> Reply:
    return Reply(
        200, {"groups": [_full_group(g) for g in tenant.groups], "total": len(tenant.groups)}
    )


def get_group(tenant: Tenant, params: list[str], _: Query) -> Reply:
    return Reply(200, _summary(_by_id(tenant.groups, params[0], "groups")))


def group_members(tenant: Tenant, params: list[str], query: Query) -> Reply:
    index, per_page = _paging(query, 25)
    members = _by_id(tenant.groups, params[0], "groups").get("members") or []
    page = members[index * per_page : (index + 1) * per_page]
    return Reply(200, {"total": len(members), "users": [_member(tenant, u) for u in page]})


def group_members_nested(tenant: Tenant, params: list[str], query: Query) -> Reply:
    index, per_page = _paging(query, 25)
    root = _by_id(tenant.groups, params[0], "groups")
    entries = [(u, g) for g in _descendants(tenant, root) for u in g.get("members") or []]
    page = entries[index * per_page : (index + 1) * per_page]
    nested = [{"user": _member(tenant, u), "group": _summary(g)} for u, g in page]
    return Reply(200, {"total": len(entries), "nested": nested})


def group_nested(tenant: Tenant, params: list[str], _: Query) -> Reply:
    group = _by_id(tenant.groups, params[0], "groups")
    by_id = {g["_id"]: g for g in tenant.groups}
    children = [by_id[c] for c in dict.fromkeys(group.get("nested") or []) if c in by_id]
    return Reply(200, [_full_group(c) for c in children])


def group_roles(tenant: Tenant, params: list[str], _: Query) -> Reply:
    group = _by_id(tenant.groups, params[0], "groups")
    by_id = {x["_id"]: x for x in tenant.roles}
    return Reply(200, [by_id[x] for x in dict.fromkeys(group.get("roles") or []) if x in by_id])


def group_mappings(tenant: Tenant, params: list[str], _: Query) -> Reply:
    return Reply(200, _by_id(tenant.groups, params[0], "groups").get("mappings") or [])


def list_roles(tenant: Tenant, _: list[str], __: Query) -> Reply:
    return Reply(200, {"roles": tenant.roles, "total": len(tenant.roles)})


def get_role(tenant: Tenant, params: list[str], _: Query) -> Reply:
    return Reply(200, _summary(_by_id(tenant.roles, params[0], "roles")))


def list_permissions(tenant: Tenant, _: list[str], __: Query) -> Reply:
    return Reply(200, {"permissions": tenant.permissions, "total": len(tenant.permissions)})


def get_permission(tenant: Tenant, params: list[str], _: Query) -> Reply:
    return Reply(200, _by_id(tenant.permissions, params[0], "permissions"))


def export(tenant: Tenant, _: list[str], __: Query) -> Reply:
    document = {
        "groups": [_full_group(g) for g in tenant.groups],
        "roles": tenant.roles,
        "permissions": tenant.permissions,
        "applications": [],
        "rules": [],
    }
    return Reply(200, document)


# --- routing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A path template under /api ("*" = a parameter), the scope it needs, its handler."""

    template: tuple[str, ...]
    scope: str
    handler: Handler

    def match(self, segments: list[str]) -> list[str] | None:
        """The parameters when the (decoded) segments fit the template, else None."""
        if len(segments) != len(self.template):
            return None
        params = []
        for want, got in zip(self.template, segments, strict=True):
            if want == "*":
                params.append(got)
            elif want != got:
                return None
        return params


ROUTES: tuple[Route, ...] = (
    Route(("users",), "read:users", list_users),
    Route(("users", "*"), "read:users", get_user),
    Route(("users", "*", "groups"), "read:groups", user_groups),
    Route(("users", "*", "groups", "calculate"), "read:groups", user_groups_calculated),
    Route(("users", "*", "roles"), "read:roles", user_roles),
    Route(("users", "*", "roles", "calculate"), "read:roles", user_roles_calculated),
    Route(("groups",), "read:groups", list_groups),
    Route(("groups", "*"), "read:groups", get_group),
    Route(("groups", "*", "members"), "read:groups", group_members),
    Route(("groups", "*", "members", "nested"), "read:groups", group_members_nested),
    Route(("groups", "*", "nested"), "read:groups", group_nested),
    Route(("groups", "*", "roles"), "read:groups", group_roles),
    Route(("groups", "*", "mappings"), "read:groups", group_mappings),
    Route(("roles",), "read:roles", list_roles),
    Route(("roles", "*"), "read:roles", get_role),
    Route(("permissions",), "read:permissions", list_permissions),
    Route(("permissions", "*"), "read:permissions", get_permission),
    Route(("configuration", "export"), "read:configuration", export),
)


def find_route(segments: list[str]) -> tuple[Route, list[str]] | None:
    """The route for decoded path segments after /api, with its parameters."""
    for route in ROUTES:
        params = route.match(segments)
        if params is not None:
            return route, params
    return None


def answer(route: Route, tenant: Tenant, params: list[str], query: Query) -> Reply:
    """Run a handler, turning validation failures into their 400/404 replies."""
    try:
        return route.handler(tenant, params, query)
    except _Invalid as invalid:
        return invalid.reply
