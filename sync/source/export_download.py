"""The export job's file: fetched from its pre-signed location without credentials, checked
whole, then read back as slices of users.

The location is a link on a storage host, signed in its query (``?Expires=…&Key-Pair-Id=…&
Signature=…``), valid for about a minute. So:
- the request goes through a client of its own that has no auth: no token, no secret, ever
  (the storage host rejects a second credential, and the token is for Auth0's host only);
- only https, or http to a loopback address (tests); TLS verified with the job's CA setting;
  a redirect is followed only to the same scheme, host and port;
- the link's query is a secret: messages show ``scheme://host/path?…`` and the signature is
  registered with redact.py, which masks it in every log line.

The file is spooled to an anonymous temporary file while its gzip stream is checked (CRC and
length in the trailer): a truncated or corrupt file is known before a single user is handed
on, so a second download can replace it without the caller having stored half of the first.
Memory holds one chunk; the disk holds the compressed file until the slices are read.
Then the spooled file is gunzipped again, split into lines and parsed line by line into
slices of at most 1000 users (user_id → user), de-duplicated by user_id across the file in
8 bytes a user (seen_ids.py, sized from the lines the check counted, so it never grows):
memory holds one slice and that table.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

import httpx

from sync.config import is_loopback
from sync.errors import ApiDataError, ApiError, ExportJobFailed
from sync.redact import RedactingFilter, register_secret
from sync.source.answers import transport_error
from sync.source.seen_ids import SeenIds

log = logging.getLogger(__name__)

CHUNK = 1 << 16
GZIP_WBITS = 47  # 32 + 15: accept a gzip (or zlib) header, with the largest window
GZIP_MAGIC = b"\x1f\x8b"
MAX_REDIRECTS = 3
SLICE_SIZE = 1000
# Identity provider tokens have no place in the database; /api/users never carries them.
IDP_TOKEN_KEYS = ("access_token", "access_token_secret", "refresh_token")

User = dict[str, Any]


class BrokenFile(ExportJobFailed):
    """The download did not deliver the whole, intact file (cut, truncated, corrupt, 5xx)."""


class LinkExpired(ExportJobFailed):
    """The storage host answered 403: the link expired (a poll gives a fresh one)."""


def shown_url(url: httpx.URL | str) -> str:
    """The URL without its query (the signature) or user info: safe for messages."""
    url = httpx.URL(str(url))
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}{'?…' if url.query else ''}"


def checked_location(location: Any) -> httpx.URL:
    """The job's location as a URL we may fetch without credentials; ExportJobFailed if not."""
    if not isinstance(location, str) or not location:
        raise ExportJobFailed("the export job completed without a location to download from")
    try:
        url = httpx.URL(location)
    except httpx.InvalidURL:
        raise ExportJobFailed("the export job's location is not a URL") from None
    _register(url)
    secure = url.scheme == "https" or (url.scheme == "http" and is_loopback(url.host))
    if not secure or not url.host or url.userinfo:
        raise ExportJobFailed(
            f"refusing to download the export file from {shown_url(url)}: only https "
            f"locations (plain http to this machine only) without user info are fetched"
        )
    return url


def _register(url: httpx.URL) -> None:
    """Teach redact.py the link's secrets, so no log line can show them."""
    query = url.query.decode()
    register_secret(query)
    for name, value in url.params.multi_items():
        if name.lower() in ("signature", "x-amz-signature", "x-amz-credential", "policy"):
            register_secret(value)


