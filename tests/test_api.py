"""The API client on httpx.MockTransport: retry schedule (no real sleeps), token reuse and
refresh, and which answers become which errors. The end-to-end tests cover the real socket."""

from __future__ import annotations

import json

import httpx
import pytest
from e2e import api_settings

from sync.config import RetrySettings, Settings
from sync.errors import ApiDataError, ApiError, AuthError
from sync.source.endpoints import scope_for, user_path
from sync.source.extension import ExtensionApi

SECRET = "the-client-secret"


def settings(**overrides) -> Settings:
    retry = {"max_attempts": 5, "initial_wait": 1.0, "max_wait": 8.0, "max_total_wait": 100.0}
    retry |= {k: overrides.pop(k) for k in list(overrides) if k in retry}
    return api_settings(secret=SECRET, retry=RetrySettings(**retry), **overrides)


class FakeTenant:
    """A token endpoint plus an API whose answers are scripted per request."""

    def __init__(self, api_answers=(), token_answers=(), expires_in=86400):
        self.api_answers = list(api_answers)
        self.token_answers = list(token_answers)
        self.expires_in = expires_in
        self.tokens_issued = 0
        self.api_calls: list[httpx.Request] = []
        self.auth_headers: list[str | None] = []  # as sent: httpx reuses the request on resend

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            if self.token_answers:
                return self.token_answers.pop(0)
            self.tokens_issued += 1
            scope = "read:users read:groups read:roles read:permissions"
            body = {"access_token": f"tok{self.tokens_issued}", "expires_in": self.expires_in}
            return httpx.Response(200, json=body | {"scope": scope, "token_type": "Bearer"})
        self.api_calls.append(request)
        self.auth_headers.append(request.headers.get("Authorization"))
        answer = self.api_answers.pop(0) if self.api_answers else httpx.Response(200, json={})
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(tenant: FakeTenant, sleeps: list[float], clock=None, **overrides) -> ExtensionApi:
    kwargs = {"clock": clock} if clock else {}
    return ExtensionApi(
        settings(**overrides),
        transport=httpx.MockTransport(tenant.handler),
        sleep=sleeps.append,
        rng=lambda: 0.5,
        **kwargs,
    )


def ok(payload) -> httpx.Response:
    return httpx.Response(200, json=payload)


def status(code: int, headers=None, **body) -> httpx.Response:
    return httpx.Response(code, json=body or {"statusCode": code}, headers=headers)


def test_backoff_schedule_is_exponential_with_equal_jitter_and_capped():
    tenant = FakeTenant([status(503)] * 4 + [ok({"groups": []})])
    sleeps: list[float] = []
    assert client(tenant, sleeps).list_all("groups") == []
    # ceiling = min(8, 1 * 2**(n-1)); wait = ceiling/2 + 0.5 * ceiling/2
    assert sleeps == [0.75, 1.5, 3.0, 6.0]


def test_retry_after_and_rate_limit_reset_are_honoured(monkeypatch):
    monkeypatch.setattr("sync.source.answers.time.time", lambda: 1_000_000.0)
    tenant = FakeTenant(
        [
            status(429, {"Retry-After": "7"}),
            status(429, {"X-RateLimit-Reset": "1000012", "X-RateLimit-Remaining": "0"}),
            ok({"roles": [{"_id": "r"}]}),
        ]
    )
    sleeps: list[float] = []
    api = client(tenant, sleeps)
    assert api.list_all("roles") == [{"_id": "r"}]
    assert sleeps == [7.0, 12.0]
    assert (api.stats.rate_limited, api.stats.retries, api.stats.requests) == (2, 2, 3)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.Response(200, text='{"groups": ['),
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(504, text=""),
    ],
    ids=["timeout", "connect", "dropped", "truncated-json", "502", "504"],
)
def test_transient_failures_are_retried(failure):
    tenant = FakeTenant([failure, ok({"groups": [1]})])
    sleeps: list[float] = []
    assert client(tenant, sleeps).list_all("groups") == [1]
    assert len(sleeps) == 1


@pytest.mark.parametrize("code", [400, 404, 409])
def test_other_client_errors_are_not_retried(code):
    tenant = FakeTenant([status(code, message="nope")])
    sleeps: list[float] = []
    with pytest.raises(ApiError, match=f"answered {code}: nope"):
        client(tenant, sleeps).list_all("groups")
    assert sleeps == [] and len(tenant.api_calls) == 1


