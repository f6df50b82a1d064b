"""Benchmark: whole runs with users read through the export job vs the /api/users windows.

Run by hand (not part of the test suite):

    python bench/users_source.py                               # M, 50 ms a request, SQLite
    python bench/users_source.py --size XL --latency 0.05      # a million users: ~15 min
    python bench/users_source.py --size L --database postgresql

One generated tenant, one simulator that grants the Management API (so the export path is
open), two fresh databases of the same kind. Each source gets its first `authz-sync run` (in
a child process, measured like bench/run.py's), then `backfill --user-details` through the
export job (the windows path's backfill is one request per user: its count is printed, not
run). Printed side by side, with issue 14's targets: the requests that read the users, the
wall time, peak RSS, and the backfill's requests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.compare import sim_env
from bench.run import MEASURE, PEAK, SIZES, fresh_database, run_child
from sync.simulator import Simulator, generate_tenant

LISTS = 3  # /api/groups, /api/roles, /api/permissions


def env_for(sim: Simulator, url: str, source: str) -> dict[str, str]:
    polls = {"AUTHZ_SYNC_USERS_EXPORT_POLL_INTERVAL": "0.5"}
    return sim_env(sim, url) | {"AUTHZ_SYNC_USERS_SOURCE": source} | polls


def user_requests(sim: Simulator, since: int) -> int:
    """Requests after the `since`-th that read users: /api/users, the jobs API, the download
    (the token endpoint and the three lists left out)."""
    records = sim.requests[since:]
    api = [r for r in records if r.path.startswith("/api/") and not r.path.startswith("/api/v2")]
    management = [r for r in records if r.path.startswith("/api/v2/")]
    return len(api) - LISTS + len(management) + len(sim.storage.requests)


def backfill(env: dict[str, str]) -> tuple[float, float, str]:
    started = time.monotonic()
    command = [sys.executable, "-c", MEASURE, "authz-sync", "backfill", "--user-details"]
    child = subprocess.run(command, env=env, capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(f"backfill failed ({child.returncode}): {child.stderr.strip()[-400:]}")
    peak = int(PEAK.search(child.stderr).group(1)) / 1024
    return time.monotonic() - started, peak, child.stdout.strip()


def measure(sim: Simulator, url: str, source: str, with_backfill: bool) -> dict:
    since = len(sim.requests)
    sim.storage.requests.clear()
    run = run_child(env_for(sim, url, source))
    figures = {"run": run, "user requests": user_requests(sim, since)}
    if with_backfill:
        since = len(sim.requests)
        sim.storage.requests.clear()
        figures["backfill"] = backfill(env_for(sim, url, source))
        figures["backfill requests"] = user_requests(sim, since) + LISTS  # no lists there
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="M", choices=list(SIZES))
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    args = parser.parse_args(argv)
    shape = SIZES[args.size]
    tenant = generate_tenant(**shape)
    tenant.index_created_at()
    with tempfile.TemporaryDirectory() as workdir:
        (ours, drop_ours), (theirs, drop_theirs) = (
            fresh_database(args.database, Path(workdir)) for _ in range(2)
        )
        try:
            with Simulator(tenant, latency=args.latency, management_scopes=["read:users"]) as sim:
                export = measure(sim, ours.render_as_string(hide_password=False), "export", True)
                windows = measure(
                    sim, theirs.render_as_string(hide_password=False), "extension", False
                )
        finally:
            drop_ours()
            drop_theirs()
    report(args, shape, export, windows)


def report(args, shape, export: dict, windows: dict) -> None:
    e, w = export["run"], windows["run"]
    print(
        f"== {args.size}: {shape['users']:,} users on {args.database}, "
        f"{args.latency * 1000:.0f} ms a request"
    )
    print("|  | export job | /api/users windows | target |\n|---|---|---|---|")
    print(
        f"| requests reading the users | {export['user requests']:,} "
        f"| {windows['user requests']:,} | export ≤ 10 |"
    )
    print(f"| all requests of the run | {e.requests:,} | {w.requests:,} | export ≤ 13 |")
    print(
        f"| run wall time | {e.wall:.1f} s | {w.wall:.1f} s "
        f"| export ≤ 15% of windows: **{e.wall / w.wall:.0%}** |"
    )
    print(
        f"| peak RSS | {e.peak_rss_mb:.0f} MB | {w.peak_rss_mb:.0f} MB "
        f"| export ≤ windows: {'yes' if e.peak_rss_mb <= w.peak_rss_mb else 'no'} |"
    )
    seconds, peak, summary = export["backfill"]
    print(
        f"| backfill --user-details | {export['backfill requests']:,} requests, "
        f"{seconds:.1f} s, {peak:.0f} MB | {shape['users']:,} requests (one per user) "
        f"| ≤ 10 requests |"
    )
    print(f"backfill said: {summary}")


if __name__ == "__main__":
    main()
