"""The simulator's HTTP server: Auth0's token endpoint and the extension API on one real socket.

Clients are tested against real HTTP (keep-alive, Content-Length, dropped connections, timeouts)
rather than a mocked transport, because that is where retry and paging bugs hide. Shared state
(tenant, tokens, faults, counters) is guarded by one re-entrant lock; sleeps (latency, delay
faults) happen outside it so concurrent clients still overlap.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from . import responses as r
from .faults import Fault, FaultList
from .handler import QuietHandler, serve_in_background, shut_down
from .jobs import ExportJobs
from .jobs import denied as management_denied
from .jobs import not_found as management_error_not_found
from .ratelimit import TokenBucket, limit_headers
from .responses import Reply
from .routes import SEARCH_CAP, answer, find_route, list_users, list_users_uncapped
from .storage import Storage
from .tenant import Tenant
from .tokens import TokenStore
from .truth import truth_as_json

DEFAULT_SCOPES = (
    "read:users",
    "read:groups",
    "read:roles",
    "read:permissions",
    "read:configuration",
)
INVALID_JSON_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>upstream</body>"


@dataclass
class RequestRecord:
    """One request the simulator received. Secrets are not kept: the Authorization header is
    replaced by a fingerprint (same token, same fingerprint) and token request bodies are not
    stored."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    token_fingerprint: str | None = None
    status: int | None = None  # None: the connection was dropped without an answer
    fault: str | None = None  # the kind of injected fault that fired, if any
    at: float = field(default_factory=time.time)


def _fingerprint(secret: str | None) -> str | None:
    """Tells tokens apart in the record without keeping them (None: no token)."""
    return secret and hashlib.sha256(secret.encode()).hexdigest()[:12]


def _redacted(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("<redacted>" if k == "authorization" else v) for k, v in headers.items()}


