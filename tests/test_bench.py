"""The benchmark still runs (figures are read by people, not asserted: no timing checks here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def test_the_benchmark_runs_and_prints_every_figure():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "S", "--databases", "sqlite", "--latency", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    figures = ("requests      13 (floor 13", "fetch ", "rows/s), peak RSS ", "write floor ")
    for figure in (*figures, "no-op re-run"):
        assert figure in out, out
    no_op = next(line for line in out.splitlines() if line.startswith("no-op re-run"))
    assert no_op.endswith(" 0 rows written"), no_op
    # 10 of the 1000 users logged in: their rows, and nothing else, are written.
    assert out.splitlines()[-1].endswith(" 10 rows written"), out


def run_bench(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / script), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_user_source_benchmark_prints_both_sources_and_the_targets():
    out = run_bench("users_source.py", "--size", "S", "--latency", "0")
    # 1,000 users: the export job's create, polls, the total and the download; 10 windows' pages.
    assert "| requests reading the users | " in out and "| export ≤ 10 |" in out, out
    export, windows = (int(n.replace(",", "")) for n in out.split("users | ")[1].split(" |")[:2])
    assert export <= 10 and windows == 10, out
    assert "1,000 requests (one per user)" in out and "1000 profiles fetched" in out, out


def test_the_fetch_cpu_benchmark_prints_a_figure_per_page():
    out = run_bench("fetch_cpu.py", "--users", "2000", "--repeat", "1")
    assert out.startswith("2,000 users in ") and " ms a page " in out, out