def test_gives_up_after_max_attempts():
    tenant = FakeTenant([status(503)] * 10)
    sleeps: list[float] = []
    with pytest.raises(ApiError, match="gave up after 5 tries") as caught:
        client(tenant, sleeps).list_all("groups")
    assert caught.value.exit_code == 69
    assert len(tenant.api_calls) == 5 and len(sleeps) == 4


def test_gives_up_before_a_wait_past_the_total_limit():
    tenant = FakeTenant([status(429, {"Retry-After": "3600"})])
    sleeps: list[float] = []
    with pytest.raises(ApiError, match="rate limited"):
        client(tenant, sleeps, max_total_wait=600).list_all("groups")
    assert sleeps == []


def test_a_misconfigured_tenant_500_says_so():
    body = {"statusCode": 500, "error": "Internal Server Error"}
    body["message"] = "An internal server error occurred"
    tenant = FakeTenant([httpx.Response(500, json=body)] * 5)
    with pytest.raises(ApiError, match=r"token comes from another tenant.*check auth0.domain"):
        client(tenant, []).list_all("groups")


def test_token_is_fetched_once_and_reused():
    tenant = FakeTenant([ok({"groups": []})] * 3)
    api = client(tenant, [])
    for _ in range(3):
        api.list_all("groups")
    assert tenant.tokens_issued == 1
    assert tenant.auth_headers == ["Bearer tok1"] * 3
    assert all("x-api-key" not in r.headers for r in tenant.api_calls)


def test_token_is_refreshed_shortly_before_it_expires():
    now = [0.0]
    tenant = FakeTenant([ok({"groups": []})] * 3, expires_in=3600)
    api = client(tenant, [], clock=lambda: now[0])
    api.list_all("groups")
    now[0] = 3600 - 120  # still two minutes left: reused
    api.list_all("groups")
    now[0] = 3600 - 30  # inside the refresh margin: a new token
    api.list_all("groups")
    assert tenant.auth_headers == ["Bearer tok1", "Bearer tok1", "Bearer tok2"]


def test_a_401_gets_one_fresh_token_and_one_resend():
    invalid = status(401, message="Invalid credentials")
    tenant = FakeTenant([invalid, ok({"groups": ["g"]})])
    api = client(tenant, [])
    assert api.list_all("groups") == ["g"]
    assert tenant.auth_headers == ["Bearer tok1", "Bearer tok2"]


def test_a_401_right_after_a_refresh_is_fatal():
    invalid = status(401, message="Invalid credentials")
    tenant = FakeTenant([invalid, invalid])
    with pytest.raises(AuthError, match=r"refused a fresh token.*check auth0.domain") as caught:
        client(tenant, []).list_all("groups")
    assert caught.value.exit_code == 77
    assert tenant.tokens_issued == 2


def test_wrong_secret_and_unauthorized_client_say_what_to_do():
    denied = httpx.Response(
        401, json={"error": "access_denied", "error_description": "Unauthorized"}
    )
    tenant = FakeTenant(token_answers=[denied])
    with pytest.raises(AuthError, match=r"refused the client credentials.*client secret") as caught:
        client(tenant, []).list_all("groups")
    assert SECRET not in str(caught.value)

    forbidden = httpx.Response(403, json={"error": "access_denied", "error_description": "no"})
    tenant = FakeTenant(token_answers=[forbidden])
    with pytest.raises(AuthError, match=r"auth0-authorization-extension-api.*Machine to Machine"):
        client(tenant, []).list_all("groups")


def test_the_secret_goes_only_into_the_token_request_body():
    tenant = FakeTenant([ok({"groups": []})])
    seen = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return tenant.handler(request)

    api = ExtensionApi(settings(), transport=httpx.MockTransport(spy), sleep=lambda s: None)
    api.list_all("groups")
    token_request, api_request = seen
    assert json.loads(token_request.content)["client_secret"] == SECRET
    assert token_request.url.path == "/oauth/token" and SECRET not in str(token_request.url)
    assert SECRET not in str(api_request.headers) + str(api_request.url)


def test_insufficient_scope_names_the_scope_and_where_to_grant_it():
    tenant = FakeTenant([status(403, message="Insufficient scope")])
    with pytest.raises(AuthError, match=r"lacks the scope read:roles.*Machine to Machine"):
        client(tenant, []).list_all("roles")


def test_missing_scopes_are_caught_before_reading():
    grant = {"access_token": "t", "expires_in": 60, "scope": "read:users read:groups"}
    tenant = FakeTenant(token_answers=[httpx.Response(200, json=grant)])
    with pytest.raises(AuthError, match="read:roles, read:permissions"):
        client(tenant, []).check_scopes()


