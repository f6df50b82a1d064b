"""Users in a handful of requests: Auth0's bulk user export job (Management API v2).

The extension pages users 100 at a time (about 1,060 requests for 100k users). One export job
gives them all: a create, a few polls and one download, whatever the tenant's size.

    with ExportJobClient(ExportSettings.from_settings(settings)) as export:
        for piece in export.read():  # like paging.UserReader.read(): {user_id: user}, ≤ 1000
            ...
    export.job_id, export.count, export.stats

The life cycle, bounded by ``deadline`` (30 minutes by default; nothing waits past it):
1. a Management API token: the same client-credentials flow with another audience
   (``https://<tenant domain>/api/v2/``), cached apart from the extension's; a 403 from
   /oauth/token, a token without read:users, or a 401/403 from the API → ExportNotGranted;
2. ``POST /api/v2/jobs/users-exports`` (format json, exactly ``fields``: USER_FIELDS for a
   run, PROFILE_FIELDS for a backfill); a 429 (too many jobs running, or the rate limit)
   waits — as long as X-RateLimit-Reset says, growing — and retries;
3. ``GET /api/v2/jobs/{id}`` after growing pauses (``time_left_seconds`` when Auth0 gives it),
   the pacer honouring the rate-limit headers, until ``completed``;
4. the location is downloaded at once, without credentials (export_download.py); a 403 (the
   link expired) polls again for a fresh link, a broken file is fetched once more;
5. a job that fails, expires, disappears or keeps breaking its file is recreated once; then
   ExportJobFailed, so that the caller can read the users through the extension instead.
429s, 5xx answers and dropped connections are retried by the one retry policy (retry.py),
within the deadline. Requests are counted in ``stats`` (token requests apart, like api.py).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote

import httpx
from tenacity import RetryCallState, Retrying

from sync import __version__
from sync.config import RetrySettings
from sync.errors import (
    ApiDataError,
    ExportJobFailed,
    ExportNotGranted,
    RetryableApiError,
)
from sync.model import RequestStats
from sync.source.answers import (
    body_text,
    json_or_none,
    retryable_status_error,
    transport_error,
    wait_hint,
)
from sync.source.auth import ClientCredentialsAuth
from sync.source.export_download import (
    SLICE_SIZE,
    BrokenFile,
    Downloader,
    LinkExpired,
    SliceReader,
    guard_httpx_log,
    shown_url,
)
from sync.source.extension import _tls_context
from sync.source.pacing import Pacer
from sync.source.retry import retry_policy
from sync.source.seen_ids import SeenIds

log = logging.getLogger(__name__)

# What transform.user_row reads, plus the two timestamps only the export has.
USER_FIELDS = (
    "user_id", "email", "name", "picture", "identities", "last_login", "logins_count",
    "blocked", "multifactor", "created_at", "updated_at",
)  # fmt: skip
# `backfill --user-details`: the root attributes of Auth0's user profile, what
# GET /api/v2/users/{id} answers (a field a user lacks is left out of its line).
PROFILE_FIELDS = (
    "user_id", "email", "email_verified", "username", "phone_number", "phone_verified",
    "name", "nickname", "given_name", "family_name", "picture", "identities",
    "app_metadata", "user_metadata", "multifactor", "blocked", "last_ip", "last_login",
    "logins_count", "created_at", "updated_at",
)  # fmt: skip
CREATE_PATH = "/api/v2/jobs/users-exports"
REQUIRED_SCOPE = "read:users"
JOB_ATTEMPTS = 2  # a job that fails is recreated once
DOWNLOAD_ATTEMPTS = 2  # a broken file is downloaded once more
LINK_RENEWALS = 3  # fresh links asked for after a 403, per job
RUNNING = ("pending", "processing")
MANAGEMENT_GRANT_WHERE = (
    "in the Auth0 dashboard: Applications → APIs → Auth0 Management API → Machine to Machine "
    "Applications, authorize the application and tick the scope"
)


def management_audience(auth0_url: str) -> str:
    """The Management API's audience for a tenant's base URL: ``https://<domain>/api/v2/``."""
    return auth0_url.rstrip("/") + "/api/v2/"


