"""An export file of the extension as a snapshot source, for `authz-sync import`.

The extension's Export button saves, and `GET /api/configuration/export` answers, its whole
stored document: `groups`, `roles` and `permissions` lists — members, nesting, group roles, role
permissions and role users inside them, as `/api/groups` and the others list them — and keys
authz-sync does not copy (`configuration`, `rules`, `applications`), which are ignored. It holds
no users: its `read()` yields no user slice and returns `has_users=False`, so an import keeps
authz_users as it is. The records themselves
are checked by the same rules as a run's (transform.py), inside the run.

The file is read when the source is made, before anything touches the database: a missing or
unreadable file is exit 66 (InputFileError). A file that is not an export is exit 65
(ApiDataError), raised by `read()` inside the run, which records it like a run's bad data.
A source in the sense of api_source.py: the runner reads it the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sync.errors import ApiDataError, InputFileError
from sync.model import Fetched, RequestStats, Snapshot, UserSlices, Window

log = logging.getLogger(__name__)

LISTS = ("groups", "roles", "permissions")
HOW_TO_GET_ONE = (
    "give the file the extension's Export button saves, or the answer of "
    "GET /api/configuration/export"
)
LABEL_LIMIT = 255  # authz_sync_runs.source


class ExportFileSource:
    """The groups, roles and permissions of an export file; no users, no requests."""

    def __init__(self, path: Path):
        self.path = path
        self.content = read_export_file(path)
        self.label = source_label(path.name, self.content)

    def read(self, previous_windows: Sequence[Window], stats: RequestStats) -> UserSlices:
        """No user slices; the file's groups, roles and permissions. The fingerprints stay
        unknown: its users are the stored ones, so every table is compared."""
        yield from ()
        return Fetched(parse_export(self.content, str(self.path)), has_users=False)


def read_export_file(path: Path) -> bytes:
    """The file's bytes; InputFileError (exit 66) when it cannot be read."""
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise InputFileError(f"export file {path} is a directory: {HOW_TO_GET_ONE}") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputFileError(f"cannot read the export file {path}: {reason}") from None


def source_label(name: str, content: bytes) -> str:
    """`file:NAME sha256:…` for the ledger: which export a run loaded."""
    digest = f" sha256:{hashlib.sha256(content).hexdigest()[:16]}"
    return f"file:{name}"[: LABEL_LIMIT - len(digest)] + digest


def parse_export(content: bytes, where: str) -> Snapshot:
    """The snapshot an export holds; ApiDataError (exit 65) naming the fix when it holds none."""
    document = _json(content, where)
    if not isinstance(document, dict):
        raise ApiDataError(
            f"{where} holds a JSON {_kind(document)}, not an export of the extension (an object "
            f"with {_listing(LISTS)} lists): {HOW_TO_GET_ONE}"
        )
    missing = [name for name in LISTS if name not in document]
    if missing:
        raise ApiDataError(
            f"{where} has no {_listing(missing)} {'list' if len(missing) == 1 else 'lists'}, "
            f"so it is not a whole export of the "
            f"extension: {HOW_TO_GET_ONE}"
        )
    for name in LISTS:
        if not isinstance(document[name], list):
            raise ApiDataError(
                f"{where}: {name!r} is a JSON {_kind(document[name])}, not a list: {HOW_TO_GET_ONE}"
            )
    if ignored := sorted(set(document) - set(LISTS)):
        log.info("export file %s: not copied: %s", where, ", ".join(ignored))
    return Snapshot(document["groups"], document["roles"], document["permissions"])


def _json(content: bytes, where: str) -> Any:
    if not content.strip():
        raise ApiDataError(f"{where} is empty: {HOW_TO_GET_ONE}")
    try:
        return json.loads(content)
    except UnicodeDecodeError:
        raise ApiDataError(f"{where} is not UTF-8 JSON: {HOW_TO_GET_ONE}") from None
    except json.JSONDecodeError as error:
        raise ApiDataError(
            f"{where} is not JSON ({error.msg} at line {error.lineno}, column {error.colno}): "
            f"{HOW_TO_GET_ONE}"
        ) from None


def _kind(value: Any) -> str:
    names = {list: "array", dict: "object", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _listing(names: list[str] | tuple[str, ...]) -> str:
    quoted = [f'"{name}"' for name in names]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1] if len(quoted) > 1 else quoted[0]