def test_answers_of_the_wrong_shape_are_data_errors():
    tenant = FakeTenant([ok({"group": []}), ok({"users": [], "total": "many"})])
    api = client(tenant, [])
    with pytest.raises(ApiDataError, match="without a 'groups' list"):
        api.list_all("groups")
    with pytest.raises(ApiDataError, match="'users' list and a 'total'"):
        api.users_page(1, 100, None)


def test_user_ids_are_url_encoded_in_paths_and_scopes_follow_the_route():
    tenant = FakeTenant([ok({})])
    api = client(tenant, [])
    api.get(user_path("samlp|Corp Dir|jane@example.com", "groups"))
    expected = b"/abc/api/users/samlp%7CCorp%20Dir%7Cjane%40example.com/groups"
    assert tenant.api_calls[0].url.raw_path == expected
    assert scope_for("/api/users/x/groups") == "read:groups"
    assert scope_for("/api/users") == "read:users"
    assert scope_for("/api/groups/x/roles") == "read:groups"


def test_pacing_spreads_requests_before_the_bucket_is_empty():
    now = [1_000_000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 3))
        now[0] += seconds

    def limited(remaining: int) -> httpx.Response:
        headers = {
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(now[0]) + 4),
        }
        return httpx.Response(200, json={"groups": []}, headers=headers)

    tenant = FakeTenant()
    tenant.api_answers = [limited(9), limited(3), limited(0), limited(8)]
    api = ExtensionApi(
        settings(),
        transport=httpx.MockTransport(tenant.handler),
        sleep=sleep,
        wall_clock=lambda: now[0],
    )
    for _ in range(4):
        api.list_all("groups")
    # 9 left: full speed; 3 left of 10: the 4 s to the reset shared by 4 requests; 0 left:
    # wait for the reset (3 s away by then).
    assert sleeps == [1.0, 3.0]
    assert api.pacer.waited == 4.0


def test_a_garbled_token_answer_is_retried():
    garbled = httpx.Response(200, text='{"access_token": "tok')
    tenant = FakeTenant([ok({"groups": []})], token_answers=[garbled])
    sleeps: list[float] = []
    assert client(tenant, sleeps).list_all("groups") == []
    assert len(sleeps) == 1 and tenant.tokens_issued == 1


@pytest.mark.parametrize(
    "body", [{"total": 0}, {"groups": {"a": 1}}, {"groups": None}, [{"groups": []}]]
)
def test_a_list_answer_without_the_list_is_refused_not_retried(body):
    tenant = FakeTenant([ok(body)])
    sleeps: list[float] = []
    with pytest.raises(ApiDataError, match="answered without a 'groups' list"):
        client(tenant, sleeps).list_all("groups")
    assert sleeps == []


def test_a_list_answer_that_is_not_utf8_is_retried():
    tenant = FakeTenant([httpx.Response(200, content=b'{"groups": ["\xff"]}'), ok({"groups": []})])
    sleeps: list[float] = []
    assert client(tenant, sleeps).list_all("groups") == []
    assert len(sleeps) == 1


def test_a_listing_digest_names_the_exact_answer():
    same = {"groups": [{"_id": "g", "members": ["auth0|1"]}], "total": 1}
    changed = {"groups": [{"_id": "g", "members": ["auth0|2"]}], "total": 1}
    tenant = FakeTenant([ok(same), ok(same), ok(changed)])
    api = client(tenant, [])
    first, again, other = (api.listing("groups") for _ in range(3))
    assert first.records == same["groups"]
    assert first.digest == again.digest != other.digest


def test_an_id_named_in_many_records_is_one_object():
    """Memory at 500k memberships: each repeat of a member id is the same str, not a copy."""
    body = {
        "groups": [
            {"_id": "a", "members": ["auth0|1", "auth0|2"], "nested": ["b"]},
            {"_id": "b", "members": ["auth0|2", 7], "nested": [], "description": "auth0|1"},
        ]
    }
    records = client(FakeTenant([ok(body)]), []).listing("groups").records
    assert records == body["groups"]  # the same values
    first, second = records
    assert first["members"][1] is second["members"][0]
    assert records._shared == {}  # the table that shared them went with the parse


def test_a_compressed_answer_that_cannot_be_decoded_is_retried():
    garbled = httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
    )
    tenant = FakeTenant([garbled, ok({"groups": []})])
    sleeps: list[float] = []
    assert client(tenant, sleeps).list_all("groups") == []
    assert len(sleeps) == 1