@dataclass(frozen=True)
class ExportSettings:
    auth0_url: str  # the tenant's base URL, where /oauth/token and /api/v2 are
    client_id: str
    client_secret: Any  # a config.Secret (anything with reveal())
    audience: str  # the Management API's audience (management_audience())
    ca_bundle: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    deadline: float = 1800.0  # seconds for the whole export, creation to last byte
    poll_initial: float = 1.0  # the first pause before a poll; pauses double from there
    poll_max: float = 60.0  # … up to this
    slice_size: int = SLICE_SIZE
    spool_dir: str | None = None  # where the compressed file waits (None: the system's temp)
    fields: tuple[str, ...] = USER_FIELDS  # what the job exports (PROFILE_FIELDS: a backfill)

    @classmethod
    def from_settings(
        cls, settings: Any, audience: str | None = None, **overrides: Any
    ) -> ExportSettings:
        """From config.Settings; ``audience`` defaults to the tenant domain's."""
        auth0, extension = settings.auth0, settings.extension
        values = {
            "auth0_url": auth0.url,
            "client_id": auth0.client_id,
            "client_secret": auth0.client_secret,
            "audience": audience or management_audience(auth0.url),
            "ca_bundle": extension.ca_bundle,
            "connect_timeout": extension.connect_timeout,
            "read_timeout": extension.read_timeout,
            "retry": settings.retry,
        }
        return cls(**(values | overrides))


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float]):
        self.seconds, self._clock = seconds, clock
        self.at = clock() + seconds

    def remaining(self) -> float:
        return self.at - self._clock()

    def check(self, what: str) -> None:
        if self.remaining() <= 0:
            raise ExportJobFailed(
                f"the export job ran out of time {what}: it did not deliver the users within "
                f"{self.seconds:.0f} s (users.export_timeout)"
            )


class ManagementAuth(ClientCredentialsAuth):
    """Client credentials for the Management API: a token of its own, cached apart from the
    extension's; a refusal means the application has no grant there (ExportNotGranted)."""

    def _token_error(self, response: httpx.Response) -> Exception:
        if response.status_code == 403:
            return ExportNotGranted(
                f"the application {self._client_id} has no grant on the Management API "
                f"{self._audience} (403 from /oauth/token): {MANAGEMENT_GRANT_WHERE} "
                f"{REQUIRED_SCOPE}"
            )
        return super()._token_error(response)


class _JobLost(ExportJobFailed):
    """This job will not deliver (failed, expired, gone, its file kept breaking): recreate."""


class _Busy(Exception):
    """429 on creation: too many jobs running (or the rate limit); wait, then create again."""

    def __init__(self, hint: float | None):
        super().__init__("429")
        self.hint = hint