def guard_httpx_log() -> None:
    """httpx logs every request URL at INFO: mask the signatures there too, whatever the
    logging setup (done once)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())


class GunzipStream:
    """Incremental gunzip of a (possibly multi-member) gzip stream; BrokenFile when the data
    is not gzip, is corrupt (zlib checks the CRC and length in each trailer) or ends early."""

    def __init__(self, shown: str):
        self.shown = shown
        self._inflate = zlib.decompressobj(GZIP_WBITS)
        self.lines = 1  # an upper bound of the file's lines (the last may have no newline)

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._inflate.eof:  # another gzip member follows
                self._inflate = zlib.decompressobj(GZIP_WBITS)
            try:
                out.append(self._inflate.decompress(data))
            except zlib.error as error:
                raise BrokenFile(f"the export file {self.shown} is corrupt ({error})") from None
            data = self._inflate.unused_data if self._inflate.eof else b""
        text = b"".join(out)
        self.lines += text.count(b"\n")
        return text

    def finish(self) -> None:
        if not self._inflate.eof:
            raise BrokenFile(
                f"the export file {self.shown} is truncated: its gzip stream ends early"
            )


class Downloader:
    """Fetches a location into a verified temporary file. ``client`` must have no auth."""

    def __init__(
        self,
        client: httpx.Client,
        count_request: Callable[[], None],
        check_deadline: Callable[[str], None],
        spool_dir: str | None = None,
    ):
        if client.auth is not None:
            raise ValueError("the download client must not carry credentials")
        self.client = client
        self.count_request = count_request
        self.check_deadline = check_deadline
        self.spool_dir = spool_dir
        self.bytes = 0  # bytes of the last file fetched
        self.lines: int | None = None  # at most, in the last file (None: not known)

    def fetch(self, location: Any) -> IO[bytes]:
        """The file at ``location``, spooled and checked, positioned at its start.

        Raises LinkExpired (403), BrokenFile (worth another download) or ExportJobFailed."""
        url = checked_location(location)
        try:
            spool = tempfile.TemporaryFile(dir=self.spool_dir)  # noqa: SIM115 - the caller closes it
        except OSError as error:
            raise ExportJobFailed(
                f"cannot create a temporary file for the export: {error}"
            ) from None
        try:
            self._fetch_into(url, spool)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    def _fetch_into(self, url: httpx.URL, spool: IO[bytes]) -> None:
        for _ in range(MAX_REDIRECTS + 1):
            self.count_request()
            try:
                with self.client.stream("GET", url) as response:
                    if not response.is_redirect:
                        return self._save(response, shown_url(url), spool)
                    url = _redirect_target(url, response)
            except httpx.TransportError as error:
                raise _transport_problem(error, shown_url(url)) from None
        raise ExportJobFailed(
            f"the export file {shown_url(url)} redirects more than {MAX_REDIRECTS} times"
        )

    def _save(self, response: httpx.Response, shown: str, spool: IO[bytes]) -> None:
        status = response.status_code
        if status == 403:
            raise LinkExpired(f"the export file {shown} answered 403 (the link expired)")
        if status != 200:
            raise BrokenFile(f"the export file {shown} answered {status}", status=status)
        check = None
        self.bytes, self.lines = 0, None
        try:
            for chunk in response.iter_bytes(CHUNK):
                if not self.bytes:
                    check = self._checker(response, chunk, shown)
                if check is not None:
                    check.feed(chunk)
                self._write(spool, chunk)
                self.check_deadline("downloading the export file")
        except httpx.DecodingError:
            raise BrokenFile(f"the export file {shown} cannot be decoded") from None
        if not self.bytes:
            raise BrokenFile(f"the export file {shown} is empty")
        if check is not None:
            check.finish()
            self.lines = check.lines

    @staticmethod
    def _checker(response: httpx.Response, first: bytes, shown: str) -> GunzipStream | None:
        """A gzip check for the file; None when the host sent it with a Content-Encoding that
        httpx already undid (its length was checked against Content-Length)."""
        if first.startswith(GZIP_MAGIC):
            return GunzipStream(shown)
        if "content-encoding" in response.headers:
            return None
        raise BrokenFile(f"the export file {shown} is not a gzip file")

    def _write(self, spool: IO[bytes], chunk: bytes) -> None:
        try:
            spool.write(chunk)
        except OSError as error:
            raise ExportJobFailed(f"cannot spool the export file to disk: {error}") from None
        self.bytes += len(chunk)


def _redirect_target(url: httpx.URL, response: httpx.Response) -> httpx.URL:
    target = url.join(response.headers.get("location", ""))
    if (target.scheme, target.host, target.port) != (url.scheme, url.host, url.port):
        raise ExportJobFailed(
            f"the export file {shown_url(url)} redirects to {shown_url(target)}: redirects to "
            f"another scheme or host are not followed"
        )
    _register(target)
    return target


def _transport_problem(error: httpx.TransportError, shown: str) -> ApiError:
    """A failed exchange: worth another download, unless the certificate does not verify."""
    problem = transport_error(error, f"downloading the export file {shown}")
    if type(problem) is ApiError:  # not retryable: a certificate that does not verify
        return ExportJobFailed(str(problem))
    return BrokenFile(str(problem))


# --- reading the spooled file -----------------------------------------------------------------


def _text_chunks(spool: IO[bytes], shown: str) -> Iterator[bytes]:
    """The spooled file's content, gunzipped when it is gzip (it was checked on the way in)."""
    first = spool.read(CHUNK)
    unzip = GunzipStream(shown) if first.startswith(GZIP_MAGIC) else None
    chunk = first
    while chunk:
        yield unzip.feed(chunk) if unzip else chunk
        chunk = spool.read(CHUNK)


