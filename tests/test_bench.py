"""The benchmark still runs (figures are read by people, not asserted: no timing checks here)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sync.simulator import Simulator, generate_tenant

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


def test_the_dlt_pipeline_loads_every_user_past_the_cap(tmp_path):
    """What bench/compare.py runs beside authz-sync does the same job (when dlt is installed:
    `pip install '.[bench]'`)."""
    pytest.importorskip("dlt")
    sys.path.insert(0, str(BENCH.parent.parent))
    from bench.compare import PIPELINE, sim_env

    url = f"sqlite:///{tmp_path / 'dlt.db'}"
    tenant = generate_tenant(users=1100, groups=10, memberships=1200)
    with Simulator(tenant, search_cap=None) as sim:
        command = [sys.executable, PIPELINE, "sqlalchemy", url, str(tmp_path / "pipelines")]
        done = subprocess.run(command, env=sim_env(sim, url), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    with sqlite3.connect(tmp_path / "dlt__authz.db") as dataset:  # dlt attaches one per dataset
        ids = {row[0] for row in dataset.execute("SELECT user_id FROM users")}
        members = dataset.execute("SELECT count(*) FROM groups__members").fetchone()[0]
    assert ids == set(tenant.users)
    assert members == sum(len(g["members"]) for g in tenant.groups)
