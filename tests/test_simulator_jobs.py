"""The simulator's Management API export jobs and its storage host, over real sockets: shapes,
states, limits and faults as the API reference describes them."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sync.simulator import Simulator, Tenant
from sync.simulator.jobs import connection_id

FIELDS = [
    {"name": name}
    for name in (
        "user_id", "email", "name", "picture", "identities", "last_login", "logins_count",
        "blocked", "multifactor", "created_at", "updated_at",
    )
]  # fmt: skip
JSON_EXPORT = {"format": "json", "fields": FIELDS}


def management_error(status: int, error: str, message: str, code: str) -> dict:
    """The Management API's error body."""
    return {"statusCode": status, "error": error, "message": message, "errorCode": code}


GRANTED = pytest.mark.simulator(management_scopes=("read:users",))  # the export scope
pytestmark = [pytest.mark.tenant(users=60, groups=4, memberships=40), GRANTED]


@pytest.fixture(autouse=True)
def jobs_finish_at_once(sim: Simulator) -> None:
    sim.jobs.polls_until_done = 0


def token_body(sim: Simulator, audience: str) -> dict:
    return {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "audience": audience,
    }


def management(sim: Simulator) -> httpx.Client:
    answer = httpx.post(sim.url + "/oauth/token", json=token_body(sim, sim.management_audience))
    assert answer.status_code == 200, answer.text
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    return httpx.Client(base_url=sim.url + "/api/v2", headers=headers)


def create(client: httpx.Client, body: dict | None = None) -> dict:
    answer = client.post("/jobs/users-exports", json=JSON_EXPORT if body is None else body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def completed(client: httpx.Client, body: dict | None = None) -> dict:
    job = client.get(f"/jobs/{create(client, body)['id']}").json()
    assert job["status"] == "completed", job
    return job


def lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines()]


# --- tokens -----------------------------------------------------------------------------------


def test_without_a_grant_the_management_audience_is_refused(tenant: Tenant) -> None:
    with Simulator(tenant) as sim:
        audience = sim.management_audience
        answer = httpx.post(sim.url + "/oauth/token", json=token_body(sim, audience))
    assert answer.status_code == 403
    assert answer.json()["error"] == "access_denied"
    assert answer.json()["error_description"].startswith(
        f'Client is not authorized to access "{audience}".'
    )


def test_with_a_grant_the_token_carries_the_granted_scope(sim: Simulator) -> None:
    answer = httpx.post(sim.url + "/oauth/token", json=token_body(sim, sim.management_audience))
    assert answer.status_code == 200
    assert answer.json()["scope"] == "read:users"
    assert sim.management_audience == sim.url + "/api/v2/"


def test_tokens_of_one_api_are_refused_by_the_other(sim: Simulator) -> None:
    client = management(sim)
    extension_view = httpx.get(sim.api_url + "/users", headers=client.headers)
    assert extension_view.status_code == 401
    assert extension_view.json()["message"] == "Invalid credentials"
    extension_token = sim.issue_token()
    answer = client.post(
        "/jobs/users-exports",
        json=JSON_EXPORT,
        headers={"Authorization": f"Bearer {extension_token}"},
    )
    assert answer.status_code == 401
    assert answer.json() == management_error(
        401, "Unauthorized", "Bad audience: urn:auth0-authz-api", "invalid_token"
    )


def test_missing_token_and_missing_scope(sim: Simulator) -> None:
    anonymous = httpx.post(sim.url + "/api/v2/jobs/users-exports", json=JSON_EXPORT)
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"statusCode", "error", "message", "errorCode"}
    scopeless = sim.issue_token(scopes=(), audience=sim.management_audience)
    answer = httpx.post(
        sim.url + "/api/v2/jobs/users-exports",
        json=JSON_EXPORT,
        headers={"Authorization": f"Bearer {scopeless}"},
    )
    assert answer.status_code == 403
    assert answer.json() == management_error(
        403, "Forbidden", "Insufficient scope, expected any of: read:users", "insufficient_scope"
    )
    assert sim.jobs.created == 0


# --- creating a job ---------------------------------------------------------------------------


def test_create_answers_201_with_the_job(sim: Simulator) -> None:
    job = create(management(sim), {**JSON_EXPORT, "limit": 5})
    assert job["type"] == "users_export"
    assert job["status"] == "pending"
    assert job["format"] == "json"
    assert job["fields"] == FIELDS
    assert job["limit"] == 5
    assert job["id"].startswith("job_") and len(job["id"]) == 20
    assert job["created_at"].endswith("Z")


