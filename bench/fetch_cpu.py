"""Benchmark: the client's CPU per /api/users page, and where it goes.

Run by hand (not part of the test suite):

    python bench/fetch_cpu.py                     # 20k users (M), 0 ms latency
    python bench/fetch_cpu.py --users 100000 --profile 25

It serves a generated tenant from the simulator and reads it, in a child process, with the real
source, as a run does: token, the three lists, every user window, each user checked, turned into
a row and fingerprinted (the database is left out: staging is the apply's cost). The child's
CPU time, divided by the number of /api/users requests, is the client's cost of one page of 100
users (with its share of the lists and the token); the simulator's work and the socket waits
are not in it. `--profile N` prints the child's N functions with the most own time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.config import Auth0Settings, DatabaseSettings, ExtensionSettings, Secret, Settings
from sync.model import RequestStats
from sync.simulator import Simulator, generate_tenant
from sync.source.api_source import ApiSource


def settings_for(url: str, client_id: str, secret: str, api_url: str) -> Settings:
    return Settings(
        auth0=Auth0Settings(url, client_id, Secret(secret)),
        extension=ExtensionSettings(api_url),
        database=DatabaseSettings("sqlite://"),
    )


def read_all(settings: Settings) -> tuple[int, float]:
    """Every user, as a run reads them: how many, and the CPU seconds until the first slice
    (the token, the three lists and the first window)."""
    slices = ApiSource(settings).read([], RequestStats())
    cpu = time.process_time()
    users = len(next(slices))
    first = time.process_time() - cpu
    try:
        while True:
            users += len(next(slices))
    except StopIteration:
        return users, first


def child(arguments: list[str], profile: int) -> None:
    """In the child: read once to warm up (imports, TLS, the first token), then measure."""
    settings = settings_for(*arguments)
    read_all(settings)
    cpu, started = time.process_time(), time.monotonic()
    users, first = read_all(settings)
    figures = {"users": users, "cpu": time.process_time() - cpu, "first": first}
    figures["wall"] = time.monotonic() - started
    print(json.dumps(figures))
    if profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(read_all, settings)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(profile)


def measure(sim: Simulator, profile: int) -> tuple[dict, int, str]:
    """One child's figures, the /api/users requests of its measured read, its profile."""
    arguments = [sim.url, sim.client_id, sim.client_secret, sim.api_url]
    before = len(sim.api_requests(r"^/api/users$"))
    command = [sys.executable, __file__, "--child", *arguments, "--profile", str(profile)]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ, check=True)
    requests = (len(sim.api_requests(r"^/api/users$")) - before) // (3 if profile else 2)
    return json.loads(done.stdout), requests, done.stderr


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="children; the best is reported")
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.profile)
    tenant = generate_tenant(
        users=args.users, groups=max(50, args.users // 20), memberships=args.users * 5
    )
    tenant.index_created_at()
    with Simulator(tenant, latency=0) as sim:
        runs = [measure(sim, 0) for _ in range(args.repeat)]
        figures, pages, _ = min(runs, key=lambda run: run[0]["cpu"])
        cpu, tries = figures["cpu"], ", ".join(f"{run[0]['cpu']:.2f}" for run in runs)
        print(
            f"{figures['users']:,} users in {pages:,} /api/users requests: client CPU "
            f"{cpu:.2f} s = {cpu / pages * 1000:.2f} ms a page (wall {figures['wall']:.2f} s; "
            f"best of {args.repeat}: {tries} s); {figures['first']:.2f} s of it before the "
            f"first slice (token, the three lists, the first window)"
        )
        if args.profile:
            print(measure(sim, args.profile)[2])


if __name__ == "__main__":
    main()
