"""Which user ids a stream has given so far, in 8 bytes an id.

A million ids in a Python set of str take about 110 MB, more than a whole run of the user
windows needs (bench/run.py: 137 MB at a million users). This table keeps only each id's
64-bit hash in one flat array at most half full — 16 MB for a million — with linear probing.
A hash can collide, so `add` answers "new" (certainly) or "maybe seen"; whoever asks settles
a "maybe" exactly (export_download.SliceReader reads its file again for those few ids).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

MASK64 = (1 << 64) - 1


def _hash64(key: str) -> int:
    # Python's own string hash: SipHash, 64 bits, computed in C and cached on the str.
    return (hash(key) & MASK64) or 1  # 0 marks an empty slot


class SeenIds:
    @classmethod
    def for_at_most(cls, count: int | None) -> SeenIds:
        """A table that holds `count` ids without growing (None: not known, grow as needed).
        Growing copies the table: at a million ids, 8 + 16 MB held at once for a moment."""
        capacity = 1 << 16
        while count is not None and capacity < 2 * count:
            capacity *= 2
        return cls(capacity)

    def __init__(self, capacity: int = 1 << 16, hash_function: Callable[[str], int] = _hash64):
        if capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two")
        self._slots = array("Q", [0]) * capacity
        self._hash = hash_function
        self.count = 0  # distinct hashes held

    def add(self, key: str) -> bool:
        """Remember ``key``; True when it is certainly new, False when it may have been
        added before (its hash was)."""
        value = self._hash(key)
        if not self._insert(value):
            return False
        self.count += 1
        if 2 * self.count > len(self._slots):
            self._grow()
        return True

    def _insert(self, value: int) -> bool:
        slots, mask = self._slots, len(self._slots) - 1
        index = value & mask
        while True:
            held = slots[index]
            if held == 0:
                slots[index] = value
                return True
            if held == value:
                return False
            index = (index + 1) & mask

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("Q", [0]) * (2 * len(old))
        for value in old:
            if value:
                self._insert(value)

    @property
    def bytes(self) -> int:
        return len(self._slots) * self._slots.itemsize