def _bearer(headers: dict[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None when there is none."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _token_request(headers: dict[str, str], body: bytes) -> dict[str, Any] | Reply:
    """The token request's fields (JSON or form body, client in Basic auth or the body); an
    error Reply when the JSON cannot be read."""
    if "json" in headers.get("content-type", ""):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return r.token_error(400, "invalid_request", "Invalid JSON body")
        if not isinstance(data, dict):
            return r.token_error(400, "invalid_request", "Invalid JSON body")
    else:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        data = {k: v[0] for k, v in form.items()}
    basic = headers.get("authorization", "")
    if basic.lower().startswith("basic ") and "client_id" not in data:
        decoded = base64.b64decode(basic[6:].strip() + "==").decode("utf-8", "replace")
        data["client_id"], _, data["client_secret"] = decoded.partition(":")
    return data


class _Handler(QuietHandler):
    """Hands every request to the Simulator that owns the server."""

    server_version = "authz-sync-simulator"

    def do_GET(self) -> None:
        simulator: Simulator = self.server.simulator  # type: ignore[attr-defined]
        try:
            simulator._handle(self)
        except Exception as exc:  # a handler or before_response bug: answer 500, keep it
            with simulator.lock:
                simulator.errors.append(exc)
            simulator._send(self, r.error(500, "An internal server error occurred"))

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET


class Simulator:
    """A running fake of Auth0 (``POST /oauth/token``) and the Authorization Extension API.

    ``url`` is the Auth0 domain base URL, ``api_url`` the extension API URL. Use as a context
    manager or call ``start()``/``stop()``. Knobs (``latency``, ``rate_limit``, ``scopes``...)
    are plain attributes that may be changed while it runs. ``before_response(record)`` runs
    with ``lock`` held just before an authorized API answer is computed (tests use it to change
    the tenant mid-sync); other threads should mutate the tenant under ``lock`` too.
    """

    def __init__(
        self,
        tenant: Tenant,
        *,
        client_id: str = "authz-sync-demo",
        client_secret: str = "demo-secret",
        audience: str = "urn:auth0-authz-api",
        scopes: Iterable[str] = DEFAULT_SCOPES,
        management_scopes: Iterable[str] | None = None,
        token_lifetime: float = 86400,
        latency: float = 0.0,
        rate_limit: float | None = None,
        rate_limit_burst: int = 10,
        retry_after_header: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        search_cap: int | None = SEARCH_CAP,
    ) -> None:
        self.tenant = tenant
        # The client the token endpoint knows, and what its tokens grant.
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.scopes = tuple(scopes)
        # The client's grant on the Management API (None: no grant, /oauth/token answers 403).
        self.management_scopes = None if management_scopes is None else tuple(management_scopes)
        self.token_lifetime = token_lifetime
        # How the API answers: may be changed while it runs.
        self.latency = latency
        self.rate_limit = rate_limit
        self.rate_limit_burst = rate_limit_burst
        self.retry_after_header = retry_after_header
        # Where it listens.
        self.host = host
        self.port = port
        self.tls = tls  # a server-side context: serve https (to test certificate checks)
        # Auth0 pages through the first 1000 results of a user search only; None lifts the cap
        # for a client that cannot slice the tenant (the dlt benchmark). Not Auth0's behaviour.
        self.search_cap = search_cap
        self._orders: dict[tuple[str, str], list[dict[str, Any]]] = {}  # uncapped listings
        self._init_state()

    def _init_state(self) -> None:
        """What the running server accumulates: requests, tokens, faults, the socket."""
        self.before_response: Callable[[RequestRecord], None] | None = None
        self.lock = threading.RLock()
        self.requests: list[RequestRecord] = []
        self.rate_limited = 0
        self.errors: list[BaseException] = []  # exceptions raised while answering (tests check)
        self.max_recorded = 200_000  # a long ``simulate`` run keeps only the recent requests
        self._tokens = TokenStore()
        self.storage = Storage(tls=self.tls)  # where finished export jobs' files are downloaded
        self.jobs = ExportJobs(self.storage)  # the Management API's export jobs (jobs.py)
        self._faults = FaultList()
        self._bucket: TokenBucket | None = None
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind (port 0 = any free port) and serve from a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.simulator = self  # type: ignore[attr-defined]
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = serve_in_background(server)
        self.storage.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; sleeping requests are woken up."""
        self._stopping.set()
        shut_down(self._server, self._thread)
        self._server = self._thread = None
        self.storage.stop()

    def serve_forever(self) -> None:
        """Start if needed and block until ``stop()`` or Ctrl-C (for a CLI command)."""
        self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the simulated Auth0 domain (the token endpoint is ``url + /oauth/token``)."""
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The extension API URL, as shown in the extension's settings."""
        return self.url + "/api"

    @property
    def management_audience(self) -> str:
        """The Management API's audience: the simulated tenant's own URL + ``/api/v2/``."""
        return self.url + "/api/v2/"

    # --- test controls ------------------------------------------------------------------------

    @property
    def tokens_issued(self) -> int:
        """How many tokens ``/oauth/token`` (or ``issue_token``) handed out."""
        return self._tokens.issued

    def issue_token(
        self,
        scopes: Iterable[str] | None = None,
        lifetime: float | None = None,
        audience: str | None = None,
    ) -> str:
        """A token without going through HTTP, e.g. one with fewer scopes (audience: the
        extension's unless given)."""
        with self.lock:
            return self._tokens.issue(
                issuer=f"http://{self.host}:{self.port}/",
                client_id=self.client_id,
                audience=self.audience if audience is None else audience,
                scopes=self.scopes if scopes is None else tuple(scopes),
                lifetime=self.token_lifetime if lifetime is None else lifetime,
            )

    def issued_tokens(self) -> list[str]:
        """Every token value issued so far: tests search all output for them."""
        with self.lock:
            return self._tokens.values()

    def expire_tokens(self) -> None:
        """Every token issued so far answers 401 Invalid credentials from now on."""
        with self.lock:
            self._tokens.expire_all()

    def add_fault(
        self,
        path_pattern: str,
        kind: str,
        *,
        times: int | None = 1,
        after: int = 0,
        status: int | None = None,
        body: Any = None,
        delay: float | None = None,
        method: str | None = "GET",
        retry_after_header: bool = True,
        retry_after: int = 1,
    ) -> Fault:
        """Inject a failure on requests whose raw path matches the regex (see faults.py).

        kinds: "status", "delay", "drop", "truncate", "invalid_json", "rate_limit". Returns
        the Fault, whose ``seen``/``fired`` counters tests can read. ``method`` defaults to
        GET: pass method="POST" to hit ``/oauth/token``, None for any method."""
        fault = Fault(
            re.compile(path_pattern), kind, times, after, status, body, delay, method,
            retry_after_header, retry_after,
        )  # fmt: skip
        with self.lock:
            return self._faults.add(fault)

    def api_requests(self, path_regex: str = r"^/api/") -> list[RequestRecord]:
        """Recorded requests whose raw path matches, e.g. to count calls per endpoint."""
        pattern = re.compile(path_regex)
        with self.lock:
            return [x for x in self.requests if pattern.search(x.path)]

    def truth(self) -> dict[str, list[dict[str, Any]]]:
        """The ground truth of the current tenant (JSON-safe, as ``/_sim/truth`` serves it)."""
        with self.lock:
            return truth_as_json(self.tenant)

    # --- request handling ---------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw_path, _, query_string = handler.path.partition("?")
        query = {k: v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        method = handler.command

        if raw_path.startswith("/_sim/"):
            self._send(handler, self._internal(raw_path))
            return

        token = _bearer(headers)
        record = RequestRecord(method, raw_path, query, _redacted(headers), _fingerprint(token))
        fault = self._record(record)
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "delay":
                self._stopping.wait(fault.delay or 0)
            else:
                self._apply_fault(handler, fault, record)
                return

        if raw_path == "/oauth/token" and method == "POST":
            reply = self._token(headers, body)
        elif raw_path.startswith("/api/v2/"):
            if self.latency:
                self._stopping.wait(self.latency)
            reply = self._management(method, raw_path, body, token)
        elif raw_path == "/api" or raw_path.startswith("/api/"):
            if self.latency:
                self._stopping.wait(self.latency)
            reply = self._api(method, raw_path, query, token, record)
        else:
            reply = r.route_not_found()
        record.status = reply.status
        self._send(handler, reply)

    def _record(self, record: RequestRecord) -> Fault | None:
        """Keep the request (the recent ones only) and pick the fault it triggers, if any."""
        with self.lock:
            if len(self.requests) >= self.max_recorded:
                del self.requests[: len(self.requests) // 2]
            self.requests.append(record)
            return self._faults.pick(record.method, record.path)

    def _internal(self, path: str) -> Reply:
        """``/_sim/health`` and ``/_sim/truth``: no auth, not recorded, never faulted."""
        if path == "/_sim/health":
            return Reply(200, {"status": "ok"})
        if path == "/_sim/truth":
            return Reply(200, self.truth())
        return r.route_not_found()

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        token: str | None,
        record: RequestRecord,
    ) -> Reply:
        segments = [unquote(s) for s in path[len("/api/") :].split("/")]
        found = find_route(segments)
        if found is None or method not in ("GET", "HEAD"):
            return r.route_not_found()
        route, params = found
        if token is None:
            return r.missing_authentication()
        with self.lock:
            issued = self._tokens.check(token)
            if issued is None or issued.audience != self.audience:
                return r.invalid_credentials()
            if route.scope not in issued.scopes:
                return r.insufficient_scope()
            limited = self._take_rate_token()
            if limited is not None and limited.status == 429:
                self.rate_limited += 1
                return limited
            if self.before_response is not None:
                self.before_response(record)
            if route.handler is list_users and self.search_cap != SEARCH_CAP:
                reply = list_users_uncapped(self.tenant, query, self.search_cap, self._orders)
            else:
                reply = answer(route, self.tenant, params, query)
            reply.body = reply.payload()  # serialize now: the tenant may change after unlock
        if limited is not None:
            reply.headers.update(limited.headers)
        return reply

    def _management(self, method: str, path: str, body: bytes, token: str | None) -> Reply:
        """The Management API's export jobs (jobs.py), behind its token check and the tenant's
        rate limit."""
        found = self.jobs.route(method, path)
        if found is None:
            return management_error_not_found()
        handler, scopes = found
        with self.lock:
            issued = self._tokens.check(token) if token else None
            refused = management_denied(token, issued, self.management_audience, scopes)
            if refused is not None:
                return refused
            limited = self._take_rate_token()
            if limited is not None and limited.status == 429:
                self.rate_limited += 1
                return limited
            reply = handler(self.tenant, body)
        if limited is not None:
            reply.headers.update(limited.headers)
        return reply

    def _take_rate_token(self) -> Reply | None:
        """None when rate limiting is off; else a 429 Reply or a 200 stub carrying headers."""
        if not self.rate_limit:
            self._bucket = None
            return None
        bucket = self._bucket
        if bucket is None or (bucket.rate, bucket.burst) != (
            self.rate_limit,
            self.rate_limit_burst,
        ):
            bucket = self._bucket = TokenBucket(self.rate_limit, self.rate_limit_burst)
        allowed, headers = bucket.take(self.retry_after_header)
        if allowed:
            return Reply(200, None, headers)
        reply = r.too_many_requests()
        reply.headers.update(headers)
        return reply

    def _token(self, headers: dict[str, str], body: bytes) -> Reply:
        """The client-credentials grant, with Auth0's error answers."""
        data = _token_request(headers, body)
        if isinstance(data, Reply):
            return data
        refused = self._refuse_grant(data)
        if refused is not None:
            return refused
        audience = str(data["audience"])
        scopes = self.management_scopes if audience == self.management_audience else self.scopes
        body_out = {
            "access_token": self.issue_token(scopes, audience=audience),
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime),
            "scope": " ".join(scopes),
        }
        return Reply(200, body_out, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _refuse_grant(self, data: dict[str, Any]) -> Reply | None:
        """Auth0's answer to a token request it refuses; None when it grants the token."""
        grant = data.get("grant_type")
        if not grant:
            return r.token_error(400, "invalid_request", "Missing required parameter: grant_type")
        if grant != "client_credentials":
            message = f"Grant type '{grant}' not allowed for the client."
            return r.token_error(403, "unauthorized_client", message)
        secret_ok = hmac.compare_digest(
            str(data.get("client_secret", "")).encode(), self.client_secret.encode()
        )
        if data.get("client_id") != self.client_id or not secret_ok:
            return r.token_denied()
        audience = data.get("audience")
        if not audience:
            message = (
                "No audience parameter was provided, and no default audience has been configured"
            )
            return r.token_error(403, "access_denied", message)
        granted = audience == self.audience or (
            audience == self.management_audience and self.management_scopes is not None
        )
        if not granted:
            return r.token_wrong_audience(str(audience))
        return None

    def _apply_fault(
        self, handler: BaseHTTPRequestHandler, fault: Fault, record: RequestRecord
    ) -> None:
        """Act out a fault other than "delay" (which only sleeps before a normal answer)."""
        if fault.kind == "drop":
            handler.close_connection = True
            return
        if fault.kind == "status":
            status = fault.status or 503
            body = r.default_fault_body(status) if fault.body is None else fault.body
            reply = Reply(status, body)
        elif fault.kind == "invalid_json":
            reply = Reply(200, INVALID_JSON_BODY if fault.body is None else fault.body)
        elif fault.kind == "rate_limit":
            reply = r.too_many_requests()
            limit = self.rate_limit_burst
            reply.headers.update(limit_headers(limit, 0, time.time() + fault.retry_after))
            if fault.retry_after_header:
                reply.headers["Retry-After"] = str(fault.retry_after)
            with self.lock:
                self.rate_limited += 1
        else:  # truncate: announce the whole body, send half of it, hang up
            payload = json.dumps({"users": [], "filler": "x" * 2048}).encode()
            if fault.body is not None:
                payload = Reply(200, fault.body).payload()
            record.status = 200
            self._send(handler, Reply(200, payload), cut=len(payload) // 2)
            return
        record.status = reply.status
        self._send(handler, reply)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply, cut: int | None = None) -> None:
        """Write a reply; ``cut`` stops after that many body bytes and closes the connection."""
        payload = reply.payload()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            if cut is not None:
                handler.send_header("Connection", "close")
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(payload if cut is None else payload[:cut])
            handler.wfile.flush()
        except OSError:  # the client went away (timeout, reset): nothing left to tell it
            pass
        if cut is not None:
            handler.close_connection = True


def serve_forever(sim: Simulator) -> None:
    """Run a simulator until Ctrl-C (what ``authz-sync simulate`` needs)."""
    sim.serve_forever()