class ExportJobClient:
    """Reads every user of a tenant through one export job; a context manager (connections)."""

    def __init__(
        self,
        settings: ExportSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        stats: RequestStats | None = None,
    ):
        self.settings = settings
        self.stats = stats if stats is not None else RequestStats()
        self.pacer = Pacer(wall_clock, sleep)
        self._sleep, self._clock, self._rng = sleep, clock, rng
        common: dict[str, Any] = {
            "timeout": httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            "verify": _tls_context(settings.ca_bundle),
            "headers": {"User-Agent": f"authz-sync/{__version__}"},
            "transport": transport,
        }
        self._token_client = httpx.Client(base_url=settings.auth0_url, **common)
        self.auth = ManagementAuth(
            self._token_client,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            audience=settings.audience,
            clock=clock,
        )
        self._api = httpx.Client(base_url=settings.auth0_url, auth=self.auth, **common)
        # A client of its own, without auth: the download never carries a credential.
        self._downloads = httpx.Client(follow_redirects=False, **common)
        self._deadline = Deadline(settings.deadline, clock)
        self._downloader = Downloader(
            self._downloads, self._count_download, self._check_deadline, settings.spool_dir
        )
        self._reader = SliceReader(settings.slice_size)
        self.job_id: str | None = None  # the job whose file was read
        self.jobs_created = self.polls = self.downloads = 0
        guard_httpx_log()

    def __enter__(self) -> ExportJobClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for client in (self._api, self._token_client, self._downloads):
            client.close()

    @property
    def count(self) -> int:
        """Distinct users the last read() has handed on so far."""
        return self._reader.count

    @property
    def duplicates(self) -> int:
        """Lines of the file that repeated a user already read (left out)."""
        return self._reader.duplicates

    # --- the grant ----------------------------------------------------------------------------

    def check_grant(self) -> None:
        """ExportNotGranted unless the application gets a Management API token with
        read:users (what `check` and the automatic choice of the user source need)."""
        self._deadline = Deadline(self.settings.deadline, self._clock)
        self._check_grant()

    def _check_grant(self) -> None:
        token = self._with_retries(self.auth.current_token)
        if token.scopes is not None and REQUIRED_SCOPE not in token.scopes:
            raise ExportNotGranted(
                f"the application {self.settings.client_id} may use the Management API but "
                f"without the scope {REQUIRED_SCOPE}: {MANAGEMENT_GRANT_WHERE} {REQUIRED_SCOPE}"
            )

    # --- reading ------------------------------------------------------------------------------

    def read(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Every user of the tenant, in slices of at most ``slice_size`` (by user_id)."""
        self._deadline = Deadline(self.settings.deadline, self._clock)
        self._reader = SliceReader(self.settings.slice_size)
        self._check_grant()
        problems: list[str] = []
        for attempt in range(1, JOB_ATTEMPTS + 1):
            job_id = self._create()
            try:
                spool, shown = self._fetch(job_id)
            except _JobLost as lost:
                problems.append(str(lost))
                again = "creating another one" if attempt < JOB_ATTEMPTS else "giving up"
                log.info("%s; %s", lost, again)
                continue
            self.job_id = job_id
            seen = SeenIds.for_at_most(self._downloader.lines)
            self._reader = SliceReader(self.settings.slice_size, seen)
            with spool:
                yield from self._reader.read(spool, shown)
            log.info("read %d users from export job %s", self.count, job_id)
            return
        raise ExportJobFailed(
            f"the export job did not deliver the users, {JOB_ATTEMPTS} jobs tried: "
            + "; ".join(problems)
        )

    def _create(self) -> str:
        body = {"format": "json", "fields": [{"name": name} for name in self.settings.fields]}
        pause = self.settings.poll_initial
        while True:
            try:
                job = self._with_retries(self._send, "POST", CREATE_PATH, body)
                break
            except _Busy as busy:
                wait = max(busy.hint or 0.0, pause)
                log.info("too many export jobs are running (429); trying again in %.0f s", wait)
                self._sleep_within(wait, "creating an export job")
                pause = min(pause * 2, self.settings.poll_max)
        job_id = job.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise ExportJobFailed(f"POST {CREATE_PATH} answered a job without an id")
        self.jobs_created += 1
        log.info("created export job %s", job_id)
        return job_id

    def _fetch(self, job_id: str) -> tuple[IO[bytes], str]:
        """The job's file, spooled and checked (LINK_RENEWALS fresh links after a 403,
        DOWNLOAD_ATTEMPTS downloads of a broken file); _JobLost when the job cannot deliver."""
        broken = expired = 0
        pause = self.settings.poll_initial
        while True:
            location = self._location(job_id, pause)
            pause = 0.0  # the job has completed: a fresh link is one poll away
            try:
                return self._downloader.fetch(location), shown_url(location)
            except LinkExpired as error:
                expired += 1
                if expired > LINK_RENEWALS:
                    raise _JobLost(f"{error}, {expired} times") from None
                log.info("%s; asking export job %s for a fresh link", error, job_id)
            except BrokenFile as error:
                broken += 1
                if broken >= DOWNLOAD_ATTEMPTS:
                    raise _JobLost(f"{error} ({broken} downloads)") from None
                log.info("%s; downloading it again", error)
                pause = self.settings.poll_initial

    def _location(self, job_id: str, first_pause: float) -> str:
        """Poll until the job completes: its (fresh) location. _JobLost if it will not."""
        path = f"/api/v2/jobs/{quote(job_id, safe='')}"
        pause, polled = first_pause, 0
        while True:
            self._sleep_within(pause, f"waiting for export job {job_id}")
            job = self._with_retries(self._send, "GET", path, None)
            self.polls, polled = self.polls + 1, polled + 1
            status = job.get("status")
            if status == "completed":
                location = job.get("location")
                if not isinstance(location, str) or not location:
                    raise _JobLost(f"export job {job_id} completed without a location")
                return location
            if status not in RUNNING:
                raise _JobLost(f"export job {job_id} is {status or 'without a status'}")
            pause = self._pause(job, polled)

    def _pause(self, job: dict[str, Any], polled: int) -> float:
        """The pause before the next poll: doubling from poll_initial up to poll_max, or
        Auth0's time_left_seconds when it gives one — but never under half that schedule, so
        a hint stuck at 1 s cannot turn into a poll a second for half an hour."""
        settings = self.settings
        schedule = min(settings.poll_max, settings.poll_initial * 2**polled)
        hint = job.get("time_left_seconds")
        if isinstance(hint, (int, float)) and not isinstance(hint, bool) and hint > 0:
            return max(min(float(hint), settings.poll_max), schedule / 2)
        return schedule

    # --- requests -----------------------------------------------------------------------------

    def _sleep_within(self, seconds: float, what: str) -> None:
        """Sleep, but not past the deadline (which raises once it has passed)."""
        self._deadline.check(what)
        if seconds > 0:
            self._sleep(min(seconds, self._deadline.remaining()))

    def _check_deadline(self, what: str) -> None:
        self._deadline.check(what)

    def _count_download(self) -> None:
        self.stats.add(requests=1)
        self.downloads += 1

    def _with_retries(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call`` with the retry policy, its waits bounded by what is left of the deadline."""
        retry = self.settings.retry
        limit = max(0.0, min(retry.max_total_wait, self._deadline.remaining()))
        bounded = RetrySettings(retry.max_attempts, retry.initial_wait, retry.max_wait, limit)
        retrying: Retrying = retry_policy(
            bounded, sleep=self._sleep, rng=self._rng, on_retry=self._retried
        )
        try:
            return retrying(call, *args)
        except RetryableApiError as error:
            tries = retrying.statistics.get("attempt_number", 1)
            raise ExportJobFailed(f"{error} (gave up after {tries} tries)") from None

    def _retried(self, retry_state: RetryCallState) -> None:
        self.stats.add(retries=1)

    def _send(self, method: str, path: str, body: Any) -> dict[str, Any]:
        """One Management API request: its JSON object, or the error to act on."""
        self.pacer.wait()
        self.stats.add(requests=1)
        try:
            response = self._api.request(method, path, json=body)
        except httpx.TransportError as error:
            raise transport_error(error, f"{method} {path}") from None
        self.pacer.observe(response.headers)
        return self._payload(method, path, response)

    def _payload(self, method: str, path: str, response: httpx.Response) -> dict[str, Any]:
        status, what = response.status_code, f"{method} {path}"
        if status in (200, 201):
            payload = json_or_none(response)
            if not isinstance(payload, dict):
                raise RetryableApiError(f"{what} answered {status} without a JSON object")
            return payload
        if status == 429:
            self.stats.add(rate_limited=1)
            if method == "POST":
                raise _Busy(wait_hint(response))
        retryable = retryable_status_error(response, what)
        if retryable:
            raise retryable
        if status == 401:
            raise ExportNotGranted(
                f"the Management API refused a fresh token for {what} (401 "
                f"{body_text(response)}): its audience must be the tenant's canonical domain "
                f"+ /api/v2/ (now {self.settings.audience}; auth0.management_audience)"
            )
        if status == 403:
            raise ExportNotGranted(
                f"the token lacks the scope {REQUIRED_SCOPE} needed for {what} (403 "
                f"{body_text(response)}): {MANAGEMENT_GRANT_WHERE} {REQUIRED_SCOPE}"
            )
        if status == 404 and method == "GET":
            raise _JobLost(f"{what} answered 404: the job is gone")
        raise ExportJobFailed(f"{what} answered {status}: {body_text(response)}", status=status)


