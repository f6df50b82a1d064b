"""A run's heartbeat: recorded in the ledger as the run reports progress, so that a run killed
without a word (kill -9, a lost machine) still tells when it was last alive.

`Heartbeat` wraps the run's Progress: every update goes on to the bars, and at each new phase
(groups, roles, permissions, users, compare, write), and within a phase at most every
`interval` seconds (every few user slices), it records a heartbeat (ledger.record_heartbeat:
its own short transaction that never waits for a lock). It beats once the run's ledger row
exists (`arm`); before that, and in a dry run, it only passes updates on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine

from sync.progress import NO_PROGRESS, Progress
from sync.sql.ledger import record_heartbeat

log = logging.getLogger(__name__)

INTERVAL = 15.0  # seconds between heartbeats within one phase


class Heartbeat(Progress):
    def __init__(
        self,
        progress: Progress = NO_PROGRESS,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.progress, self.interval, self.clock = progress, interval, clock
        self.engine: Engine | None = None
        self.run_id: int | None = None
        self.phase: str | None = None
        self.last = float("-inf")
        self.beats = 0  # recorded, for tests and the log

    def arm(self, engine: Engine, run_id: int) -> Heartbeat:
        self.engine, self.run_id = engine, run_id
        self.last = self.clock()  # start_run recorded the first heartbeat
        return self

    def update(self, name: str, done: int, total: int | None = None, note: str = "") -> None:
        self.progress.update(name, done, total, note)
        if self.engine is None:
            return
        if name != self.phase or self.clock() - self.last >= self.interval:
            self.phase = name
            self.beat()

    def beat(self) -> None:
        self.last = self.clock()
        if record_heartbeat(self.engine, self.run_id):
            self.beats += 1
        else:
            log.debug("heartbeat skipped: the database is busy")


def beating(progress: Progress, engine: Engine, run_id: int) -> Heartbeat:
    """`progress` (a Heartbeat already, or wrapped in one) beating for the run `run_id`."""
    heartbeat = progress if isinstance(progress, Heartbeat) else Heartbeat(progress)
    return heartbeat.arm(engine, run_id)
