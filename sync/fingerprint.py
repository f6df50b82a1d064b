"""Fingerprints of what a run read: when they match the last successful run's, so do the tables.

A no-op run would otherwise stage and compare every table in SQL (apply.py) to find nothing.
Three digests decide what can be skipped:
- `authz`: the bytes of /api/groups, /api/roles and /api/permissions. The same answers give the
  same group, role, permission and link rows (transform.build_rows is a pure function).
- `user_ids`: which users exist. With `authz`, it decides the member tables (`is_orphan`).
- `users`: every user's row. Users arrive in an order that changes from run to run (logins
  reorder the pages), so each row is hashed alone and the digests are added up, which does
  not depend on the order.
The tables must still hold what that run left (apply.py checks their row counts): a table
changed by hand without changing its count is put right by `run --compare-all`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

DIGEST_BYTES = 16
MODULUS = 1 << (8 * DIGEST_BYTES)


class RowSum:
    """An order-independent digest of a set of rows: the sum of their own digests."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, row: Any) -> None:
        # repr is exact for what a row holds (str, int, bool, None, datetime, lists and dicts
        # of them, in the order the API sent them) and much cheaper than json.dumps.
        digest = hashlib.blake2b(repr(row).encode(), digest_size=DIGEST_BYTES).digest()
        self.total = (self.total + int.from_bytes(digest, "big")) % MODULUS

    def hexdigest(self) -> str:
        return f"{self.total:0{2 * DIGEST_BYTES}x}"


class UserDigests:
    """Both users' fingerprints, fed one user row at a time."""

    def __init__(self) -> None:
        self.rows, self.ids = RowSum(), RowSum()

    def add(self, row: dict[str, Any]) -> None:
        self.rows.add(tuple(row.values()))
        self.ids.add(row["user_id"])


def combine(*digests: str) -> str:
    """One digest for several answers, in order."""
    return hashlib.blake2b("\n".join(digests).encode(), digest_size=DIGEST_BYTES).hexdigest()


@dataclass(frozen=True)
class Fingerprints:
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
