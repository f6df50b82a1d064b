"""Benchmark: effective access derived in Python (effective.py) vs in SQL (effective_sql.py).

Run by hand (not part of the test suite):

    python bench/effective.py                          # L on SQLite and PostgreSQL
    python bench/effective.py --sizes M,L --databases sqlite,postgresql,mariadb

For each size, database and derivation it starts a child process that builds the tenant's rows
(as a run holds them after the fetch), stages the link tables into twins in one transaction,
then derives the three effective tables into twins, and prints the derivation's wall time,
the rows it derived, and how much it raised the child's peak RSS over what it already held
(the rows and the staged links), with the Python allocations' peak (tracemalloc) beside it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the Python oracle

from effective_python import stage_effective

from bench.run import SIZES, fresh_database
from sync.model import Snapshot
from sync.simulator import generate_tenant
from sync.simulator.routes import _full_group
from sync.sql import schema
from sync.sql.effective import EffectiveLinks, stage_effective_sql
from sync.sql.engine import begin_writing, open_engine
from sync.sql.revisions import ensure_schema
from sync.sql.twins import StagedTable
from sync.transform import build_rows

LINKS = (
    schema.groups,
    schema.group_members,
    schema.group_nesting,
    schema.group_roles,
    schema.role_users,
    schema.role_permissions,
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(size: str, url: str, derivation: str) -> dict:
    """In the child: stage the links, derive, report."""
    tenant = generate_tenant(**SIZES[size])
    groups = [_full_group(g) for g in tenant.groups]
    rows = build_rows(Snapshot(groups, tenant.roles, tenant.permissions))
    del tenant, groups
    engine = open_engine(url)
    ensure_schema(engine)
    with engine.connect() as connection:
        begin_writing(connection)
        staged = {}
        for table in LINKS:
            staged[table.name] = StagedTable(connection, table, schema.SYNCED_TABLES[table.name])
            staged[table.name].add_all(rows.rows(table.name), distinct=True)

        def stage(name, keys):
            return StagedTable(connection, schema.metadata.tables[name], keys)

        before = peak_rss_mb()
        tracemalloc.start()
        started = time.monotonic()
        if derivation == "python":
            effective = stage_effective(rows, staged[schema.role_permissions.name], stage)
        else:
            links = EffectiveLinks.of({name: t.twin for name, t in staged.items()})
            effective = stage_effective_sql(connection, links, stage)
        seconds = time.monotonic() - started
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        derived = {
            name: connection.scalar(select(func.count()).select_from(t.twin))
            for name, t in effective.items()
        }
        connection.rollback()
    engine.dispose()
    return {
        "seconds": seconds,
        "rows": derived,
        "rss_before_mb": before,
        "rss_raise_mb": peak_rss_mb() - before,
        "traced_mb": traced,
    }


def run_child(size: str, kind: str, derivation: str, workdir: Path) -> dict:
    url, drop = fresh_database(kind, workdir)
    try:
        rendered = url.render_as_string(hide_password=False)
        command = [sys.executable, __file__, "--child", size, rendered, derivation]
        out = subprocess.run(command, capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"{derivation} on {kind} failed: {out.stderr.strip()[-800:]}")
        return json.loads(out.stdout)
    finally:
        drop()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(*sys.argv[2:5])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="L")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    print("size db          derivation  seconds  effective rows  RSS raise MB  traced MB")
    with tempfile.TemporaryDirectory() as workdir:
        for size in args.sizes.split(","):
            for kind in args.databases.split(","):
                for derivation in ("python", "sql"):
                    f = run_child(size, kind, derivation, Path(workdir))
                    print(
                        f"{size:4} {kind:11} {derivation:10} {f['seconds']:8.2f}  "
                        f"{sum(f['rows'].values()):14,}  {f['rss_raise_mb']:12.1f}  "
                        f"{f['traced_mb']:9.1f}"
                    )


if __name__ == "__main__":
    main()
