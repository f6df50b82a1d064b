"""Fingerprints of what a run read: when they match the last successful run's, so do the tables.

A no-op run would otherwise stage and compare every table in SQL (sql/plan.py) to find nothing.
Three digests decide what can be skipped:
- `authz`: the bytes of /api/groups, /api/roles and /api/permissions. The same answers give the
  same group, role, permission and link rows (transform.build_rows is a pure function).
- `user_ids`: which users exist. With `authz`, it decides the member tables (`is_orphan`).
- `users`: every user's row. Users arrive in an order that changes from run to run (logins
  reorder the pages), so each row is hashed alone and the digests are added up, which does
  not depend on the order.
model.Fingerprints holds the three. The tables must still hold what that run left (sql/plan.py
checks their row counts): a table changed by hand without changing its count is put right by
`run --compare-all`.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

DIGEST_BYTES = 16
MODULUS = 1 << (8 * DIGEST_BYTES)
PROTOCOL = 5  # pinned: the digests are compared with those of earlier runs


class RowSum:
    """An order-independent digest of a set of rows: the sum of their own digests."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, row: Any) -> None:
        # pickle is exact for what a row holds (str, int, bool, None, datetime, lists and dicts
        # of them, in the order the API sent them) and several times cheaper than repr or
        # json.dumps. Its memo can only make equal rows differ (costing one comparison of the
        # users), never different rows agree: the bytes give the row back.
        self.add_bytes(pickle.dumps(row, PROTOCOL))

    def add_bytes(self, data: bytes) -> None:
        digest = hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()
        self.total += int.from_bytes(digest, "big")  # reduced modulo MODULUS when read

    def hexdigest(self) -> str:
        return f"{self.total % MODULUS:0{2 * DIGEST_BYTES}x}"


class UserDigests:
    """Both users' fingerprints, fed one user row at a time."""

    def __init__(self) -> None:
        self.rows, self.ids = RowSum(), RowSum()

    def add(self, row: dict[str, Any]) -> None:
        self.rows.add(tuple(row.values()))
        self.ids.add_bytes(row["user_id"].encode())

    def add_all(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)


def combine(*digests: str) -> str:
    """One digest for several answers, in order."""
    return hashlib.blake2b("\n".join(digests).encode(), digest_size=DIGEST_BYTES).hexdigest()
