"""Benchmark: authz-sync beside dlt, on the same tenant and the same kind of database.

Run by hand (not part of the test suite; needs `pip install '.[bench]'` for dlt):

    python bench/compare.py                                   # S and M, SQLite and PostgreSQL
    python bench/compare.py --sizes S,M,L --databases sqlite,postgresql,mariadb   # the README's
    python bench/compare.py --sizes L --databases sqlite --first-loads-only   # no reruns
    python bench/run.py --dlt ...                             # the same, from the main benchmark

For each size and database it serves one generated tenant from two simulators (Auth0's cap for
authz-sync; the cap lifted for dlt, which cannot slice the users: bench/dlt_pipeline.py), gives
each tool a fresh database, and runs them interleaved in child processes: authz-sync's first
load, dlt's, authz-sync's no-op rerun, dlt's. It prints the wall time and peak RSS of each,
and the ratios dlt / authz-sync (above 1: authz-sync is faster or smaller). A dlt run that
outlasts --dlt-timeout (900 s) is stopped and printed as a lower bound ("> 900.0").
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import make_url

from bench.run import MEASURE, PEAK, SIZES, fresh_database, run_child
from sync.simulator import Simulator, generate_tenant

PIPELINE = str(Path(__file__).resolve().parent / "dlt_pipeline.py")
DLT_DESTINATIONS = {"sqlite": "sqlalchemy", "postgresql": "postgres", "mariadb": "sqlalchemy"}
LOADED = re.compile(r"dlt loaded (\d+) rows")


@dataclass
class Figures:
    wall: float
    peak_rss_mb: float | None  # None: the run was stopped at its time limit
    rows: int  # written: authz-sync's rows written, dlt's rows normalized and loaded
    stopped: bool = False  # at --dlt-timeout: `wall` is then a lower bound


def sim_env(sim: Simulator, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_SYNC_")}
    return env | {
        "AUTHZ_SYNC_AUTH0_DOMAIN": sim.url,
        "AUTHZ_SYNC_CLIENT_ID": sim.client_id,
        "AUTHZ_SYNC_CLIENT_SECRET": sim.client_secret,
        "AUTHZ_SYNC_EXTENSION_URL": sim.api_url,
        "AUTHZ_SYNC_DATABASE_URL": database_url,
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }


def authz_sync(sim: Simulator, url: str) -> Figures:
    figures = run_child(sim_env(sim, url))
    return Figures(figures.wall, figures.peak_rss_mb, figures.rows)


def dlt_run(sim: Simulator, kind: str, url: str, pipelines_dir: str, timeout: float) -> Figures:
    """bench/dlt_pipeline.py in a child process, measured like authz-sync's, stopped (with
    its children) after `timeout` seconds: dlt's merge on MariaDB runs for hours at L."""
    started = time.monotonic()
    command = [sys.executable, "-c", MEASURE, sys.executable, PIPELINE]
    command += [DLT_DESTINATIONS[kind], dlt_url(kind, url), pipelines_dir]
    env = sim_env(sim, url)
    if kind == "sqlite":  # SQLite has one writer: parallel load jobs fail with "database is locked"
        env["LOAD__WORKERS"] = "1"
    child = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a stop reaches the pipeline too
    )
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return Figures(timeout, None, 0, stopped=True)
    wall = time.monotonic() - started
    if child.returncode != 0:
        log = Path(pipelines_dir) / "dlt-failure.log"
        log.write_text(stderr)
        cause = next(
            (line for line in stderr.splitlines() if "Error" in line or "error" in line),
            stderr.strip()[-300:],
        )
        raise SystemExit(f"dlt failed ({child.returncode}): {cause.strip()[:400]}")
    peak = int(PEAK.search(stderr).group(1)) / 1024
    return Figures(wall, peak, int(LOADED.search(stdout).group(1)))


def dlt_url(kind: str, url: str) -> str:
    """dlt's postgres destination takes a plain URL (it brings its own driver) and insists on
    a password, which a server that trusts local connections ignores."""
    if kind != "postgresql":
        return url
    parsed = make_url(url)
    return parsed.set(
        drivername="postgresql", password=parsed.password or "unused"
    ).render_as_string(hide_password=False)


