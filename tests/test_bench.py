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
    for figure in ("requests      13 (floor 13", "fetch ", "rows/s), peak RSS ", "no-op re-run"):
        assert figure in out, out
    no_op = next(line for line in out.splitlines() if line.startswith("no-op re-run"))
    assert no_op.endswith(" 0 rows written"), no_op
    # 10 of the 1000 users logged in: their rows, and nothing else, are written.
    assert out.splitlines()[-1].endswith(" 10 rows written"), out
