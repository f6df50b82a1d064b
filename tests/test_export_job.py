"""The export job client against the simulator over real sockets: the life cycle, its bounds
and retries, the streamed download, and the rule that no credential reaches the storage host.
Sleeps are recorded on a fake clock, never slept."""

from __future__ import annotations

import logging
import ssl

import httpx
import pytest
import trustme

from sync.config import Secret
from sync.errors import ApiDataError, ExportJobFailed, ExportNotGranted
from sync.simulator import Simulator, Tenant
from sync.source.export_job import USER_FIELDS, ExportJobClient, ExportSettings, compare_counts
from sync.transform import user_row


class FakeTime:
    """A monotonic clock that moves only when someone sleeps; the sleeps are kept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(seconds)


GRANTED = pytest.mark.simulator(management_scopes=("read:users",))  # the export scope
pytestmark = [pytest.mark.tenant(users=300, groups=5, memberships=50), GRANTED]


@pytest.fixture(autouse=True)
def jobs_finish_at_once(sim: Simulator) -> None:
    sim.jobs.polls_until_done = 0


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def client(sim: Simulator, fake_time: FakeTime, **overrides) -> ExportJobClient:
    settings = ExportSettings(
        sim.url,
        sim.client_id,
        Secret(sim.client_secret),
        sim.management_audience,
        **({"slice_size": 128, "read_timeout": 5.0} | overrides),
    )
    return ExportJobClient(settings, sleep=fake_time.sleep, clock=fake_time.clock)


def read_all(export: ExportJobClient) -> dict[str, dict]:
    users: dict[str, dict] = {}
    with export:
        for piece in export.read():
            assert len(piece) <= export.settings.slice_size
            assert not set(piece) & set(users), "a user came twice"
            users.update(piece)
    return users


def assert_every_user(users: dict[str, dict], tenant: Tenant) -> None:
    assert set(users) == set(tenant.users)
    for user_id, user in users.items():
        assert user["created_at"] == tenant.created_at[user_id]
        exported = {k: v for k, v in user.items() if k not in ("created_at", "updated_at")}
        assert exported == tenant.users[user_id]


# --- the happy path ---------------------------------------------------------------------------


def test_every_user_in_slices_with_three_requests(sim, tenant, fake_time) -> None:
    export = client(sim, fake_time)
    users = read_all(export)
    assert_every_user(users, tenant)
    assert export.count == len(tenant.users) and export.duplicates == 0
    assert export.stats.requests == 3  # create, one poll, the download
    assert (export.jobs_created, export.polls, export.downloads) == (1, 1, 1)
    assert export.job_id in sim.jobs.jobs
    assert fake_time.sleeps == [1.0]  # before the first poll
    fields = sim.jobs.jobs[export.job_id].fields
    assert [f["name"] for f in fields] == list(USER_FIELDS)
    assert sim.jobs.jobs[export.job_id].format == "json"


def test_the_fields_asked_for_are_what_user_row_reads(tenant) -> None:
    """A field user_row reads but the job does not ask for would come back empty."""
    user = next(iter(tenant.users.values()))
    full = {**user, "multifactor": ["guardian"], "blocked": True, "logins_count": 3}
    assert user_row({k: v for k, v in full.items() if k in USER_FIELDS}) == user_row(full)


def test_no_authorization_header_reaches_the_storage_host(sim, fake_time) -> None:
    """The storage host refuses such a request (400), so a whole read proves it too."""
    read_all(client(sim, fake_time))
    assert [(r.authorization, r.status) for r in sim.storage.requests] == [(False, 200)]
    api_calls = sim.api_requests(r"^/api/v2/")
    assert api_calls and all(r.token_fingerprint for r in api_calls)


def test_the_management_token_is_fetched_once_and_kept_apart(sim, fake_time) -> None:
    export = client(sim, fake_time)
    with export:
        list(export.read())
        list(export.read())
    assert export.auth.tokens_fetched == 1
    assert export.stats.requests == 6
    token_requests = [r for r in sim.requests if r.path == "/oauth/token"]
    assert len(token_requests) == 1


# --- a slow job, the deadline, too many jobs --------------------------------------------------


def test_a_slow_job_is_polled_with_growing_pauses(sim, tenant, fake_time) -> None:
    sim.jobs.polls_until_done = 3
    export = client(sim, fake_time)
    assert_every_user(read_all(export), tenant)
    assert export.polls == 4
    # 1 s, then doubling; time_left_seconds (1 s here) never pulls it under half the schedule
    assert fake_time.sleeps == [1.0, 2.0, 2.0, 4.0]


def test_the_pauses_stop_growing_at_poll_max(sim, fake_time) -> None:
    sim.jobs.polls_until_done = 8
    read_all(client(sim, fake_time, poll_max=5.0))
    # the hint (1 s) is followed down to half of poll_max, never below
    assert fake_time.sleeps == [1.0, 2.0, 2.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5]


def test_a_job_that_never_finishes_stops_at_the_deadline(sim, fake_time) -> None:
    sim.jobs.polls_until_done = 10_000
    export = client(sim, fake_time, deadline=120.0)
    with pytest.raises(ExportJobFailed, match=r"within 120 s \(users.export_timeout\)"):
        read_all(export)
    assert sum(fake_time.sleeps) <= 120.0
    assert export.polls < 15  # pauses grew; it did not poll every second


def test_too_many_running_jobs_waits_and_creates_later(sim, tenant, fake_time) -> None:
    sim.jobs.max_concurrent = 1
    sim.jobs.polls_until_done = 5
    blocker = httpx.post(
        sim.url + "/api/v2/jobs/users-exports",
        json={"format": "json"},
        headers={"Authorization": f"Bearer {sim.issue_token(audience=sim.management_audience)}"},
    ).json()["id"]

    def blocker_finishes(_: float) -> None:
        sim.jobs.polls_until_done = 0
        with sim.lock:
            sim.jobs.finish(sim.tenant, blocker)

    fake_time.on_sleep = blocker_finishes
    export = client(sim, fake_time)
    assert_every_user(read_all(export), tenant)
    assert export.stats.rate_limited == 1
    assert 1.0 <= fake_time.sleeps[0] <= 2.0  # what X-RateLimit-Reset asked for
    assert export.jobs_created == 1


# --- failures: jobs, links, files -------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["failed", "expired"])
def test_a_failed_or_expired_job_is_created_again_once(sim, tenant, fake_time, outcome):
    getattr(sim.jobs, "fail_next" if outcome == "failed" else "expire_next")(1)
    export = client(sim, fake_time)
    assert_every_user(read_all(export), tenant)
    assert export.jobs_created == 2 and sim.jobs.created == 2


@pytest.mark.parametrize("outcome", ["failed", "expired"])
def test_a_second_failure_raises_export_job_failed(sim, fake_time, outcome) -> None:
    getattr(sim.jobs, "fail_next" if outcome == "failed" else "expire_next")(2)
    export = client(sim, fake_time)
    with pytest.raises(ExportJobFailed) as raised:
        read_all(export)
    assert str(raised.value).count(f" {outcome}") == 2, raised.value
    assert export.jobs_created == 2 and export.downloads == 0


def test_an_expired_link_is_renewed_by_polling_again(sim, tenant, fake_time) -> None:
    sim.storage.break_next("expired")
    export = client(sim, fake_time)
    assert_every_user(read_all(export), tenant)
    assert (export.jobs_created, export.polls, export.downloads) == (1, 2, 2)
    assert fake_time.sleeps == [1.0]  # the fresh link is asked for at once


def test_links_that_always_expire_end_in_export_job_failed(sim, fake_time) -> None:
    sim.jobs.link_lifetime = 0.0  # every link has expired when it arrives
    export = client(sim, fake_time)
    with pytest.raises(ExportJobFailed, match="403"):
        read_all(export)
    assert export.jobs_created == 2
    assert export.downloads == 2 * 4  # the first link and three fresh ones, per job


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "cut", "unavailable"])
def test_a_broken_file_is_downloaded_again(sim, tenant, fake_time, kind) -> None:
    sim.storage.break_next(kind)
    export = client(sim, fake_time)
    assert_every_user(read_all(export), tenant)
    assert (export.jobs_created, export.downloads) == (1, 2)
    assert export.duplicates == 0  # nothing of the broken file was handed on


def test_a_file_broken_twice_makes_a_new_job(sim, tenant, fake_time) -> None:
    sim.storage.break_next("corrupt", times=2)
    export = client(sim, fake_time)
    assert_every_user(read_all(export), tenant)
    assert (export.jobs_created, export.downloads) == (2, 3)


def test_files_that_stay_broken_end_in_export_job_failed(sim, fake_time) -> None:
    sim.storage.break_next("truncated", times=4)
    with pytest.raises(ExportJobFailed, match="truncated"):
        read_all(client(sim, fake_time))


# --- grants -----------------------------------------------------------------------------------


def test_without_a_grant_export_not_granted_says_where_to_grant(tenant, fake_time) -> None:
    with Simulator(tenant) as sim:
        export = client(sim, fake_time)
        with pytest.raises(ExportNotGranted, match="Auth0 Management API") as raised:
            export.check_grant()
        assert sim.management_audience in str(raised.value)
        with pytest.raises(ExportNotGranted):
            read_all(export)
        assert sim.jobs.created == 0


def test_a_grant_without_read_users_is_not_enough(tenant, fake_time) -> None:
    with (
        Simulator(tenant, management_scopes=("read:clients",)) as sim,
        pytest.raises(ExportNotGranted, match="without the scope read:users"),
    ):
        read_all(client(sim, fake_time))


# --- secrets ----------------------------------------------------------------------------------


def test_the_signature_is_in_no_log_line_and_no_error(sim, fake_time, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sim.storage.break_next("corrupt")
    read_all(client(sim, fake_time))
    sim.jobs.link_lifetime = 0.0
    with pytest.raises(ExportJobFailed) as raised:
        read_all(client(sim, fake_time))
    signatures = list(sim.storage._links)
    assert len(signatures) >= 10
    text = caplog.text + str(raised.value)
    assert "localhost" in text and "?…" in str(raised.value)
    for signature in signatures:
        assert signature not in text
    assert "Signature=" not in str(raised.value) and "Expires=" not in str(raised.value)
    assert sim.client_secret not in text


# --- the cross-check --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exported", "total", "level"),
    [
        (1000, 1000, "ok"),
        (1010, 1000, "warning"),  # 10 users at least, for small tenants
        (990, 1000, "warning"),
        (1011, 1000, "error"),
        (200_000, 201_000, "warning"),  # 0.5% of 201,000 is 1,005
        (200_000, 201_006, "error"),
        (0, 0, "ok"),
        (0, 11, "error"),
    ],
)
def test_count_check_against_the_extension_total(exported, total, level) -> None:
    check = compare_counts(exported, total)
    assert check.level == level
    assert str(exported) in check.message and str(total) in check.message
    if level == "error":
        with pytest.raises(ApiDataError, match=r"users\.export_tolerance"):
            check.raise_for_error()
    else:
        check.raise_for_error()


# --- TLS --------------------------------------------------------------------------------------


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def test_the_download_is_verified_with_the_same_ca_bundle(tenant, fake_time, tmp_path) -> None:
    ours, strangers = trustme.CA(), trustme.CA()
    bundle = tmp_path / "ca.pem"
    ours.cert_pem.write_to_path(str(bundle))
    sim = Simulator(tenant, management_scopes=("read:users",), tls=_server_context(ours))
    sim.jobs.polls_until_done = 0
    with sim:
        assert sim.url.startswith("https://") and sim.storage.url.startswith("https://localhost")
        assert len(read_all(client(sim, fake_time, ca_bundle=str(bundle)))) == len(tenant.users)
    sim = Simulator(tenant, management_scopes=("read:users",), tls=_server_context(ours))
    sim.jobs.polls_until_done = 0
    sim.storage.tls = _server_context(strangers)  # a storage host the bundle does not trust
    with sim:
        export = client(sim, fake_time, ca_bundle=str(bundle))
        with pytest.raises(ExportJobFailed, match="TLS certificate could not be verified"):
            read_all(export)
    assert export.downloads == 1  # not retried: retrying cannot fix a certificate
