"""Auth0's Management API bulk user export jobs: create, poll, and the file a finished job leaves.

``POST /api/v2/jobs/users-exports`` makes a job; ``GET /api/v2/jobs/{id}`` answers ``pending``,
then ``processing`` (with ``percentage_done`` and ``time_left_seconds``), then ``completed`` with
a fresh pre-signed ``location`` on the storage host at every poll (storage.py), or ``failed`` /
``expired``. A job finishes after a number of unfinished answers and a minimum age (knobs), so
tests step through its states without waiting. More unfinished jobs than ``max_concurrent``
answer 429, as Auth0 does for import jobs. Errors have the Management API's shape
``{"statusCode","error","message","errorCode"}``.

The file is gzip-compressed newline-delimited JSON (or CSV) of the tenant's users as they are
when the job completes, with exactly the requested fields; a field a user lacks is left out of
that line. ``created_at`` comes from the tenant, ``updated_at`` is the later of it and
``last_login`` (a login updates a user in Auth0).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import secrets
import string
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from .ratelimit import limit_headers
from .responses import Reply
from .storage import Storage
from .tenant import Json, Tenant
from .timefmt import format_auth0, instant

JOB_ID = re.compile(r"^job_[A-Za-z0-9]{16}$")
CONNECTION_ID = re.compile(r"^con_[A-Za-z0-9]{16}$")
FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?)*$")
BODY_KEYS = frozenset({"connection_id", "format", "limit", "fields"})
CSV_MAX_FIELDS = 30
DEFAULT_FIELDS = ("user_id", "email", "name")  # what the docs leave open: an assumption
FINISHED = frozenset({"completed", "failed", "expired"})
OUTCOMES = FINISHED
READ_SCOPES = ("read:users",)
POLL_SCOPES = ("create:users", "read:users")
_JOB_PATH = re.compile(r"^/api/v2/jobs/([^/]+)$")
TENANT_NAME = "sim-tenant"
_ALPHANUMERIC = string.ascii_letters + string.digits
_MISSING = object()

Handler = Callable[[Tenant, bytes], Reply]


def management_error(status: int, message: str, code: str) -> Reply:
    body = {
        "statusCode": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
        "errorCode": code,
    }
    return Reply(status, body)


def not_found() -> Reply:
    return management_error(404, "Not Found", "not_found")


def invalid_body(message: str) -> Reply:
    return management_error(400, f"Payload validation error: {message}", "invalid_body")


def connection_id(name: str) -> str:
    """The id the simulated tenant gives a connection (stable: derived from its name)."""
    return "con_" + hashlib.sha256(name.encode()).hexdigest()[:16]


@dataclass
class Job:
    """One export job and how far it has got."""

    id: str
    format: str
    fields: list[Json]
    created_at: str
    started: float
    limit: int | None = None
    connection_id: str | None = None
    connection: str | None = None
    outcome: str = "completed"  # the state it ends in
    status: str = "pending"
    unfinished_answers: int = 0  # polls answered pending/processing so far
    left_out: int = 0  # the tenant's last users missing from the file (ExportJobs.leave_out)

    @property
    def file_path(self) -> str:
        return f"/{TENANT_NAME}/{self.id}/{TENANT_NAME}.{self.format}.gz"

    def public(self) -> Json:
        """The job as the API shows it (without the location, which each poll signs anew)."""
        body: Json = {"type": "users_export", "status": self.status, "format": self.format}
        if self.connection_id is not None:
            body |= {"connection_id": self.connection_id, "connection": self.connection}
        if self.limit is not None:
            body["limit"] = self.limit
        return body | {"fields": self.fields, "created_at": self.created_at, "id": self.id}


@dataclass
class ExportJobs:
    """The jobs of the simulated tenant and the knobs tests turn. Not locked itself: the
    Simulator serializes access (the storage host has a lock of its own)."""

    storage: Storage
    polls_until_done: int = 2  # answers pending/processing before a job finishes
    seconds_until_done: float = 0.0  # … and the age it must reach
    max_concurrent: int = 2  # unfinished jobs; one more answers 429
    link_lifetime: float = 60.0  # seconds a location stays valid
    busy_retry_after: int = 1  # X-RateLimit-Reset of that 429, seconds ahead
    leave_out: int = 0  # users the next files miss (an export behind the tenant's count)
    jobs: dict[str, Job] = field(default_factory=dict)
    created: int = 0
    _outcomes: list[str] = field(default_factory=list)  # what the next jobs end in

    # --- test controls ------------------------------------------------------------------------

    def fail_next(self, times: int = 1) -> None:
        """The next ``times`` jobs created end ``failed``."""
        self._outcomes.extend(["failed"] * times)

    def expire_next(self, times: int = 1) -> None:
        """The next ``times`` jobs created end ``expired`` (their data deleted)."""
        self._outcomes.extend(["expired"] * times)

    def set_outcome(self, job_id: str, outcome: str) -> None:
        """How one job ends; on a finished job it takes effect at once (``expired`` deletes
        its file, as Auth0 does after 24 hours)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; one of {sorted(OUTCOMES)}")
        job = self.jobs[job_id]
        job.outcome = outcome
        if job.status in FINISHED:
            job.status = outcome
            if outcome != "completed":
                self.storage.delete(job.file_path)

    def finish(self, tenant: Tenant, job_id: str) -> None:
        """Let a job finish now, polled or not."""
        self._finish(tenant, self.jobs[job_id])

    def unfinished(self) -> list[Job]:
        """Jobs still running: not finished, and not due to finish at their next poll."""
        return [j for j in self.jobs.values() if j.status not in FINISHED and not self._due(j)]

    # --- the API ------------------------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[Handler, tuple[str, ...]] | None:
        """The handler of a Management API path and the scopes that allow it (any one)."""
        if path == "/api/v2/jobs/users-exports" and method == "POST":
            return (lambda tenant, body: self.create(tenant, body)), READ_SCOPES
        found = _JOB_PATH.match(path)
        if found and method in ("GET", "HEAD"):
            job_id = unquote(found.group(1))
            return (lambda tenant, _: self.poll(tenant, job_id)), POLL_SCOPES
        return None

    def create(self, tenant: Tenant, raw_body: bytes) -> Reply:
        """``POST /api/v2/jobs/users-exports``."""
        try:
            body = json.loads(raw_body or b"{}")
        except ValueError:
            return management_error(400, "Invalid request payload JSON format", "invalid_json")
        problem = _body_problem(body)
        if problem:
            return invalid_body(problem)
        connection = None
        if "connection_id" in body:
            connection = _connection_name(tenant, body["connection_id"])
            if connection is None:
                return management_error(
                    404, "The connection does not exist", "inexistent_connection"
                )
        if len(self.unfinished()) >= self.max_concurrent:
            return self._busy()
        job = self._new_job(body, connection)
        self.jobs[job.id] = job
        return Reply(201, job.public())

    def poll(self, tenant: Tenant, job_id: str) -> Reply:
        """``GET /api/v2/jobs/{id}``: the job's state; a completed job with a fresh link."""
        if not JOB_ID.match(job_id):
            pattern = JOB_ID.pattern
            message = f"Path validation error: 'String does not match pattern {pattern}' on id"
            return management_error(400, message, "invalid_uri")
        job = self.jobs.get(job_id)
        if job is None:
            return management_error(404, "The job does not exist.", "inexistent_job")
        if job.status not in FINISHED:
            if self._due(job):
                self._finish(tenant, job)
            else:
                return Reply(200, self._progress(job))
        body = job.public()
        if job.status == "completed":
            body["location"] = self.storage.sign(job.file_path, self.link_lifetime)
        return Reply(200, body)

    # --- helpers ------------------------------------------------------------------------------

    def _busy(self) -> Reply:
        message = (
            f"There are {len(self.unfinished())} active export users jobs, please wait until "
            f"some of them are finished and try again"
        )
        reply = management_error(429, message, "too_many_requests")
        reset = time.time() + self.busy_retry_after
        reply.headers.update(limit_headers(self.max_concurrent, 0, reset))
        return reply

    def _new_job(self, body: Json, connection: str | None) -> Job:
        fields = body.get("fields") or [{"name": name} for name in DEFAULT_FIELDS]
        now = time.time()
        job = Job(
            id="job_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16)),
            format=body.get("format", "csv"),
            fields=fields,
            created_at=format_auth0(datetime.fromtimestamp(now, timezone.utc)),
            started=now,
            limit=body.get("limit"),
            connection_id=body.get("connection_id"),
            connection=connection,
            left_out=self.leave_out,
        )
        if self._outcomes:
            job.outcome = self._outcomes.pop(0)
        self.created += 1
        return job

    def _due(self, job: Job) -> bool:
        old_enough = time.time() - job.started >= self.seconds_until_done
        return old_enough and job.unfinished_answers >= self.polls_until_done

    def _progress(self, job: Job) -> Json:
        job.unfinished_answers += 1
        job.status = "pending" if job.unfinished_answers == 1 else "processing"
        body = job.public()
        if job.status == "processing":
            steps = max(self.polls_until_done, 1)
            body["percentage_done"] = min(99, 100 * (job.unfinished_answers - 1) // steps)
            left = self.seconds_until_done - (time.time() - job.started)
            body["time_left_seconds"] = max(1, math.ceil(left))
        return body

    def _finish(self, tenant: Tenant, job: Job) -> None:
        job.status = job.outcome
        if job.outcome == "completed":
            self.storage.put(job.file_path, export_file(tenant, job))


def _body_problem(body: Any) -> str | None:
    """What is wrong with a create body, in the words of Auth0's validator; None if nothing."""
    if not isinstance(body, dict):
        return "'Expected type object but found type " + type(body).__name__ + "'"
    extra = sorted(set(body) - BODY_KEYS)
    if extra:
        return f"'Additional properties not allowed: {', '.join(extra)}'"
    if "format" in body and body["format"] not in ("json", "csv"):
        return (
            f"'Invalid value {json.dumps(body['format'])}' on property format (The format of "
            f'the file. Valid values are: "json" and "csv".).'
        )
    if "limit" in body and (
        not isinstance(body["limit"], int) or isinstance(body["limit"], bool) or body["limit"] < 1
    ):
        return "'Expected an integer of at least 1' on property limit"
    if "connection_id" in body and not (
        isinstance(body["connection_id"], str) and CONNECTION_ID.match(body["connection_id"])
    ):
        return f"'String does not match pattern {CONNECTION_ID.pattern}' on property connection_id"
    return _fields_problem(body.get("fields"), body.get("format", "csv"))


def _fields_problem(fields: Any, file_format: str) -> str | None:
    if fields is None:
        return None
    if not isinstance(fields, list) or not fields:
        return "'Expected a non-empty array' on property fields"
    for item in fields:
        if (
            not isinstance(item, dict)
            or set(item) - {"name", "export_as"}
            or not isinstance(item.get("name"), str)
            or not FIELD_PATH.match(item["name"])
            or not isinstance(item.get("export_as", ""), str)
        ):
            return f"'Invalid field {json.dumps(item)[:80]}' on property fields"
    if file_format == "csv":
        if len(fields) > CSV_MAX_FIELDS:
            return f"'Too many fields: at most {CSV_MAX_FIELDS} in CSV' on property fields"
        if any(item["name"] in ("app_metadata", "user_metadata") for item in fields):
            return "'app_metadata and user_metadata cannot be exported whole to CSV' on fields"
    return None


def _connection_name(tenant: Tenant, wanted: str) -> str | None:
    names = {
        identity.get("connection")
        for user in tenant.users.values()
        for identity in user.get("identities") or []
    }
    return next((n for n in names if isinstance(n, str) and connection_id(n) == wanted), None)


# --- the file ---------------------------------------------------------------------------------


def _lookup(record: Json, path: str) -> Any:
    """``identities[0].connection`` and the like; _MISSING when any step is absent."""
    value: Any = record
    for step in path.split("."):
        name, _, index = step.partition("[")
        if not isinstance(value, dict) or name not in value:
            return _MISSING
        value = value[name]
        if index:
            position = int(index.rstrip("]"))
            if not isinstance(value, list) or position >= len(value):
                return _MISSING
            value = value[position]
    return value


def _updated_at(created: str | None, user: Json) -> str | None:
    last = user.get("last_login")
    if created is None or (last and _later(last, created)):
        return last
    return created


def _later(one: str, other: str) -> bool:
    if len(one) == len(other) and one.endswith("Z") and other.endswith("Z"):
        return one > other  # one format: the strings sort as the instants do
    return instant(one) > instant(other)


def exported_users(tenant: Tenant, job: Job) -> Iterator[Json]:
    """The users a job exports, each with exactly the requested fields it has."""
    plain = [(f["name"], f.get("export_as") or f["name"]) for f in job.fields]
    count, last = 0, len(tenant.users) - job.left_out
    for user_id, user in tenant.users.items():
        if (job.limit is not None and count >= job.limit) or count >= last:
            return
        identities = user.get("identities") or [{}]
        if job.connection is not None and identities[0].get("connection") != job.connection:
            continue
        created = tenant.created_at.get(user_id)
        line = {}
        for name, column in plain:
            if name == "created_at":
                value = created
            elif name == "updated_at":
                value = _updated_at(created, user)
            elif "." in name or "[" in name:
                value = _lookup(user, name)
            else:
                value = user.get(name)
            if value is not _MISSING and value is not None:
                line[column] = value
        count += 1
        yield line


def export_file(tenant: Tenant, job: Job) -> bytes:
    """The job's file: gzip of NDJSON (or CSV with a header row), compressed as it is built
    so a million users never sit in memory as text."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    parts: list[bytes] = []
    batch: list[str] = []
    for text in _lines(tenant, job):
        batch.append(text)
        if len(batch) >= 1000:
            parts.append(packer.compress("".join(batch).encode()))
            batch.clear()
    parts.append(packer.compress("".join(batch).encode()))
    parts.append(packer.flush())
    return b"".join(parts)


def _lines(tenant: Tenant, job: Job) -> Iterator[str]:
    if job.format == "json":
        for line in exported_users(tenant, job):
            yield json.dumps(line, ensure_ascii=False) + "\n"
        return
    columns = [item.get("export_as") or item["name"] for item in job.fields]
    yield _csv_line(columns)
    for line in exported_users(tenant, job):
        yield _csv_line([_csv_cell(line.get(column)) for column in columns])


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# --- access -----------------------------------------------------------------------------------


def denied(token: str | None, issued: Any, audience: str, scopes: tuple[str, ...]) -> Reply | None:
    """The Management API's 401/403 for a request, or None when the token may make it.

    ``issued`` is what the token store knows about the token (None: unknown or expired)."""
    if token is None:
        return management_error(401, "Missing authentication", "missing_authentication")
    if issued is None:
        return management_error(401, "Invalid token", "invalid_token")
    if issued.audience != audience:
        return management_error(401, f"Bad audience: {issued.audience}", "invalid_token")
    if not set(scopes) & issued.scopes:
        message = f"Insufficient scope, expected any of: {','.join(scopes)}"
        return management_error(403, message, "insufficient_scope")
    return None