def _lines(spool: IO[bytes], shown: str) -> Iterator[bytes]:
    rest = b""
    for chunk in _text_chunks(spool, shown):
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _user(line: bytes, number: int) -> User | None:
    """One line as a user; None for a blank line. ApiDataError for anything else."""
    if not line.strip():
        return None
    try:
        user = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ApiDataError(f"line {number} of the export file is not JSON") from None
    if not isinstance(user, dict) or not isinstance(user.get("user_id"), str):
        raise ApiDataError(f"line {number} of the export file is not a user with a user_id")
    for identity in user.get("identities") or []:
        if isinstance(identity, dict):
            for key in IDP_TOKEN_KEYS:
                identity.pop(key, None)
    return user


class SliceReader:
    """The users of a spooled file in slices, each user once: ``seen`` holds a hash of every
    id handed on (seen_ids.py); a line whose hash was seen is a suspect, settled at the end
    of the file by reading it again — a duplicate is left out, a hash collision handed on."""

    def __init__(self, slice_size: int = SLICE_SIZE, seen: SeenIds | None = None):
        self.slice_size = slice_size
        self.seen = seen if seen is not None else SeenIds()
        self.count = 0  # users handed on
        self.duplicates = 0  # lines left out: their user came earlier in the file

    def read(self, spool: IO[bytes], shown: str) -> Iterator[dict[str, User]]:
        suspects: dict[int, str] = {}  # line number → user id, for the lines seen.add doubted
        piece: dict[str, User] = {}
        for number, line in enumerate(_lines(spool, shown), start=1):
            user = _user(line, number)
            if user is None:
                continue
            if not self.seen.add(user["user_id"]):
                suspects[number] = user["user_id"]
                continue
            piece[user["user_id"]] = user
            if len(piece) >= self.slice_size:
                yield self._handed_on(piece)
                piece = {}
        if suspects:
            spool.seek(0)
            for user_id, user in self._settle(spool, shown, suspects).items():
                piece[user_id] = user
                if len(piece) >= self.slice_size:
                    yield self._handed_on(piece)
                    piece = {}
        if piece:
            yield self._handed_on(piece)

    def _handed_on(self, piece: dict[str, User]) -> dict[str, User]:
        self.count += len(piece)
        return piece

    def _settle(self, spool: IO[bytes], shown: str, suspects: dict[int, str]) -> dict[str, User]:
        """The suspects that are the first line of their id (collisions): read the file
        again, noting where each suspect id first appears."""
        wanted = set(suspects.values())
        first: set[str] = set()
        found: dict[str, User] = {}
        for number, line in enumerate(_lines(spool, shown), start=1):
            user = _user(line, number)
            if user is None or user["user_id"] not in wanted:
                continue
            if user["user_id"] not in first:
                first.add(user["user_id"])
                if number in suspects:
                    found[user["user_id"]] = user
            elif number in suspects:
                self.duplicates += 1
        return found
