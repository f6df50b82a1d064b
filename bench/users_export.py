"""Benchmark: reading every user through /api/users windows vs one bulk user export job.

Run by hand (not part of the test suite):

    python bench/users_export.py                      # 100k users, no latency
    python bench/users_export.py --users 20000 --latency 0.05

Both paths read the same simulated tenant over real sockets, and map every user through
transform.user_row (as a run would); nothing is written to a database. Printed per path: the
requests (the export's include the one /api/users?per_page=1 of the cross-check), the wall
time, and for the export the pauses between polls (not slept here: how long a real job takes
is Auth0's business; the simulated one finishes after --polls polls). With --memory, each
path runs once more under tracemalloc and its peak of Python allocations is printed (the
simulator runs in a child process, so only the client's memory is counted).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.config import Auth0Settings, DatabaseSettings, ExtensionSettings, Secret, Settings
from sync.simulator import Simulator, generate_tenant
from sync.source.export_job import ExportJobClient, ExportSettings, compare_counts
from sync.source.extension import ExtensionApi
from sync.source.users import UserReader
from sync.transform import user_row


def through_windows(settings: Settings) -> tuple[int, int, float]:
    started = time.perf_counter()
    with ExtensionApi(settings) as api:
        reader = UserReader(api.users_page, settings.users_per_page)
        users = sum(len([user_row(u) for u in piece.values()]) for piece in reader.read())
    return users, api.stats.requests, time.perf_counter() - started


def through_export(settings: Settings) -> tuple[int, int, float, float, str]:
    pauses: list[float] = []
    started = time.perf_counter()
    with ExtensionApi(settings) as api:
        total = api.users_page(1, 1, None)["total"]
        export = ExportJobClient(
            ExportSettings.from_settings(settings), sleep=pauses.append, stats=api.stats
        )
        with export:
            users = sum(len([user_row(u) for u in piece.values()]) for piece in export.read())
    check = compare_counts(export.count, total)
    return users, api.stats.requests, time.perf_counter() - started, sum(pauses), check.level


def serve(args: argparse.Namespace, pipe) -> None:
    """In a child process: generate the tenant, serve it, hand over the settings, wait."""
    started = time.perf_counter()
    tenant = generate_tenant(users=args.users, groups=10, memberships=100)
    tenant.index_created_at()
    generated = time.perf_counter() - started
    with Simulator(tenant, management_scopes=("read:users",), latency=args.latency) as sim:
        sim.jobs.polls_until_done = args.polls
        pipe.send((sim.url, sim.client_id, sim.client_secret, sim.audience, generated))
        pipe.recv()  # until the parent is done


def peak_mb(run: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API answer")
    parser.add_argument("--polls", type=int, default=2, help="polls before the job completes")
    parser.add_argument("--memory", action="store_true", help="also measure peak allocations")
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(args, theirs), daemon=True)
    server.start()
    url, client_id, secret, _audience, generated = ours.recv()
    print(f"tenant of {args.users} users generated in {generated:.1f} s")
    settings = Settings(
        auth0=Auth0Settings(url, client_id, Secret(secret)),
        extension=ExtensionSettings(url + "/api"),
        database=DatabaseSettings("sqlite://"),
    )
    try:
        users, requests, seconds = through_windows(settings)
        print(f"windows: {users} users, {requests} requests, {seconds:.1f} s")
        users, requests, seconds, paused, level = through_export(settings)
        print(
            f"export:  {users} users, {requests} requests (create, polls, download, total), "
            f"{seconds:.1f} s (+ {paused:.0f} s of poll pauses not slept), count check {level}"
        )
        if args.memory:
            windows = peak_mb(lambda: through_windows(settings))
            export = peak_mb(lambda: through_export(settings))
            print(f"peak Python allocations: windows {windows:.1f} MB, export {export:.1f} MB")
    finally:
        ours.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    main()