@pytest.mark.parametrize(
    "body",
    [
        {"format": "xml"},
        {"fields": []},
        {"fields": [{"name": ""}]},
        {"fields": [{"name": "user_id", "other": 1}]},
        {"fields": "user_id"},
        {"limit": 0},
        {"limit": "10"},
        {"connection_id": "Username-Password-Authentication"},
        {"unknown": True},
        {"format": "csv", "fields": [{"name": "app_metadata"}]},
        {"format": "csv", "fields": [{"name": f"f{i}"} for i in range(31)]},
    ],
)
def test_a_bad_body_is_400_invalid_body(sim: Simulator, body: dict) -> None:
    answer = management(sim).post("/jobs/users-exports", json=body)
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "invalid_body"
    assert answer.json()["message"].startswith("Payload validation error: ")


def test_too_many_unfinished_jobs_is_429_with_rate_limit_headers(sim: Simulator) -> None:
    sim.jobs.polls_until_done = 3
    client = management(sim)
    first, _ = create(client), create(client)
    answer = client.post("/jobs/users-exports", json=JSON_EXPORT)
    assert answer.status_code == 429
    assert answer.json()["errorCode"] == "too_many_requests"
    assert "There are 2 active export users jobs" in answer.json()["message"]
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert int(answer.headers["X-RateLimit-Reset"]) >= time.time()
    with sim.lock:
        sim.jobs.finish(sim.tenant, first["id"])
    assert client.post("/jobs/users-exports", json=JSON_EXPORT).status_code == 201


# --- polling ----------------------------------------------------------------------------------


def test_a_job_goes_pending_processing_completed(sim: Simulator) -> None:
    sim.jobs.polls_until_done = 2
    client = management(sim)
    job_id = create(client)["id"]
    states = [client.get(f"/jobs/{job_id}").json() for _ in range(3)]
    assert [s["status"] for s in states] == ["pending", "processing", "completed"]
    assert states[1]["percentage_done"] == 50 and states[1]["time_left_seconds"] >= 1
    assert "location" not in states[0] and "location" not in states[1]
    assert states[2]["id"] == job_id and states[2]["fields"] == FIELDS


def test_a_job_can_take_time_instead_of_polls(sim: Simulator) -> None:
    sim.jobs.seconds_until_done = 0.05
    client = management(sim)
    job_id = create(client)["id"]
    assert client.get(f"/jobs/{job_id}").json()["status"] == "pending"
    time.sleep(0.06)
    assert client.get(f"/jobs/{job_id}").json()["status"] == "completed"


def test_every_poll_of_a_completed_job_signs_a_fresh_link_on_another_host(sim: Simulator):
    client = management(sim)
    job = completed(client)
    again = client.get(f"/jobs/{job['id']}").json()
    assert job["location"] != again["location"]
    link = urlsplit(job["location"])
    assert (link.hostname, link.port) == ("localhost", sim.storage.port)
    assert link.port != sim.port and urlsplit(sim.url).hostname == "127.0.0.1"
    assert link.path == f"/sim-tenant/{job['id']}/sim-tenant.json.gz"
    assert set(parse_qs(link.query)) == {"Expires", "Key-Pair-Id", "Signature"}


@pytest.mark.parametrize("outcome", ["failed", "expired"])
def test_failures_and_expiry_for_the_next_jobs(sim: Simulator, outcome: str) -> None:
    getattr(sim.jobs, "fail_next" if outcome == "failed" else "expire_next")(2)
    client = management(sim)
    for _ in range(2):
        job = client.get(f"/jobs/{create(client)['id']}").json()
        assert job["status"] == outcome and "location" not in job
    assert completed(client)["status"] == "completed"


def test_an_expired_job_loses_its_file(sim: Simulator) -> None:
    client = management(sim)
    job = completed(client)
    sim.jobs.set_outcome(job["id"], "expired")
    assert client.get(f"/jobs/{job['id']}").json()["status"] == "expired"
    assert httpx.get(job["location"]).status_code == 404


def test_unknown_and_malformed_job_ids(sim: Simulator) -> None:
    client = management(sim)
    assert client.get("/jobs/job_0000000000000000").json()["errorCode"] == "inexistent_job"
    assert client.get("/jobs/nope").json()["errorCode"] == "invalid_uri"
    assert client.get("/jobs").status_code == 404


def test_management_answers_carry_the_tenant_rate_limit(sim: Simulator) -> None:
    sim.rate_limit, sim.rate_limit_burst = 1000.0, 5
    answer = management(sim).post("/jobs/users-exports", json=JSON_EXPORT)
    assert answer.headers["X-RateLimit-Limit"] == "5"


# --- the download -----------------------------------------------------------------------------


