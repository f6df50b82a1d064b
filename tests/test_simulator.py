"""The API simulator, over a real socket: it must behave like Auth0 and the Authorization
Extension (as described in the API reference), or tests of the sync prove nothing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote

import httpx
import pytest

from sync.model import SYNCED_TABLES
from sync.simulator import Simulator, Tenant, generate_tenant, ground_truth
from sync.simulator.truth import truth_as_json

TOKEN_BODY = {
    "grant_type": "client_credentials",
    "client_id": "authz-sync-demo",
    "client_secret": "demo-secret",
    "audience": "urn:auth0-authz-api",
}
CAP_BODY = {
    "statusCode": 400,
    "error": "Bad Request",
    "message": "You can only page through the first 1000 records. See "
    "https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation",
}
PLACEHOLDER_NAME = "<Error: ManagementApiError>"
ORPHAN_MEMBER = "auth0|deleted-user-0001"
MISSING_GUID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    """The default tenant, shared read-only by the tests that do not mutate it."""
    return generate_tenant()


@pytest.fixture(scope="module")
def big_tenant() -> Tenant:
    return generate_tenant(users=1500, groups=20, memberships=2000)


@pytest.fixture
def sim(tenant: Tenant) -> Iterator[Simulator]:
    with Simulator(tenant) as running:
        yield running


def api(sim: Simulator, timeout: float = 5.0) -> httpx.Client:
    """A client authenticated through the token endpoint, like the sync would be."""
    token = httpx.post(sim.url + "/oauth/token", json=TOKEN_BODY, timeout=timeout)
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return httpx.Client(base_url=sim.api_url, headers=headers, timeout=timeout)


def by_name(tenant: Tenant, name: str) -> dict:
    return next(g for g in tenant.groups if g["name"] == name)


def all_users(client: httpx.Client, per_page: int = 100, **params: str) -> list[dict]:
    """Every page of /api/users for a query (which must have fewer than 1000 results)."""
    users: list[dict] = []
    page = 1
    while True:
        answer = client.get("/users", params={"per_page": per_page, "page": page, **params})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        users += body["users"]
        if len(users) >= body["total"] or not body["users"]:
            return users
        page += 1


# --- token endpoint ---------------------------------------------------------------------------


def test_token_endpoint_issues_bearer_tokens_json_and_form(sim: Simulator) -> None:
    answer = httpx.post(sim.url + "/oauth/token", json=TOKEN_BODY)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert set(body["scope"].split()) == {
        "read:users",
        "read:groups",
        "read:roles",
        "read:permissions",
        "read:configuration",
    }
    form = httpx.post(sim.url + "/oauth/token", data=TOKEN_BODY)
    assert form.status_code == 200
    assert form.json()["access_token"] != body["access_token"]
    assert sim.tokens_issued == 2


@pytest.mark.parametrize(
    "change", [{"client_secret": "wrong"}, {"client_id": "someone-else"}, {"client_secret": ""}]
)
def test_token_endpoint_rejects_bad_credentials(sim: Simulator, change: dict) -> None:
    answer = httpx.post(sim.url + "/oauth/token", json={**TOKEN_BODY, **change})
    assert answer.status_code == 401
    assert answer.json() == {"error": "access_denied", "error_description": "Unauthorized"}
    assert sim.tokens_issued == 0


def test_token_endpoint_rejects_other_audience(sim: Simulator) -> None:
    answer = httpx.post(sim.url + "/oauth/token", json={**TOKEN_BODY, "audience": "urn:other"})
    assert answer.status_code == 403
    assert answer.json() == {
        "error": "access_denied",
        "error_description": 'Client is not authorized to access "urn:other". You need to create '
        'a "client-grant" associated to this API. See: '
        "https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants",
    }


# --- authentication and scopes ----------------------------------------------------------------


def test_missing_bearer_is_401_even_with_api_key(sim: Simulator) -> None:
    answer = httpx.get(sim.api_url + "/users", headers={"x-api-key": "demo-secret"})
    assert answer.status_code == 401
    assert answer.json() == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Missing authentication",
    }
    assert answer.headers["WWW-Authenticate"] == 'Token error="token is null"'


def test_unknown_token_is_401_invalid_credentials(sim: Simulator) -> None:
    answer = httpx.get(sim.api_url + "/groups", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    assert answer.json() == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Invalid credentials",
        "attributes": {"error": "Invalid credentials"},
    }


def test_expired_tokens_are_rejected_and_new_ones_work(sim: Simulator) -> None:
    client = api(sim)
    assert client.get("/groups").status_code == 200
    sim.expire_tokens()
    assert client.get("/groups").json()["message"] == "Invalid credentials"
    assert api(sim).get("/groups").status_code == 200
    stale = sim.issue_token(lifetime=-1)
    answer = httpx.get(sim.api_url + "/roles", headers={"Authorization": f"Bearer {stale}"})
    assert answer.status_code == 401


def test_token_without_the_route_scope_is_403(tenant: Tenant) -> None:
    with Simulator(tenant, scopes=("read:users",)) as sim:
        client = api(sim)
        assert client.get("/users", params={"per_page": 1}).status_code == 200
        for path in ("/groups", "/roles", "/permissions", "/configuration/export"):
            answer = client.get(path)
            assert answer.status_code == 403, path
            assert answer.json() == {
                "statusCode": 403,
                "error": "Forbidden",
                "message": "Insufficient scope",
            }
        assert client.get("/users/auth0%7Cabc/groups").status_code == 403  # needs read:groups


def test_unknown_routes_are_404_before_auth(sim: Simulator) -> None:
    assert httpx.get(sim.api_url + "/nothing-here").status_code == 404
    assert httpx.get(sim.url + "/_sim/health").status_code == 200


# --- /api/users -------------------------------------------------------------------------------


def test_users_page_zero_is_page_one(sim: Simulator) -> None:
    client = api(sim)
    zero = client.get("/users", params={"page": 0, "per_page": 7}).json()
    one = client.get("/users", params={"page": 1, "per_page": 7}).json()
    two = client.get("/users", params={"page": 2, "per_page": 7}).json()
    assert zero == one
    assert one["total"] == 300 and one["length"] == 7 and one["limit"] == 7
    assert one["start"] == 0 and two["start"] == 7
    assert not {u["user_id"] for u in one["users"]} & {u["user_id"] for u in two["users"]}
    assert client.get("/users").json()["limit"] == 100  # default per_page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"per_page": 101}, '"per_page" must be less than or equal to 100'),
        ({"per_page": 0}, '"per_page" must be larger than or equal to 1'),
        ({"page": -1}, '"page" must be larger than or equal to 0'),
        ({"page": "x"}, '"page" must be a number'),
    ],
)
def test_users_paging_validation(sim: Simulator, params: dict, message: str) -> None:
    answer = api(sim).get("/users", params=params)
    assert answer.status_code == 400
    key = next(iter(params))
    assert answer.json() == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": message,
        "validation": {"source": "query", "keys": [key]},
    }


def test_users_search_stops_at_1000_results(big_tenant: Tenant) -> None:
    with Simulator(big_tenant) as sim:
        client = api(sim)
        tenth = client.get("/users", params={"per_page": 100, "page": 10})
        assert tenth.status_code == 200 and tenth.json()["total"] == 1500
        eleventh = client.get("/users", params={"per_page": 100, "page": 11})
        assert eleventh.status_code == 400
        assert eleventh.json() == CAP_BODY
        assert client.get("/users", params={"per_page": 50, "page": 20}).status_code == 200
        assert client.get("/users", params={"per_page": 50, "page": 21}).status_code == 400


def test_users_search_cap_can_be_lifted_for_the_benchmark(big_tenant: Tenant) -> None:
    with Simulator(big_tenant, search_cap=None) as sim:
        client = api(sim)
        users = all_users(client)
        assert len(users) == len({u["user_id"] for u in users}) == 1500
        with Simulator(big_tenant) as capped:  # the same order as Auth0's first 1000
            auth0 = api(capped)
            first = [auth0.get("/users", params={"page": p}).json() for p in range(1, 11)]
            assert users[:1000] == [user for page in first for user in page["users"]]
        past = client.get("/users", params={"per_page": 100, "page": 16}).json()
        assert past["users"] == [] and past["total"] == 1500
    with Simulator(big_tenant, search_cap=500) as sim:
        assert api(sim).get("/users", params={"page": 6}).json()["message"] == CAP_BODY["message"]


def test_users_are_sorted_by_last_login_descending(sim: Simulator, tenant: Tenant) -> None:
    users = all_users(api(sim))
    assert len(users) == len({u["user_id"] for u in users}) == len(tenant.users)
    logged = [u for u in users if "last_login" in u]
    never = [u for u in users if "last_login" not in u]
    assert never and users[len(logged) :] == never  # never-logged-in users come last
    keys = [
        (-datetime.fromisoformat(u["last_login"][:-1]).timestamp(), u["user_id"]) for u in logged
    ]
    assert keys == sorted(keys)  # newest first, ties broken by user_id
    assert [u["user_id"] for u in never] == sorted(u["user_id"] for u in never)
    assert "created_at" not in users[0]  # the extension does not ask Auth0 for it


def test_login_moves_a_user_to_the_front() -> None:
    tenant = generate_tenant(users=60)
    with Simulator(tenant) as sim:
        client = api(sim)
        last = client.get("/users", params={"per_page": 100}).json()["users"][-1]["user_id"]
        tenant.login(last)
        assert client.get("/users", params={"per_page": 1}).json()["users"][0]["user_id"] == last


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_created_at_ranges_partition_the_users(big_tenant: Tenant, indexed: bool) -> None:
    big_tenant.created_index = None
    if indexed:  # what the benchmark's big tenants use: the answers must be the same
        big_tenant.index_created_at()
    instants = sorted(big_tenant.created_at.values())
    pivot = instants[len(instants) // 2]  # an existing instant: inclusivity matters
    with Simulator(big_tenant) as sim:
        client = api(sim)
        below = all_users(client, q=f"created_at:[* TO {pivot}}}")
        above = all_users(client, q=f"created_at:[{pivot} TO *]")
        ids_below, ids_above = {u["user_id"] for u in below}, {u["user_id"] for u in above}
        assert not ids_below & ids_above
        assert ids_below | ids_above == set(big_tenant.users)
        exact = client.get("/users", params={"q": f"created_at:[{pivot} TO {pivot}]"}).json()
        assert exact["total"] == instants.count(pivot)
        assert (
            client.get("/users", params={"q": f"created_at:{{{pivot} TO {pivot}]"}).json()["total"]
            == 0
        )
        whole = client.get("/users", params={"q": "created_at:[* TO *]"}).json()
        assert whole["total"] == 1500  # totals are not capped at 1000
        year = client.get("/users", params={"q": "created_at:[2022-01-01 TO 2023-01-01}"}).json()
        expected = sum(1 for v in instants if "2022-01-01" <= v < "2023-01-01")
        assert year["total"] == expected > 0
        iso = "created_at:{2022-01-01T00:00:00.000Z TO 2023-01-01T00:00:00.000+00:00}"
        assert client.get("/users", params={"q": iso}).json()["total"] == expected
    big_tenant.created_index = None  # the module's other tests scan


@pytest.mark.parametrize(
    "query", ["email:someone@example.com", "created_at:[2024-01-01 TO]", "created_at:[x TO *]"]
)
def test_unsupported_queries_are_400(sim: Simulator, query: str) -> None:
    answer = api(sim).get("/users", params={"q": query})
    assert answer.status_code == 400
    assert answer.json()["error"] == "Bad Request"


def test_identical_created_at_block_cannot_be_sliced() -> None:
    tenant = generate_tenant(users=1100, same_created_at_block=950)
    shared, count = Counter(tenant.created_at.values()).most_common(1)[0]
    assert count == 950
    with Simulator(tenant) as sim:
        exact = api(sim).get("/users", params={"q": f"created_at:[{shared} TO {shared}]"})
        assert exact.json()["total"] == 950


# --- users by id ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id",
    ["auth0|abc", "auth0|ABC", "samlp|Corp Dir|jane@example.com", "waad|ünïcode user"],
)
def test_user_ids_are_url_decoded(sim: Simulator, tenant: Tenant, user_id: str) -> None:
    answer = api(sim).get("/users/" + quote(user_id, safe=""))
    assert answer.status_code == 200
    assert answer.json() == tenant.users[user_id]


def test_unknown_user_is_404(sim: Simulator) -> None:
    assert api(sim).get("/users/auth0%7Cnobody").status_code == 404


def test_calculate_follows_nesting_upwards(sim: Simulator, tenant: Tenant) -> None:
    client = api(sim)
    cycle = {by_name(tenant, n)["_id"] for n in ("Cycle A", "Cycle B", "Cycle C")}
    everyone = by_name(tenant, "Everyone 🌍")["_id"]
    direct = {g["_id"] for g in client.get("/users/auth0%7Cabc/groups").json()}
    assert direct == {everyone, by_name(tenant, "Cycle C")["_id"]}
    calculated = client.get("/users/auth0%7Cabc/groups/calculate").json()
    assert {g["_id"] for g in calculated} == direct | cycle
    assert len(calculated) == len({g["_id"] for g in calculated})
    assert set(calculated[0]) <= {"_id", "name", "description"}

    top, middle, bottom = tenant.groups[3], tenant.groups[4], tenant.groups[5]
    member = next(u for u in bottom["members"] if u in tenant.users)
    ids = {g["_id"] for g in client.get(f"/users/{quote(member, safe='')}/groups/calculate").json()}
    assert {top["_id"], middle["_id"], bottom["_id"]} <= ids

    role_ids = {x["_id"] for x in tenant.roles}
    expected = {x for g in tenant.groups if g["_id"] in direct | cycle for x in g.get("roles", [])}
    expected = (expected & role_ids) | {
        x["_id"] for x in tenant.roles if "auth0|abc" in x.get("users", [])
    }
    roles = client.get("/users/auth0%7Cabc/roles/calculate").json()
    assert {x["_id"] for x in roles} == expected
    direct_roles = client.get("/users/auth0%7Cabc/roles").json()
    assert {x["_id"] for x in direct_roles} == {
        x["_id"] for x in tenant.roles if "auth0|abc" in x.get("users", [])
    }


# --- groups, roles, permissions ---------------------------------------------------------------


def test_lists_return_everything(sim: Simulator, tenant: Tenant) -> None:
    client = api(sim)
    groups = client.get("/groups").json()
    assert groups["total"] == len(groups["groups"]) == len(tenant.groups)
    assert all("members" in g and "mappings" in g for g in groups["groups"])
    assert any("nested" not in g for g in groups["groups"])
    assert client.get("/roles").json()["roles"] == tenant.roles
    assert client.get("/permissions").json()["total"] == len(tenant.permissions)
    export = client.get("/configuration/export").json()
    assert {"groups", "roles", "permissions"} <= set(export)
    assert len(export["groups"]) == len(tenant.groups)


def test_group_subresources_skip_dangling_references(sim: Simulator, tenant: Tenant) -> None:
    client = api(sim)
    dangling_nested, dangling_role = tenant.groups[6], tenant.groups[7]
    nested = client.get(f"/groups/{dangling_nested['_id']}/nested").json()
    assert [g["_id"] for g in nested] == [dangling_role["_id"]]
    roles = client.get(f"/groups/{dangling_role['_id']}/roles").json()
    assert [x["_id"] for x in roles] == [tenant.roles[0]["_id"]]
    mappings = client.get(f"/groups/{tenant.groups[3]['_id']}/mappings").json()
    assert mappings == tenant.groups[3]["mappings"] and mappings[0]["connectionName"]
    one = client.get(f"/groups/{tenant.groups[0]['_id']}").json()
    assert one == {k: tenant.groups[0][k] for k in ("_id", "name", "description")}


@pytest.mark.parametrize("collection", ["groups", "roles", "permissions"])
def test_ids_must_be_guids_and_exist(sim: Simulator, collection: str) -> None:
    client = api(sim)
    bad = client.get(f"/{collection}/not-a-guid")
    assert bad.status_code == 400
    assert bad.json()["validation"] == {"source": "params", "keys": ["id"]}
    missing = client.get(f"/{collection}/{MISSING_GUID}")
    assert missing.status_code == 404
    assert missing.json() == {
        "statusCode": 404,
        "error": "NotFoundError",
        "message": f"The record {MISSING_GUID} in {collection} does not exist.",
    }


def test_members_pages_of_25_with_orphan_placeholders(sim: Simulator, tenant: Tenant) -> None:
    client = api(sim)
    everyone = by_name(tenant, "Everyone 🌍")
    path = f"/groups/{everyone['_id']}/members"
    too_many = client.get(path, params={"per_page": 26})
    assert too_many.status_code == 400
    assert too_many.json()["message"] == '"per_page" must be less than or equal to 25'
    first = client.get(path).json()
    assert len(first["users"]) == 25
    assert client.get(path, params={"page": 0}).json() == first
    members: list[dict] = []
    page = 1
    while len(members) < first["total"]:
        members += client.get(path, params={"page": page}).json()["users"]
        page += 1
    assert first["total"] == len(everyone["members"]) > 25  # duplicates counted
    assert len(members) == first["total"]
    assert Counter(m["user_id"] for m in members)["auth0|abc"] == 2
    orphan = next(m for m in members if m["user_id"] == ORPHAN_MEMBER)
    assert orphan == {
        "user_id": ORPHAN_MEMBER,
        "name": PLACEHOLDER_NAME,
        "email": ORPHAN_MEMBER,
        "identities": [{"connection": "N/A"}],
    }


def test_nested_members_terminate_on_cycles(sim: Simulator, tenant: Tenant) -> None:
    client = api(sim)
    cycle = [by_name(tenant, n) for n in ("Cycle A", "Cycle B", "Cycle C")]
    path = f"/groups/{cycle[0]['_id']}/members/nested"
    first = client.get(path, params={"per_page": 25}).json()
    assert first["total"] == sum(len(g["members"]) for g in cycle)
    entries: list[dict] = []
    page = 1
    while len(entries) < first["total"]:
        entries += client.get(path, params={"page": page}).json()["nested"]
        page += 1
    assert {e["group"]["_id"] for e in entries} == {g["_id"] for g in cycle}
    assert {"user", "group"} == set(entries[0])


# --- knobs and faults -------------------------------------------------------------------------


def test_status_fault_fires_after_and_times(sim: Simulator) -> None:
    client = api(sim)
    fault = sim.add_fault(r"^/api/groups$", "status", status=503, after=1, times=2)
    assert client.get("/groups").status_code == 200
    answers = [client.get("/groups") for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].json()["error"] == "Service Unavailable"
    assert (fault.seen, fault.fired) == (4, 2)
    assert client.get("/roles").status_code == 200  # other paths untouched


def test_drop_and_truncate_faults_break_the_transport(sim: Simulator) -> None:
    client = api(sim)
    sim.add_fault(r"^/api/roles$", "drop")
    with pytest.raises(httpx.TransportError):
        client.get("/roles")
    sim.add_fault(r"^/api/permissions$", "truncate")
    with pytest.raises(httpx.TransportError):
        client.get("/permissions")
    assert client.get("/roles").status_code == 200
    assert client.get("/permissions").status_code == 200


def test_invalid_json_and_delay_faults(sim: Simulator) -> None:
    client = api(sim, timeout=0.3)
    sim.add_fault(r"^/api/groups$", "invalid_json")
    garbled = client.get("/groups")
    assert garbled.status_code == 200
    with pytest.raises(ValueError):
        garbled.json()
    sim.add_fault(r"^/api/roles$", "delay", delay=2)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/roles")
    assert client.get("/roles").status_code == 200


def test_rate_limit_fault_headers(sim: Simulator) -> None:
    client = api(sim)
    sim.add_fault(r"^/api/groups$", "rate_limit", retry_after=3)
    sim.add_fault(r"^/api/roles$", "rate_limit", retry_after_header=False)
    limited = client.get("/groups")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert int(limited.headers["X-RateLimit-Reset"]) >= int(time.time()) + 2
    bare = client.get("/roles")
    assert bare.status_code == 429
    assert "Retry-After" not in bare.headers and "X-RateLimit-Reset" in bare.headers
    assert sim.rate_limited == 2


@pytest.mark.parametrize("retry_after", [True, False])
def test_token_bucket_rate_limit(tenant: Tenant, retry_after: bool) -> None:
    with Simulator(
        tenant, rate_limit=0.5, rate_limit_burst=3, retry_after_header=retry_after
    ) as sim:
        client = api(sim)
        ok = [client.get("/roles") for _ in range(3)]
        assert all(a.status_code == 200 for a in ok)
        assert [a.headers["X-RateLimit-Remaining"] for a in ok] == ["2", "1", "0"]
        assert all(a.headers["X-RateLimit-Limit"] == "3" for a in ok)
        limited = client.get("/roles")
        assert limited.status_code == 429
        assert limited.json() == {
            "statusCode": 429,
            "error": "Too Many Requests",
            "message": "Global limit has been reached",
        }
        assert int(limited.headers["X-RateLimit-Reset"]) > time.time()
        assert ("Retry-After" in limited.headers) is retry_after
        assert sim.rate_limited == 1


def test_latency_is_added(tenant: Tenant) -> None:
    with Simulator(tenant, latency=0.2) as sim:
        client = api(sim)
        started = time.monotonic()
        client.get("/permissions")
        assert time.monotonic() - started >= 0.2


def test_login_during_a_sync_duplicates_and_skips() -> None:
    """The paging quirk the sync must survive: a login between two pages shifts the order."""
    tenant = generate_tenant(users=60)
    with Simulator(tenant) as sim:
        client = api(sim)
        before = [
            u["user_id"] for u in client.get("/users", params={"per_page": 20}).json()["users"]
        ]
        victim = client.get("/users", params={"per_page": 20, "page": 3}).json()["users"][0]
        calls: list[str] = []

        def log_in_on_page_two(request) -> None:
            calls.append(request.path)
            if request.query.get("page") == "2":
                tenant.login(victim["user_id"])

        sim.before_response = log_in_on_page_two
        page1 = client.get("/users", params={"per_page": 20, "page": 1}).json()["users"]
        page2 = client.get("/users", params={"per_page": 20, "page": 2}).json()["users"]
        page3 = client.get("/users", params={"per_page": 20, "page": 3}).json()["users"]
        seen = [u["user_id"] for u in page1 + page2 + page3]
        assert [u["user_id"] for u in page1] == before
        assert len(seen) - len(set(seen)) == 1  # one user came twice...
        assert victim["user_id"] not in seen  # ...and the one who logged in was skipped
        assert calls == ["/api/users"] * 3


def test_requests_are_recorded_without_secrets(sim: Simulator) -> None:
    client = api(sim)
    client.get("/users", params={"per_page": 5})
    client.get("/users/auth0%7Cabc")
    paths = [(r.method, r.path, r.status) for r in sim.requests]
    assert paths == [
        ("POST", "/oauth/token", 200),
        ("GET", "/api/users", 200),
        ("GET", "/api/users/auth0%7Cabc", 200),
    ]
    assert sim.requests[1].query == {"per_page": "5"}
    assert sim.requests[1].token_fingerprint == sim.requests[2].token_fingerprint
    token = client.headers["Authorization"].split()[1]
    assert token not in repr(sim.requests) and "demo-secret" not in repr(sim.requests)
    assert len(sim.api_requests(r"^/api/users$")) == 1


def test_truth_endpoint_serves_the_ground_truth(sim: Simulator, tenant: Tenant) -> None:
    served = httpx.get(sim.url + "/_sim/truth").json()
    assert served == truth_as_json(tenant)
    assert set(served) == set(SYNCED_TABLES)


# --- the generated tenant ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [50, 300])
def test_generated_tenant_contains_every_awkward_case(size: int) -> None:
    tenant = generate_tenant(users=size)
    users, groups, roles = tenant.users, tenant.groups, tenant.roles
    group_ids = {g["_id"] for g in groups}
    names = [u["name"] for u in users.values()]
    assert len(users) == size
    assert "Zoë Ångström 🚀" in names
    assert any("\u4e00" <= ch <= "\u9fff" for n in names for ch in n)  # CJK
    for special in ("auth0|abc", "google-oauth2|1234", "samlp|Corp Dir|jane@example.com"):
        assert special in users
    assert "waad|ünïcode user" in users
    assert {"auth0|abc", "auth0|ABC"} <= set(users)
    assert any(u["user_id"].lower() != u["user_id"] for u in users.values())
    assert any("last_login" not in u for u in users.values())
    assert any("multifactor" in u for u in users.values())
    assert any("multifactor" not in u for u in users.values())
    assert any("blocked" in u for u in users.values())
    assert any("blocked" not in u for u in users.values())
    assert any("email" not in u for u in users.values())
    assert all(u["last_login"].endswith("Z") and len(u["last_login"]) == 24
               for u in users.values() if "last_login" in u)  # fmt: skip
    # memberships: orphans, duplicates, users in no group, empty groups
    members = [m for g in groups for m in g["members"]]
    assert any(m not in users for m in members)
    assert any(len(g["members"]) != len(set(g["members"])) for g in groups)
    assert set(users) - set(members)
    assert any(not g["members"] for g in groups)
    # nesting: a three-group cycle, a loop-free chain, a dangling child
    nested = {g["_id"]: g.get("nested", []) for g in groups}
    a, b, c = (by_name(tenant, f"Cycle {x}")["_id"] for x in "ABC")
    assert nested[a] == [b] and nested[b] == [c] and nested[c] == [a]
    top, middle, bottom = groups[3]["_id"], groups[4]["_id"], groups[5]["_id"]
    assert nested[top] == [middle] and nested[middle] == [bottom] and not nested[bottom]
    assert all(g["_id"] not in g.get("nested", []) for g in groups)
    assert any(n not in group_ids for ns in nested.values() for n in ns)
    assert any("nested" not in g for g in groups) and any("roles" not in g for g in groups)
    # dangling roles and permissions, role orphans, absent users lists
    role_ids = {x["_id"] for x in roles}
    permission_ids = {p["_id"] for p in tenant.permissions}
    assert any(x not in role_ids for g in groups for x in g.get("roles", []))
    assert any(p not in permission_ids for x in roles for p in x["permissions"])
    assert any(u not in users for x in roles for u in x.get("users", []))
    assert any("users" not in x for x in roles)
    # sizes at the limits, mappings with connections
    assert any(len(g.get("description") or "") == 500 and "🎉" in g["description"] for g in groups)
    assert any(len(g["name"]) == 50 for g in groups)
    mappings = [m for g in groups for m in g["mappings"]]
    assert mappings and all(set(m) == {"_id", "groupName", "connectionName"} for m in mappings)
    # object shapes
    assert all(set(x) <= {"_id", "name", "description", "applicationType", "applicationId",
                          "permissions", "users"} for x in roles)  # fmt: skip
    assert {x["applicationType"] for x in roles} <= {"client", "resource_server"}
    assert all(len(x["_id"]) == 36 for x in [*groups, *roles, *tenant.permissions])


def test_created_at_has_bursts_but_no_unsliceable_instant() -> None:
    tenant = generate_tenant(users=3000)
    assert len(tenant.created_at) == 3000
    per_instant = Counter(tenant.created_at.values())
    assert max(per_instant.values()) < 900
    per_hour = Counter(v[:13] for v in tenant.created_at.values())
    assert max(per_hour.values()) >= 300  # a bulk import
    years = {v[:4] for v in tenant.created_at.values()}
    assert len(years) >= 3


def test_generation_is_deterministic_and_sized() -> None:
    # How fast it generates is the benchmark's to print (bench/run.py), not a timed test's.
    assert generate_tenant(seed=1) == generate_tenant(seed=1)
    assert generate_tenant(seed=1) != generate_tenant(seed=2)
    huge = generate_tenant(users=100_000, groups=200, memberships=150_000)
    assert len(huge.users) == 100_000
    assert sum(len(g["members"]) for g in huge.groups) == 150_000


# --- ground truth -----------------------------------------------------------------------------


def test_ground_truth_follows_the_conventions(tenant: Tenant) -> None:
    truth = ground_truth(tenant)
    assert list(truth) == list(SYNCED_TABLES)
    assert all("changed_at" not in row for rows in truth.values() for row in rows)
    users = {row["user_id"]: row for row in truth["authz_users"]}
    assert len(users) == len(tenant.users)
    abc = users["auth0|abc"]
    assert abc["blocked"] is True and abc["multifactor"] == ["guardian"]
    assert abc["connection"] == "Username-Password-Authentication"
    assert isinstance(abc["last_login"], datetime) and abc["last_login"].tzinfo is None
    assert users["auth0|ABC"]["last_login"] is None and users["auth0|ABC"]["logins_count"] is None
    assert users["google-oauth2|1234"]["last_login"] == datetime(2024, 5, 1, 10, 0, 0, 123000)

    members = truth["authz_group_members"]
    pairs = [(m["group_id"], m["user_id"]) for m in members]
    assert len(pairs) == len(set(pairs)) == sum(len(set(g["members"])) for g in tenant.groups)
    assert all(m["is_orphan"] == (m["user_id"] not in tenant.users) for m in members)
    assert any(m["is_orphan"] for m in members)
    role_users = truth["authz_role_users"]
    assert any(r["is_orphan"] for r in role_users)
    assert len(role_users) == len({(r["role_id"], r["user_id"]) for r in role_users})

    group_ids = {g["_id"] for g in tenant.groups}
    role_ids = {r["_id"] for r in tenant.roles}
    permission_ids = {p["_id"] for p in tenant.permissions}
    assert all(n["child_group_id"] in group_ids for n in truth["authz_group_nesting"])
    assert all(g["role_id"] in role_ids for g in truth["authz_group_roles"])
    assert all(p["permission_id"] in permission_ids for p in truth["authz_role_permissions"])
    dangling = sum(1 for g in tenant.groups for n in g.get("nested", []) if n not in group_ids)
    total = sum(len(set(g.get("nested", []))) for g in tenant.groups)
    assert len(truth["authz_group_nesting"]) == total - dangling
    assert len(truth["authz_group_mappings"]) == sum(len(g["mappings"]) for g in tenant.groups)
    assert any(g["description"] is None for g in truth["authz_groups"])


def test_ground_truth_tracks_tenant_changes() -> None:
    tenant = generate_tenant(users=60)
    tenant.delete_user("auth0|ABC")
    truth = ground_truth(tenant)
    assert "auth0|ABC" not in {u["user_id"] for u in truth["authz_users"]}
    flagged = [m for m in truth["authz_group_members"] if m["user_id"] == "auth0|ABC"]
    assert flagged and all(m["is_orphan"] for m in flagged)


def test_a_failing_hook_answers_500_and_is_kept(sim: Simulator) -> None:
    client = api(sim)

    def broken(_request) -> None:
        raise RuntimeError("hook bug")

    sim.before_response = broken
    answer = client.get("/roles")
    assert answer.status_code == 500
    assert answer.json()["message"] == "An internal server error occurred"
    assert [str(e) for e in sim.errors] == ["hook bug"]
