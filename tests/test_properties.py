"""Property tests: whatever the API answers, parsing and paging give correct rows or the
documented data error — never a crash, never a partial write."""

from __future__ import annotations

import json

import httpx
import pytest
from e2e import api_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from sync.config import RetrySettings, Settings
from sync.errors import ApiDataError, ApiError, SyncError
from sync.runner.run import run_sync
from sync.source.extension import ExtensionApi
from sync.source.users import UserReader
from sync.sql import schema
from sync.transform import Snapshot, _checked_user_row, _plain_user_row, build_rows, user_row

GUIDS = st.sampled_from([f"{i:08d}-1111-4111-8111-111111111111" for i in range(6)] + ["not-a-guid"])
USER_IDS = st.sampled_from(["auth0|1", "auth0|2", "google-oauth2|3", "samlp|C D|é@x", ""])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def maybe(strategy):
    return st.one_of(strategy, JSON)


GROUP = st.fixed_dictionaries(
    {"_id": maybe(GUIDS), "name": maybe(st.text(min_size=1, max_size=60))},
    optional={
        "description": maybe(st.text(max_size=20)),
        "members": maybe(st.lists(maybe(USER_IDS), max_size=4)),
        "nested": maybe(st.lists(GUIDS, max_size=3)),
        "roles": maybe(st.lists(GUIDS, max_size=3)),
        "mappings": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "_id": maybe(st.text(max_size=5)),
                        "groupName": maybe(st.text(max_size=5)),
                        "connectionName": maybe(st.text(max_size=5)),
                    }
                ),
                max_size=2,
            )
        ),
    },
)
ROLE = st.fixed_dictionaries(
    {"_id": maybe(GUIDS), "name": maybe(st.text(min_size=1, max_size=10))},
    optional={
        "permissions": maybe(st.lists(GUIDS, max_size=3)),
        "users": maybe(st.lists(USER_IDS, max_size=3)),
        "applicationType": maybe(st.sampled_from(["client", "resource_server"])),
    },
)
USER = st.fixed_dictionaries(
    {"user_id": maybe(USER_IDS)},
    optional={
        "name": maybe(st.text(max_size=10)),
        "email": maybe(st.text(max_size=10)),
        "last_login": maybe(st.sampled_from(["2024-05-01T10:00:00.123Z", "2024-13-01", "x"])),
        "logins_count": maybe(st.integers(0, 10**6)),
        "blocked": maybe(st.booleans()),
        "identities": maybe(
            st.lists(st.fixed_dictionaries({"connection": maybe(st.text(max_size=5))}), max_size=2)
        ),
        "multifactor": maybe(st.lists(st.text(max_size=5), max_size=2)),
    },
)


TIMESTAMPS = st.sampled_from(
    ["2024-05-01T10:00:00.123Z", "2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00",
     "2024-05-01", "2024-05-01Z", "2024-05-01T10:00:00+01:00Z", "2024-13-01", "x", "", "Z"]
)  # fmt: skip
PLAIN_USER = st.fixed_dictionaries(
    {"user_id": maybe(USER_IDS | st.text(min_size=250, max_size=260))},
    optional={
        "name": maybe(st.sampled_from(["<Error: not found>", "Ann", ""]) | st.text(max_size=9)),
        "email": maybe(st.text(max_size=10) | st.text(min_size=319, max_size=322)),
        "picture": maybe(st.text(max_size=10)),
        "last_login": maybe(TIMESTAMPS),
        "logins_count": maybe(st.integers(-1, 10**20)),
        "blocked": maybe(st.booleans()),
        "identities": maybe(st.lists(maybe(st.fixed_dictionaries({"connection": JSON})))),
        "multifactor": maybe(st.lists(st.text(max_size=5), max_size=2)),
    },
)


@settings(max_examples=1000, deadline=None)
@given(user=PLAIN_USER | JSON)
def test_the_fast_path_of_user_rows_accepts_only_what_the_checks_accept(user):
    """user_row takes well-formed users without the checks: it must never accept a user the
    checks refuse, nor give another row."""
    fast = _plain_user_row(user)
    try:
        checked = _checked_user_row(user)
    except ApiDataError:
        assert fast is None
        return
    assert fast is None or fast == checked