# --- the cross-check against the extension's count --------------------------------------------


@dataclass(frozen=True)
class CountCheck:
    """The export's user count against the extension's ``total`` (``/api/users?per_page=1``)."""

    exported: int
    total: int
    allowed: int  # the difference still taken for sign-ups and deletions during the job

    @property
    def difference(self) -> int:
        return abs(self.exported - self.total)

    @property
    def level(self) -> str:
        """``ok`` (equal), ``warning`` (within the tolerance) or ``error``."""
        if not self.difference:
            return "ok"
        return "warning" if self.difference <= self.allowed else "error"

    @property
    def message(self) -> str:
        counts = f"the export job gave {self.exported} users, the extension counts {self.total}"
        if self.level == "ok":
            return counts
        if self.level == "warning":
            return (
                f"{counts}: a difference of {self.difference}, within the tolerance of "
                f"{self.allowed} (sign-ups or deletions while the job ran)"
            )
        return (
            f"{counts}: a difference of {self.difference} is more than the tolerance of "
            f"{self.allowed} (users.export_tolerance), so the export is not a whole copy; run "
            f"again, or read the users through the extension (users.source = extension)"
        )

    def raise_for_error(self) -> None:
        if self.level == "error":
            raise ApiDataError(self.message)


def compare_counts(
    exported: int, total: int, tolerance: float = 0.005, at_least: int = 10
) -> CountCheck:
    """Allowed: ``tolerance`` of the extension's total, but at least ``at_least`` users."""
    return CountCheck(exported, total, max(at_least, int(tolerance * total)))
