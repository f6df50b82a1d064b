"""Plain data the wings hand each other: no HTTP, no SQL, no behaviour beyond small helpers.

    source (HTTP) ──Fetched, user slices──▶ runner ──rows, LastSuccess──▶ sql
         ▲                                   │
         └──────── previous windows ─────────┘            RunReport / DryRun ──▶ cli

- The table names and their key columns are the public contract analysts query; sql/schema.py
  gives them columns and types, transform.py fills them.
- A source yields user slices (lists of user rows) and, when done, returns a `Fetched`: the lists
  it read, what it fingerprinted, the windows it read users in and the requests it sent.
- The ledger hands the last successful run back as a `LastSuccess`.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

Row = dict[str, Any]

# --- The tables a run writes, with the key columns that identify a row ----------------------

USERS = "authz_users"
GROUPS = "authz_groups"
ROLES = "authz_roles"
PERMISSIONS = "authz_permissions"
GROUP_MEMBERS = "authz_group_members"
GROUP_NESTING = "authz_group_nesting"
GROUP_MAPPINGS = "authz_group_mappings"
GROUP_ROLES = "authz_group_roles"
ROLE_PERMISSIONS = "authz_role_permissions"
ROLE_USERS = "authz_role_users"
EFFECTIVE_GROUP_MEMBERS = "authz_effective_group_members"
EFFECTIVE_USER_ROLES = "authz_effective_user_roles"
EFFECTIVE_USER_PERMISSIONS = "authz_effective_user_permissions"

# The tables one run replaces, in the order they are applied. Every column but the keys and
# changed_at is compared to detect a change.
SYNCED_TABLES: dict[str, tuple[str, ...]] = {
    USERS: ("user_id",),
    GROUPS: ("group_id",),
    ROLES: ("role_id",),
    PERMISSIONS: ("permission_id",),
    GROUP_MEMBERS: ("group_id", "user_id"),
    GROUP_NESTING: ("parent_group_id", "child_group_id"),
    GROUP_MAPPINGS: ("mapping_id",),
    GROUP_ROLES: ("group_id", "role_id"),
    ROLE_PERMISSIONS: ("role_id", "permission_id"),
    ROLE_USERS: ("role_id", "user_id"),
}

# Derived from the synced tables in the same transaction (sql/effective.py).
EFFECTIVE_TABLES: dict[str, tuple[str, ...]] = {
    EFFECTIVE_GROUP_MEMBERS: ("group_id", "user_id", "via_group_id"),
    EFFECTIVE_USER_ROLES: ("user_id", "role_id", "source", "via_group_id"),
    EFFECTIVE_USER_PERMISSIONS: ("user_id", "permission_id", "via_role_id"),
}


BOOKKEEPING = {"changed_at"}  # columns authz-sync sets itself; never compared


def changed_columns(before: Row, after: Row) -> list[str]:
    """The columns an update changes (bookkeeping excluded), for the change log and dry runs."""
    return [n for n in after if n not in BOOKKEEPING and before.get(n) != after[n]]


def keys_of(table_name: str) -> tuple[str, ...]:
    return SYNCED_TABLES.get(table_name) or EFFECTIVE_TABLES[table_name]


# --- What a source read ---------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The lists of the extension as the API answered them (or an export file holds them)."""

    groups: list[dict[str, Any]]
    roles: list[dict[str, Any]]
    permissions: list[dict[str, Any]]


@dataclass(frozen=True)
class Fingerprints:
    """Digests of what a run read (fingerprint.py); None: not known, compare that table."""

    authz: str | None = None  # groups, roles and permissions, as answered
    user_ids: str | None = None
    users: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"authz": self.authz, "user_ids": self.user_ids, "users": self.users}

    @classmethod
    def from_dict(cls, value: Any) -> Fingerprints:
        """What the ledger holds; anything unexpected counts as unknown (compare everything)."""
        if not isinstance(value, dict):
            return cls()
        known = {name: value.get(name) for name in ("authz", "user_ids", "users")}
        return cls(**{name: item for name, item in known.items() if isinstance(item, str)})

    def same_users(self, last: Fingerprints) -> bool:
        return _same(self.users, last.users)

    def same_user_ids(self, last: Fingerprints) -> bool:
        return _same(self.user_ids, last.user_ids)

    def same_authz(self, last: Fingerprints) -> bool:
        """Groups, roles, permissions and every link between them are as the last run read."""
        return _same(self.authz, last.authz)


def _same(digest: str | None, last: str | None) -> bool:
    return digest is not None and digest == last


UNKNOWN = Fingerprints()  # nothing is known to be unchanged: compare every table

# A created_at window users were read in: its end (None: open-ended) and the users it held.
Window = tuple["datetime | None", int]


@dataclass
class RequestStats:
    """Requests a source sent; counted from several threads when pages are read in parallel."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class Fetched:
    """What a source returns once its user slices are exhausted.

    `has_users` is False for a source without users (an export file): the stored users stay.
    `user_windows` is None when no users were read in windows (keep the last run's).
    """

    snapshot: Snapshot
    has_users: bool
    fingerprints: Fingerprints = UNKNOWN
    user_windows: list[Window] | None = None
    users_source: UsersSource | None = None  # how the users were read (None: no users)


@dataclass(frozen=True)
class UsersSource:
    """How a run read its users: `extension` windows or an `export` job, and what to remember."""

    name: str  # "extension" or "export"
    description: str  # for the ledger's source column: "users: export job job_…"
    fell_back: bool = False  # an export job failed; the windows read the users instead
    notes: tuple[str, ...] = ()  # warnings of the read (a fallback, a count difference)


# What a source's read() is: user rows a slice at a time (at most ~1000 each, so memory stays
# one slice), returning the Fetched when done.
UserSlices = Generator[list[Row], None, Fetched]


# --- What the ledger remembers ---------------------------------------------------------------


@dataclass(frozen=True)
class LastSuccess:
    """What the last successful run left: each table's row count, and what it read."""

    counts: dict[str, int]
    fingerprints: Fingerprints
    user_windows: list[Window]  # the created_at windows it read users in


# --- What a run reports -----------------------------------------------------------------------


@dataclass
class TableCount:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.deleted


@dataclass
class RunReport:
    run_id: int
    counts: dict[str, TableCount]
    warnings: list[str] = field(default_factory=list)
    api_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    fetch_seconds: float = 0.0
    staging_seconds: float = 0.0  # of fetch_seconds: users written to their temporary table
    changes_logged: int = 0
    users_source: UsersSource | None = None

    @property
    def rows_written(self) -> int:
        """Every row inserted, updated or deleted, effective tables included."""
        return sum(count.written for count in self.counts.values())

    def total(self, operation: str) -> int:
        """Over the copied tables; the derived effective tables are in `counts` only."""
        return sum(getattr(self.counts[name], operation) for name in SYNCED_TABLES)


@dataclass
class Sample:
    """A few of a plan's changes, read while the planning connection still existed."""

    keys: tuple[str, ...]
    inserts: list[Row]
    updates: list[tuple[Row, Row]]
    deletes: list[Row]


@dataclass
class DryRun:
    """What a run would write, computed without writing anything."""

    counts: dict[str, TableCount]  # every table's, effective ones included
    samples: dict[str, Sample]  # of the synced tables
    warnings: list[str]
    refusal: str | None  # the safeguard's message, when a real run would be refused
    api_requests: int

    @property
    def changed(self) -> bool:
        return any(self.counts[name].written for name in SYNCED_TABLES)
