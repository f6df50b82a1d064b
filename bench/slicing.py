"""Benchmark: what UserReader's created_at slicing costs in requests, offline and fast.

Run by hand (not part of the test suite):

    python bench/slicing.py                        # 20k and 100k users, seeds 0-2, every shape
    python bench/slicing.py --sizes 1000000 --seeds 0 --shapes bursty

The reader talks to a fake /api/users that answers `total` by bisect on a sorted list of
created_at instants and hands out dummy users (ids are positions in that list, so every user is
unique), so a 100k tenant takes seconds. Shapes:
- bursty: the simulator's own instants (gen_users._created_at_plan with the tenant's seed);
- even: evenly spaced over the simulator's 3.5 years; uniform: random over them;
- big: uniform background plus 30% of users in bulk imports of 5000 within one hour.

For each run it prints requests vs the reader's floor ⌈users/100⌉ (and vs the benchmark's
floor, which adds 3 list calls), and where the requests above the floor went: the first look
at the whole tenant, overshoot probes (windows at or over the cap), and partial last pages
(Σ ⌈n/100⌉ - n/100 over windows), split into windows under 300 users and the rest.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.simulator.gen_users import DATA_NOW, EPOCH_START, _created_at_plan
from sync.source.users import UserReader

RANGE = re.compile(r"^created_at:\[(\S+) TO (\S+)[\]}]$")
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)  # fixed, so runs compare across days
SPAN_MS = int((DATA_NOW - EPOCH_START).total_seconds() * 1000)
START = EPOCH_START.replace(tzinfo=timezone.utc)
SMALL = 300  # a window holding fewer users than this is "nearly empty"


def _ms(moment: datetime) -> int:
    return int((moment - START).total_seconds() * 1000)


def bursty(count: int, seed: int) -> list[int]:
    plan = _created_at_plan(random.Random(f"authz-sync-users-{seed}"), count, 0)
    return [_ms(moment.replace(tzinfo=timezone.utc)) for moment in plan]


def even(count: int, seed: int) -> list[int]:
    return [SPAN_MS * i // count for i in range(count)]


def uniform(count: int, seed: int) -> list[int]:
    rnd = random.Random(seed)
    return [rnd.randrange(SPAN_MS) for _ in range(count)]


def big(count: int, seed: int, size: int = 5000, share: float = 0.3) -> list[int]:
    rnd = random.Random(seed)
    in_bursts = int(count * share)
    moments: list[int] = []
    while in_bursts > 0:
        hour = rnd.randrange(SPAN_MS - 3_600_000)
        take = min(size, in_bursts)
        moments += [hour + rnd.randrange(3_600_000) for _ in range(take)]
        in_bursts -= take
    return moments + [rnd.randrange(SPAN_MS) for _ in range(count - len(moments))]


SHAPES = {"bursty": bursty, "even": even, "uniform": uniform, "big": big}


class FastUsers:
    """/api/users over sorted instants: `total` by bisect, users named by their position."""

    def __init__(self, instants: list[int]):
        self.instants = sorted(instants)
        self.calls = 0
        self.ranges: dict[str | None, tuple[int, int]] = {}

    def _range(self, query: str | None) -> tuple[int, int]:
        if query not in self.ranges:
            if query is None:
                self.ranges[query] = (0, len(self.instants))
            else:
                low, high = RANGE.match(query).groups()
                lo = 0 if low == "*" else bisect.bisect_left(self.instants, _parse(low))
                hi = (
                    len(self.instants)
                    if high == "*"
                    else bisect.bisect_left(self.instants, _parse(high))
                )
                self.ranges[query] = (lo, hi)
        return self.ranges[query]

    def __call__(self, page: int, per_page: int, query: str | None) -> dict:
        self.calls += 1
        lo, hi = self._range(query)
        first = lo + (max(page, 1) - 1) * per_page
        assert first + per_page - lo <= 1000, "paged past the first 1000 results"
        ids = range(first, min(first + per_page, hi))
        return {"users": [{"user_id": f"u{i}"} for i in ids], "total": hi - lo}


def _parse(text: str) -> int:
    return _ms(datetime.fromisoformat(text.replace("Z", "+00:00")))


def next_night(instants: list[int], seed: int) -> list[int]:
    """The tenant a day later: 0.2% of the users deleted, 0.5% new ones (created now)."""
    rnd = random.Random(seed)
    kept = [moment for moment in instants if rnd.random() >= 0.002]
    return kept + [SPAN_MS + rnd.randrange(86_400_000) for _ in range(len(instants) // 200)]


def measure(instants: list[int], previous=()) -> dict:
    fake = FastUsers(instants)
    reader = UserReader(fake, now=lambda: NOW, previous=previous)
    seen: set[str] = set()
    for piece in reader.read():
        assert seen.isdisjoint(piece), "a user was read twice"
        seen.update(piece)
    assert len(seen) == len(instants), (len(seen), len(instants))
    windows = reader.slices
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    sizes = [hi - lo for lo, hi in (fake._range(w.query()) for w in windows)]
    floor = math.ceil(len(instants) / 100)
    waste = [max(1, math.ceil(n / 100)) - n / 100 for n in sizes]  # an empty one costs 1
    small = [i for i, n in enumerate(sizes) if n < SMALL]
    return {
        "requests": fake.calls,
        "floor": floor,
        "ratio": fake.calls / floor,
        "bench": (fake.calls + 3) / (floor + 3),
        "first": 1 if len(instants) >= reader.cap else 0,
        "probes": reader.probes_wasted,
        "windows": len(windows),
        "avg": len(instants) / len(windows),
        "small": len(small),
        "waste_small": sum(waste[i] for i in small),
        "waste": sum(waste),
        "windows_read": reader.windows,
    }


COLUMNS = (
    ("shape", "{:<8}"),
    ("users", "{:>8,}"),
    ("seed", "{:>4}"),
    ("requests", "{:>8,}"),
    ("floor", "{:>7,}"),
    ("ratio", "{:>6.3f}"),
    ("bench", "{:>6.3f}"),
    ("excess", "{:>6}"),
    ("first", "{:>5}"),
    ("probes", "{:>6}"),
    ("partial", "{:>7.1f}"),
    ("(small)", "{:>7.1f}"),
    ("windows", "{:>7}"),
    ("avg/win", "{:>7.0f}"),
    ("<300", "{:>5}"),
    ("secs", "{:>5.1f}"),
    ("rerun", "{:>6.3f}"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--shapes", default="bursty,big,uniform,even")
    args = parser.parse_args()
    print(
        "ratio = requests / ⌈users/100⌉; bench = (requests+3) / (⌈users/100⌉+3);\n"
        "excess = requests - floor = first + probes + partial (partial pages, Σ⌈n/100⌉-n/100;\n"
        "(small) is the part of it in windows under 300 users), up to rounding;\n"
        "rerun = the ratio of the next night's run (0.2% of users deleted, 0.5% new), which\n"
        "reads the windows this run read"
    )
    header = " ".join(f"{name:>{len(fmt.format(0)) if name != 'shape' else 8}}" for name, fmt in
                      COLUMNS)  # fmt: skip
    print(header)
    worst: dict[tuple[str, int], float] = {}
    for shape in args.shapes.split(","):
        for size in map(int, args.sizes.split(",")):
            for seed in map(int, args.seeds.split(",")):
                began = time.perf_counter()
                instants = SHAPES[shape](size, seed)
                row = measure(instants)
                # The next night's run, given the windows this one read.
                row["rerun"] = measure(next_night(instants, seed), row["windows_read"])["ratio"]
                row |= {"shape": shape, "users": size, "seed": seed}
                row["excess"] = row["requests"] - row["floor"]
                row["partial"], row["(small)"] = row["waste"], row["waste_small"]
                row["avg/win"], row["<300"] = row["avg"], row["small"]
                row["secs"] = time.perf_counter() - began
                print(" ".join(fmt.format(row[name]) for name, fmt in COLUMNS), flush=True)
                key = (shape, size)
                worst[key] = max(worst.get(key, 0), row["ratio"])
    print("worst ratio: " + ", ".join(f"{s} {n:,}: {r:.3f}" for (s, n), r in worst.items()))


if __name__ == "__main__":
    main()
