"""Edge cases of the export job client on httpx.MockTransport: unsafe locations, redirects,
encodings of the file, bad lines, and how Management API answers map to errors. The
simulator tests (test_export_job.py) cover the real sockets."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from sync.config import (
    Auth0Settings,
    DatabaseSettings,
    ExtensionSettings,
    RetrySettings,
    Secret,
    Settings,
)
from sync.errors import ApiDataError, ExportJobFailed, ExportNotGranted
from sync.source.export_download import SliceReader, shown_url
from sync.source.export_job import ExportJobClient, ExportSettings, management_audience
from sync.source.seen_ids import SeenIds

SECRET = "the-client-secret"
LOCATION = "https://cdn.example/t/job_1/t.json.gz?Expires=1&Key-Pair-Id=K&Signature=s3cr3t-sig"
USERS = [{"user_id": "auth0|1", "name": "Ann"}, {"user_id": "auth0|2", "email": "b@example.com"}]


def ndjson(users=USERS) -> bytes:
    return b"".join(json.dumps(u).encode() + b"\n" for u in users)


class FakeAuth0:
    """Token endpoint, jobs API and storage host, scripted per test."""

    def __init__(self, location: str = LOCATION, file: httpx.Response | None = None):
        self.location = location
        self.files = [file] if file is not None else []
        self.default_file = httpx.Response(200, content=gzip.compress(ndjson()))
        self.api_answers: list[httpx.Response] = []
        self.storage_requests: list[httpx.Request] = []
        self.jobs = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "tenant.example":
            self.storage_requests.append(request)
            answer = self.files.pop(0) if self.files else self.default_file
            if isinstance(answer, Exception):
                raise answer
            return answer
        if request.url.path == "/oauth/token":
            body = {"access_token": "tok-1234567", "expires_in": 86400, "scope": "read:users"}
            return httpx.Response(200, json=body)
        if self.api_answers:
            return self.api_answers.pop(0)
        if request.method == "POST":
            self.jobs += 1
            return httpx.Response(201, json={"id": f"job_{self.jobs}", "status": "pending"})
        job = {"id": "job_1", "status": "completed", "location": self.location}
        return httpx.Response(200, json=job)


def export(fake: FakeAuth0, sleeps: list[float] | None = None) -> ExportJobClient:
    settings = ExportSettings(
        "https://tenant.example",
        "cid",
        Secret(SECRET),
        management_audience("https://tenant.example"),
        retry=RetrySettings(max_attempts=3, initial_wait=1.0, max_wait=4.0, max_total_wait=60.0),
    )
    return ExportJobClient(
        settings,
        transport=httpx.MockTransport(fake),
        sleep=(sleeps if sleeps is not None else []).append,
        rng=lambda: 0.5,
    )


def read(fake: FakeAuth0) -> dict[str, dict]:
    users: dict[str, dict] = {}
    with export(fake) as client:
        for piece in client.read():
            users.update(piece)
    return users


def test_the_download_carries_no_credential_of_any_kind() -> None:
    fake = FakeAuth0()
    assert set(read(fake)) == {"auth0|1", "auth0|2"}
    (request,) = fake.storage_requests
    assert "authorization" not in request.headers
    assert "cookie" not in request.headers
    everything = str(request.url) + str(request.headers) + request.content.decode()
    assert SECRET not in everything and "tok-1234567" not in everything


@pytest.mark.parametrize(
    "location",
    [
        "http://cdn.example/t/job_1/t.json.gz?Signature=s3cr3t-sig",
        "ftp://cdn.example/t.json.gz?Signature=s3cr3t-sig",
        "https://user:pw@cdn.example/t.json.gz?Signature=s3cr3t-sig",
    ],
)
def test_unsafe_locations_are_refused_without_a_request(location: str) -> None:
    fake = FakeAuth0(location)
    with pytest.raises(ExportJobFailed, match="refusing to download") as raised:
        read(fake)
    assert fake.storage_requests == [] and fake.jobs == 1
    assert "s3cr3t-sig" not in str(raised.value) and "pw" not in str(raised.value)


def test_plain_http_to_loopback_is_allowed_for_tests() -> None:
    fake = FakeAuth0("http://127.0.0.1:9/t.json.gz?Signature=s3cr3t-sig")
    assert len(read(fake)) == 2


def test_a_redirect_is_followed_only_on_the_same_host() -> None:
    same = httpx.Response(307, headers={"Location": "/other/t.json.gz?Signature=n3w-sig"})
    fake = FakeAuth0(file=same)
    assert len(read(fake)) == 2
    assert fake.storage_requests[1].url.path == "/other/t.json.gz"
    elsewhere = httpx.Response(302, headers={"Location": "https://evil.example/x?Signature=e"})
    fake = FakeAuth0(file=elsewhere)
    with pytest.raises(ExportJobFailed, match=r"redirects to https://evil\.example/x\?…"):
        read(fake)
    assert len(fake.storage_requests) == 1


def test_a_file_sent_with_content_encoding_gzip_is_read() -> None:
    encoded = httpx.Response(
        200, content=gzip.compress(ndjson()), headers={"Content-Encoding": "gzip"}
    )
    assert len(read(FakeAuth0(file=encoded))) == 2


def test_a_gzip_of_several_members_is_read_whole() -> None:
    members = gzip.compress(ndjson(USERS[:1])) + gzip.compress(ndjson(USERS[1:]))
    assert len(read(FakeAuth0(file=httpx.Response(200, content=members)))) == 2


def test_a_file_that_is_not_gzip_is_broken() -> None:
    fake = FakeAuth0()
    fake.default_file = httpx.Response(200, content=b"<html>maintenance</html>")
    with pytest.raises(ExportJobFailed, match="is not a gzip file"):
        read(fake)
    assert fake.jobs == 2 and len(fake.storage_requests) == 4


def test_a_line_that_is_not_a_user_is_a_data_error() -> None:
    for line in (b"{not json}\n", b'{"name": "no id"}\n', b"[1, 2]\n"):
        content = gzip.compress(ndjson() + line)
        with pytest.raises(ApiDataError, match="line 3 of the export file"):
            read(FakeAuth0(file=httpx.Response(200, content=content)))


def test_duplicates_and_blank_lines_and_a_last_line_without_newline() -> None:
    content = gzip.compress(ndjson() + b"\n" + json.dumps(USERS[0]).encode())
    fake = FakeAuth0(file=httpx.Response(200, content=content))
    with export(fake) as client:
        users = {k: v for piece in client.read() for k, v in piece.items()}
    assert len(users) == 2 and client.duplicates == 1


@pytest.mark.parametrize("hash_function", [None, lambda _: 7])  # 7: every id collides
def test_each_user_once_even_when_hashes_collide(tmp_path, hash_function) -> None:
    ids = ["a", "b", "a", "c", "b", "d", "e", "a"]
    spool = (tmp_path / "export.json.gz").open("w+b")
    spool.write(gzip.compress(ndjson([{"user_id": i, "n": n} for n, i in enumerate(ids)])))
    spool.seek(0)
    seen = SeenIds(hash_function=hash_function) if hash_function else SeenIds()
    reader = SliceReader(slice_size=2, seen=seen)
    pieces = list(reader.read(spool, "export"))
    assert all(len(piece) <= 2 for piece in pieces)
    users = [user for piece in pieces for user in piece.values()]
    assert sorted((u["user_id"], u["n"]) for u in users) == [
        ("a", 0), ("b", 1), ("c", 3), ("d", 5), ("e", 6),
    ]  # fmt: skip
    assert (reader.count, reader.duplicates) == (5, 3)


def test_seen_ids_grow_and_stay_exact_for_distinct_ids() -> None:
    seen = SeenIds(capacity=4)
    assert all(seen.add(f"auth0|{n}") for n in range(10_000))
    assert not any(seen.add(f"auth0|{n}") for n in range(0, 10_000, 7))
    assert seen.count == 10_000 and seen.bytes == 8 * 32_768


def test_seen_ids_sized_for_a_count_hold_it_without_growing() -> None:
    seen = SeenIds.for_at_most(100_000)
    size = seen.bytes
    assert all(seen.add(f"auth0|{n}") for n in range(100_000))
    assert seen.bytes == size == 8 * 262_144  # the smallest power of two at most half full
    assert SeenIds.for_at_most(None).bytes == SeenIds().bytes


def test_the_reader_is_sized_from_the_lines_the_download_counted() -> None:
    users = [{"user_id": f"auth0|{n}"} for n in range(40_000)]
    fake = FakeAuth0(file=httpx.Response(200, content=gzip.compress(ndjson(users))))
    with export(fake) as client:
        assert sum(len(piece) for piece in client.read()) == 40_000
        assert client._downloader.lines == 40_001  # the newlines, and a last line without one
        assert client._reader.seen.bytes == 8 * 131_072  # sized once: never grew


def test_identity_provider_tokens_never_leave_the_reader() -> None:
    identity = {"connection": "google-oauth2", "access_token": "ya29.x", "refresh_token": "1//r"}
    user = {"user_id": "google-oauth2|1", "identities": [identity]}
    fake = FakeAuth0(file=httpx.Response(200, content=gzip.compress(ndjson([user]))))
    assert read(fake)["google-oauth2|1"]["identities"] == [{"connection": "google-oauth2"}]


def test_a_certificate_that_does_not_verify_is_not_downloaded_again() -> None:
    error = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    fake = FakeAuth0(file=error)
    with pytest.raises(ExportJobFailed, match="TLS certificate could not be verified"):
        read(fake)
    assert len(fake.storage_requests) == 1


def test_server_errors_of_the_management_api_are_retried() -> None:
    fake = FakeAuth0()
    fake.api_answers = [httpx.Response(201, json={"id": "job_1"}), httpx.Response(503)]
    sleeps: list[float] = []
    with export(fake, sleeps) as client:
        assert sum(len(p) for p in client.read()) == 2
    assert client.stats.retries == 1 and client.stats.requests == 4
    assert sleeps == [1.0, 0.75]  # before the first poll; the retry policy's first wait


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (httpx.Response(401, json={"message": "Bad audience"}), ExportNotGranted,
         "auth0.management_audience"),
        (httpx.Response(403, json={"message": "Insufficient scope"}), ExportNotGranted,
         "read:users"),
        (httpx.Response(400, json={"message": "Payload validation error"}), ExportJobFailed,
         "POST /api/v2/jobs/users-exports answered 400: Payload validation error"),
    ],
)  # fmt: skip
def test_management_api_refusals(answer, error, words) -> None:
    fake = FakeAuth0()
    fake.api_answers = [answer, answer]  # the 401 is resent once with a fresh token
    with pytest.raises(error, match=words):
        read(fake)


def test_a_job_in_an_unknown_state_is_recreated_then_given_up() -> None:
    fake = FakeAuth0()
    odd = httpx.Response(200, json={"id": "job_1", "status": "cancelled"})
    created = httpx.Response(201, json={"id": "job_1"})
    fake.api_answers = [created, odd, created, odd]
    with pytest.raises(ExportJobFailed, match=r"is cancelled.*is cancelled"):
        read(fake)


def test_shown_url_drops_the_query_and_user_info() -> None:
    assert shown_url(LOCATION) == "https://cdn.example/t/job_1/t.json.gz?…"
    assert shown_url("http://u:p@localhost:8080/a.gz") == "http://localhost:8080/a.gz"


def test_settings_from_the_run_settings() -> None:
    run = Settings(
        auth0=Auth0Settings("https://acme.eu.auth0.com", "cid", Secret(SECRET)),
        extension=ExtensionSettings(
            "https://ext.example/api", connect_timeout=3.0, read_timeout=30.0
        ),
        database=DatabaseSettings("sqlite://"),
        retry=RetrySettings(4, 0.5, 8.0, 100.0),
    )
    settings = ExportSettings.from_settings(run, deadline=60.0)
    assert settings.audience == "https://acme.eu.auth0.com/api/v2/"
    assert settings.retry == RetrySettings(4, 0.5, 8.0, 100.0)
    assert settings.deadline == 60.0 and settings.read_timeout == 30.0
    custom = ExportSettings.from_settings(run, audience="https://acme.auth0.com/api/v2/")
    assert custom.audience == "https://acme.auth0.com/api/v2/"
