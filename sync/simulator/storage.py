"""The storage host that serves export files: pre-signed links, on a host name and port of its own.

Auth0 hands a finished export job's file out as a pre-signed link on another host (CloudFront in
front of S3: ``?Expires=…&Key-Pair-Id=…&Signature=…``). Like that host, this one checks the
link's signature and expiry, refuses a request that also carries an ``Authorization`` header (S3:
"Only one auth mechanism allowed"), and can be told to fail the way downloads fail: a file cut
short, a file whose gzip is corrupt, an expired link, a busy host. It is addressed as
``localhost`` while the simulated Auth0 is ``127.0.0.1``, so a client that sends its token to
"the same host" is caught too.
"""

from __future__ import annotations

import math
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from .handler import QuietHandler, serve_in_background, shut_down

KINDS = frozenset({"truncated", "cut", "corrupt", "expired", "unavailable"})
KEY_PAIR_ID = "APKASIMULATOR7EXAMPLE"
XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message></Error>"
)
TWO_AUTH = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
    "query string parameter or the Authorization header should be specified"
)


@dataclass
class Link:
    """One pre-signed link: the file it opens and when it stops working (``expires`` is what
    the URL shows, whole seconds; ``expires_at`` the precise instant this host enforces)."""

    path: str
    expires: int
    expires_at: float


@dataclass
class DownloadRecord:
    """A request the storage host received (the query, which holds the signature, is not kept)."""

    method: str
    path: str
    authorization: bool  # whether the request carried an Authorization header
    status: int | None = None  # None: the body was cut and the connection closed
    fault: str | None = None
    at: float = field(default_factory=time.time)


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/xml"
    cut: int | None = None  # send only this many body bytes, then hang up


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, XML.format(code=code, message=message).encode())


class _Handler(QuietHandler):
    server_version = "AmazonS3"

    def do_GET(self) -> None:
        storage: Storage = self.server.storage  # type: ignore[attr-defined]
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        _write(self, storage.answer(self.command, self.path, headers))

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET


def _write(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
    try:
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        handler.send_header("Content-Length", str(len(answer.body)))
        if answer.cut is not None:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            body = answer.body if answer.cut is None else answer.body[: answer.cut]
            handler.wfile.write(body)
        handler.wfile.flush()
    except OSError:  # the client went away
        pass
    if answer.cut is not None:
        handler.close_connection = True


class Storage:
    """Files by path, the links signed for them, and the server that hands them out.

    Locked by its own lock (the simulator may hold its lock while it puts a file or signs a
    link; this class never takes the simulator's lock, so the order is always the same)."""

    def __init__(self, host: str = "127.0.0.1", name: str = "localhost", tls=None) -> None:
        self.host, self.name = host, name
        self.tls: ssl.SSLContext | None = tls
        self.port = 0
        self.files: dict[str, bytes] = {}
        self.requests: list[DownloadRecord] = []
        self.links_signed = 0
        self._links: dict[str, Link] = {}  # by signature
        self._faults: list[str] = []  # kinds of the next downloads to break, in order
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            return
        server = ThreadingHTTPServer((self.host, 0), _Handler)
        server.daemon_threads = True
        server.storage = self  # type: ignore[attr-defined]
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server, self.port = server, server.server_address[1]
        self._thread = serve_in_background(server)

    def stop(self) -> None:
        shut_down(self._server, self._thread)
        self._server = self._thread = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.name}:{self.port}"

    # --- files and links ----------------------------------------------------------------------

    def put(self, path: str, data: bytes) -> None:
        with self._lock:
            self.files[path] = data

    def delete(self, path: str) -> None:
        with self._lock:
            self.files.pop(path, None)

    def sign(self, path: str, lifetime: float) -> str:
        """A fresh pre-signed URL for the file, valid for ``lifetime`` seconds from now."""
        now = time.time()
        signature = secrets.token_urlsafe(48)
        link = Link(path, math.ceil(now + lifetime), now + lifetime)
        with self._lock:
            self._links[signature] = link
            self.links_signed += 1
        query = f"Expires={link.expires}&Key-Pair-Id={KEY_PAIR_ID}&Signature={signature}"
        return f"{self.url}{path}?{query}"

    def expire_links(self) -> None:
        """Every link signed so far answers 403 from now on."""
        with self._lock:
            for link in self._links.values():
                link.expires_at = 0.0

    def break_next(self, kind: str, times: int = 1) -> None:
        """Break the next ``times`` downloads that would succeed: ``truncated`` (half the file,
        with a Content-Length that matches it), ``cut`` (the whole length announced, half sent,
        connection closed), ``corrupt`` (bytes in the middle of the gzip changed), ``expired``
        (403 as for an expired link), ``unavailable`` (503 Slow Down)."""
        if kind not in KINDS:
            raise ValueError(f"unknown download fault {kind!r}; one of {sorted(KINDS)}")
        with self._lock:
            self._faults.extend([kind] * times)

    # --- serving ------------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        path, _, query_string = target.partition("?")
        record = DownloadRecord(method, path, "authorization" in headers)
        with self._lock:
            self.requests.append(record)
            answer = self._answer(method, path, query_string, record)
        record.status = None if answer.cut is not None else answer.status
        return answer

    def _answer(self, method: str, path: str, query_string: str, record: DownloadRecord) -> Answer:
        if method not in ("GET", "HEAD"):
            return _error(405, "MethodNotAllowed", "The specified method is not allowed")
        if record.authorization:
            return _error(400, "InvalidArgument", TWO_AUTH)
        denied = self._check_link(path, query_string)
        if denied is not None:
            return denied
        data = self.files.get(path)
        if data is None:
            return _error(404, "NoSuchKey", "The specified key does not exist.")
        fault = self._faults.pop(0) if self._faults else None
        record.fault = fault
        return _faulted(data, fault)

    def _check_link(self, path: str, query_string: str) -> Answer | None:
        query = {k: v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
        link = self._links.get(query.get("Signature", ""))
        if (
            link is None
            or link.path != path
            or query.get("Expires") != str(link.expires)
            or query.get("Key-Pair-Id") != KEY_PAIR_ID
        ):
            return _error(403, "AccessDenied", "Access denied")
        if time.time() >= link.expires_at:
            return _error(403, "AccessDenied", "Request has expired")
        return None


def _faulted(data: bytes, fault: str | None) -> Answer:
    """The file as a download answers it, broken as ``fault`` says."""
    if fault == "expired":
        return _error(403, "AccessDenied", "Request has expired")
    if fault == "unavailable":
        return _error(503, "SlowDown", "Please reduce your request rate.")
    if fault == "truncated":
        data = data[: len(data) // 2]
    elif fault == "corrupt":
        middle = len(data) // 2
        data = (
            data[:middle]
            + bytes(b ^ 0x5A for b in data[middle : middle + 64])
            + data[middle + 64 :]
        )
    cut = len(data) // 2 if fault == "cut" else None
    return Answer(200, data, "application/gzip", cut)