@settings(max_examples=300, deadline=None)
@given(
    groups=st.lists(GROUP, max_size=4),
    roles=st.lists(ROLE, max_size=3),
    permissions=st.lists(
        maybe(st.fixed_dictionaries({"_id": GUIDS, "name": st.text(min_size=1, max_size=5)})),
        max_size=3,
    ),
    users=st.lists(USER, max_size=4),
)
def test_parsing_gives_consistent_rows_or_a_data_error(groups, roles, permissions, users):
    # The user reader hands over users keyed by a string user_id (it checks that itself).
    by_id = {u["user_id"]: u for u in users if isinstance(u.get("user_id"), str)}
    snapshot = Snapshot(groups, roles, permissions)
    try:
        built = build_rows(snapshot)
        rows = {
            name: list(built.rows(name)) for name in schema.SYNCED_TABLES if name != "authz_users"
        }
        rows["authz_users"] = [user_row(user) for user in by_id.values()]
    except ApiDataError as error:
        assert str(error) and "\n" not in str(error)
        return
    for name, keys in schema.SYNCED_TABLES.items():
        row_keys = [tuple(row[k] for k in keys) for row in rows[name]]
        assert len(row_keys) == len(set(row_keys)), f"duplicate keys in {name}"
    group_ids = {row["group_id"] for row in rows["authz_groups"]}
    role_ids = {row["role_id"] for row in rows["authz_roles"]}
    permission_ids = {row["permission_id"] for row in rows["authz_permissions"]}
    assert len({row["user_id"] for row in rows["authz_users"]}) == len(rows["authz_users"])
    assert {r["child_group_id"] for r in rows["authz_group_nesting"]} <= group_ids
    assert {r["role_id"] for r in rows["authz_group_roles"]} <= role_ids
    assert {r["permission_id"] for r in rows["authz_role_permissions"]} <= permission_ids
    # Members are kept whether or not their user exists (the database flags orphans).
    assert {r["group_id"] for r in rows["authz_group_members"]} <= group_ids
    assert {r["role_id"] for r in rows["authz_role_users"]} <= role_ids
    assert all(isinstance(r["user_id"], str) for r in rows["authz_role_users"])


def _settings(database_url: str = "sqlite://") -> Settings:
    return api_settings(
        database_url,
        secret="property-secret",
        extension_url="https://ext.example/api",
        retry=RetrySettings(max_attempts=2),
    )


def _transport(answers: dict[str, object]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "tok-123456", "expires_in": 3600})
        answer = answers.get(request.url.path.removeprefix("/api/"))
        if callable(answer):
            answer = answer(request)
        return httpx.Response(200, content=json.dumps(answer).encode())

    return httpx.MockTransport(handle)


PAGE = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {
            "users": st.one_of(JSON, st.lists(USER, max_size=5)),
            "total": st.one_of(JSON, st.integers(-5, 2000)),
        }
    ),
)


@settings(max_examples=200, deadline=None)
@given(pages=st.lists(PAGE, min_size=1, max_size=4))
def test_paging_reads_users_or_fails_with_a_documented_error(pages):
    def users(request: httpx.Request):
        page = int(request.url.params.get("page", 1))
        return pages[min(page, len(pages)) - 1]

    with ExtensionApi(
        _settings(), transport=_transport({"users": users}), sleep=lambda s: None
    ) as api:
        try:
            found = UserReader(api.users_page).read_all()
        except (ApiDataError, ApiError):
            return
    assert all(isinstance(user_id, str) for user_id in found)


@pytest.mark.filterwarnings("ignore")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(groups=st.lists(GROUP, max_size=4), roles=st.lists(ROLE, max_size=3))
def test_a_run_writes_everything_or_nothing(tmp_path_factory, groups, roles):
    database = tmp_path_factory.mktemp("prop") / "authz.db"
    good = {
        "groups": {
            "groups": [
                {
                    "_id": "00000000-1111-4111-8111-111111111111",
                    "name": "Base",
                    "members": ["auth0|1"],
                    "mappings": [],
                }
            ]
        },
        "roles": {"roles": []},
        "permissions": {"permissions": []},
        "users": {"users": [{"user_id": "auth0|1", "name": "One"}], "total": 1},
    }
    run_sync(_settings(f"sqlite:///{database}"), transport=_transport(good), sleep=lambda s: None)
    before = _dump(database)
    arbitrary = good | {"groups": {"groups": groups}, "roles": {"roles": roles}}
    try:
        run_sync(
            _settings(f"sqlite:///{database}"),
            transport=_transport(arbitrary),
            sleep=lambda s: None,
        )
    except SyncError as error:
        assert error.exit_code in (3, 65), error
        assert _dump(database) == before
        return
    after = _dump(database)
    assert len(after["authz_groups"]) == len(groups)


def _dump(database) -> dict[str, list]:
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        dump = {
            name: sorted(map(repr, connection.execute(schema.metadata.tables[name].select())))
            for name in schema.SYNCED_TABLES
        }
    engine.dispose()
    return dump