def compare(
    size: str, kind: str, latency: float, workdir: Path, reruns: bool, dlt_timeout: float
) -> dict[str, Figures]:
    tenant = generate_tenant(**SIZES[size])
    tenant.index_created_at()
    ours, ours_drop = fresh_database(kind, workdir)
    theirs, theirs_drop = fresh_database(kind, workdir)
    ours_url, theirs_url = (u.render_as_string(hide_password=False) for u in (ours, theirs))
    pipelines = tempfile.mkdtemp(dir=workdir)
    try:
        with (
            Simulator(tenant, latency=latency) as capped,
            Simulator(tenant, latency=latency, search_cap=None) as uncapped,
        ):
            figures = {
                "authz-sync first": authz_sync(capped, ours_url),
                "dlt first": dlt_run(uncapped, kind, theirs_url, pipelines, dlt_timeout),
            }
            if reruns and not figures["dlt first"].stopped:  # else dlt has nothing to rerun
                figures["authz-sync rerun"] = authz_sync(capped, ours_url)
                figures["dlt rerun"] = dlt_run(uncapped, kind, theirs_url, pipelines, dlt_timeout)
            return figures
    finally:
        ours_drop()
        theirs_drop()


HEADER = (
    "| tenant (users / groups / memberships) | database | first load s (dlt / authz-sync) | "
    "no-op rerun s | peak RSS MB | rows written |\n|---|---|---|---|---|---|"
)


def row(size: str, kind: str, latency: float, f: dict[str, Figures]) -> str:
    shape = SIZES[size]
    tenant = f"{size}: {shape['users']:,} / {shape['groups']:,} / {shape['memberships']:,}"
    a1, d1 = f["authz-sync first"], f["dlt first"]
    rerun = "not run"
    if "dlt rerun" in f:
        rerun = _ratio(f["dlt rerun"], f["authz-sync rerun"])
    rows = f"{d1.rows:,}" if not d1.stopped else "(stopped)"
    return (
        f"| {tenant}, {latency * 1000:.0f} ms | {kind} "
        f"| {_ratio(d1, a1)} | {rerun} | {_memory(f)} | {rows} / {a1.rows:,} |"
    )


def _ratio(theirs: Figures, ours: Figures) -> str:
    """dlt / authz-sync; a dlt run stopped at its limit gives a lower bound (">")."""
    bound = "> " if theirs.stopped else ""
    ratio = theirs.wall / ours.wall
    return f"{bound}{theirs.wall:.1f} / {ours.wall:.1f} = **{bound}{ratio:.2f}x**"


def _memory(f: dict[str, Figures]) -> str:
    """Peak RSS over the runs that finished (a stopped run's peak is unknown)."""
    ours = max(v.peak_rss_mb for k, v in f.items() if k.startswith("authz-sync"))
    finished = [v.peak_rss_mb for k, v in f.items() if k.startswith("dlt") and not v.stopped]
    if not finished:
        return f"? / {ours:.0f}"
    theirs = max(finished)
    return f"{theirs:.0f} / {ours:.0f} = {theirs / ours:.2f}x"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="S,M", help="comma-separated: S, M, L, XL")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument(
        "--first-loads-only",
        action="store_true",
        help="skip the no-op reruns (dlt's merge on SQLite takes over 20 minutes at L)",
    )
    parser.add_argument(
        "--dlt-timeout",
        type=float,
        default=900.0,
        help="seconds after which a dlt run is stopped and reported as a lower bound",
    )
    args = parser.parse_args(argv)
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        for size in args.sizes.split(","):
            for kind in args.databases.split(","):
                reruns = not args.first_loads_only
                figures = compare(
                    size.strip(), kind.strip(), args.latency, Path(workdir), reruns,
                    args.dlt_timeout,
                )  # fmt: skip
                print(row(size.strip(), kind.strip(), args.latency, figures), flush=True)


if __name__ == "__main__":
    main()
