"""Injected failures: what a serverless extension and a flaky network do to a client.

A fault matches requests by method and a regex on the raw path, lets ``after`` of them through,
then fires ``times`` times (None: forever). The server decides how to act on each kind; this
module only keeps the bookkeeping, so tests can also read back how often a fault fired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

KINDS = frozenset({"status", "delay", "drop", "truncate", "invalid_json", "rate_limit"})


@dataclass
class Fault:
    """One injected failure and its counters (``seen``: matching requests, ``fired``)."""

    pattern: re.Pattern[str]
    kind: str
    times: int | None = 1
    after: int = 0
    status: int | None = None
    body: Any = None
    delay: float | None = None
    method: str | None = "GET"
    retry_after_header: bool = True
    retry_after: int = 1
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether the request is one this fault watches (``method`` None or "*" = any)."""
        if self.method not in (None, "*") and self.method.upper() != method.upper():
            return False
        return self.pattern.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultList:
    """Faults in the order they were added. Not locked itself: the Simulator serializes access."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {sorted(KINDS)}")
        if fault.kind == "status" and fault.status is None:
            raise ValueError('a "status" fault needs status=')
        if fault.kind == "delay" and not fault.delay:
            raise ValueError('a "delay" fault needs delay= (seconds)')
        self.faults.append(fault)
        return fault

    def pick(self, method: str, path: str) -> Fault | None:
        """Count the request against every matching fault; the first one due fires."""
        chosen = None
        for fault in self.faults:
            if not fault.matches(method, path):
                continue
            fault.seen += 1
            if chosen is None and fault.seen > fault.after and not fault.exhausted:
                fault.fired += 1
                chosen = fault
        return chosen