def test_the_file_holds_every_user_with_exactly_the_requested_fields(
    sim: Simulator, tenant: Tenant
) -> None:
    job = completed(management(sim))
    download = httpx.get(job["location"])
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/gzip"
    exported = lines(download.content)
    assert len(exported) == len(tenant.users)
    for line in exported:
        user = tenant.users[line["user_id"]]
        created = tenant.created_at[line["user_id"]]
        assert line.pop("created_at") == created
        assert line.pop("updated_at") >= created  # ISO strings of one format sort as instants
        assert line == user  # no field added, none lost; absent ones stay absent
    assert any("email" not in line for line in exported)


def test_renamed_nested_fields_limit_and_connection(sim: Simulator, tenant: Tenant) -> None:
    fields = [{"name": "user_id"}, {"name": "identities[0].connection", "export_as": "via"}]
    client = management(sim)
    limited = lines(
        httpx.get(
            completed(client, {"fields": fields, "limit": 3, "format": "json"})["location"]
        ).content
    )
    assert len(limited) == 3 and all(set(line) == {"user_id", "via"} for line in limited)
    saml = {"format": "json", "fields": fields, "connection_id": connection_id("Corp Dir")}
    job = completed(client, saml)
    assert job["connection"] == "Corp Dir"
    exported = lines(httpx.get(job["location"]).content)
    assert exported and {line["via"] for line in exported} == {"Corp Dir"}
    unknown = client.post("/jobs/users-exports", json={**saml, "connection_id": "con_" + "0" * 16})
    assert unknown.status_code == 404


def test_csv_files_have_a_header_row(sim: Simulator, tenant: Tenant) -> None:
    body = {"format": "csv", "fields": [{"name": "user_id"}, {"name": "email"}]}
    job = completed(management(sim), body)
    assert job["location"].split("?")[0].endswith(".csv.gz")
    rows = gzip.decompress(httpx.get(job["location"]).content).decode().splitlines()
    assert rows[0] == "user_id,email" and len(rows) == len(tenant.users) + 1


def test_a_download_carrying_authorization_is_refused(sim: Simulator) -> None:
    client = management(sim)
    job = completed(client)
    answer = httpx.get(job["location"], headers=client.headers)
    assert answer.status_code == 400
    assert "Only one auth mechanism allowed" in answer.text
    assert [r.authorization for r in sim.storage.requests] == [True]
    assert httpx.get(job["location"]).status_code == 200


def test_expired_and_tampered_links_are_403(sim: Simulator) -> None:
    sim.jobs.link_lifetime = 0.02
    job = completed(management(sim))
    time.sleep(0.03)
    expired = httpx.get(job["location"])
    assert expired.status_code == 403 and "Request has expired" in expired.text
    sim.jobs.link_lifetime = 60
    job = completed(management(sim))
    assert httpx.get(job["location"].replace("Signature=", "Signature=x")).status_code == 403
    expires = parse_qs(urlsplit(job["location"]).query)["Expires"][0]
    later = job["location"].replace(f"Expires={expires}", f"Expires={int(expires) + 3600}")
    assert httpx.get(later).status_code == 403
    sim.storage.expire_links()
    assert httpx.get(job["location"]).status_code == 403


def test_download_faults_fire_for_the_next_downloads(sim: Simulator) -> None:
    job = completed(management(sim))
    whole = httpx.get(job["location"]).content
    sim.storage.break_next("truncated")
    sim.storage.break_next("corrupt", times=2)
    truncated = httpx.get(job["location"]).content
    assert truncated == whole[: len(whole) // 2]
    with pytest.raises(EOFError):
        gzip.decompress(truncated)
    for _ in range(2):
        corrupt = httpx.get(job["location"]).content
        assert len(corrupt) == len(whole) and corrupt != whole
        with pytest.raises((zlib.error, gzip.BadGzipFile, EOFError)):
            gzip.decompress(corrupt)
    sim.storage.break_next("cut")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(job["location"])
    sim.storage.break_next("expired")
    sim.storage.break_next("unavailable")
    assert httpx.get(job["location"]).status_code == 403
    assert httpx.get(job["location"]).status_code == 503
    assert httpx.get(job["location"]).content == whole
    assert [r.fault for r in sim.storage.requests] == [
        None, "truncated", "corrupt", "corrupt", "cut", "expired", "unavailable", None,
    ]  # fmt: skip


def test_the_storage_host_stops_with_the_simulator(tenant: Tenant) -> None:
    with Simulator(tenant, management_scopes=("read:users",)) as sim:
        port = sim.storage.port
        assert httpx.get(f"http://localhost:{port}/nothing").status_code == 403
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://localhost:{port}/nothing")
