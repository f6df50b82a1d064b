"""Benchmark: what a sync costs in requests, waiting, writing and memory, per tenant size.

Run by hand (not part of the test suite):

    python bench/run.py                       # sizes S and M, on SQLite and PostgreSQL
    python bench/run.py --sizes S,M,L --databases sqlite,postgresql,mariadb --latency 0.05
    python bench/run.py --sizes M --rate-limit 50
    python bench/run.py --sizes XL --databases sqlite --latency 0   # memory at a million users
    python bench/run.py --dlt --sizes S,M,L --latency 0   # side by side with dlt (compare.py)

For each size and database it serves a generated tenant from the simulator (with the given
latency per answer and, optionally, a rate limit), runs the real `authz-sync run` in a child
process three times (the second run is a no-op; before the third, 1% of the users log in), and
prints:
- API requests made vs the floor ⌈users/100⌉ + 3 list calls, and 429s provoked;
- wall time vs the rate-limit floor (requests ÷ allowed rate), when a rate limit is set;
- fetch and apply time, rows written per second, peak RSS of the child;
- on PostgreSQL, the same rows loaded by COPY into copies of the tables, as a ratio of our apply
  throughput to COPY's; and COPY into bare copies with the keys and indexes built after: the
  write floor of any loader writing these rows; on SQLite, the same rows copied by SQLite
  itself into a fresh file, indexes built after, committed (the write floor there);
- the no-op run's requests (it reads the first run's windows) and apply time as a share of
  the initial one; the same for the night when 1% of the users logged in.

bench/slicing.py measures the user windows' requests alone, offline, for many tenant shapes.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.config import normalize_database_url
from sync.simulator import Simulator, generate_tenant
from sync.sql import schema

SIZES = {
    "S": {"users": 1_000, "groups": 50, "memberships": 2_000, "roles": 20, "permissions": 50},
    "M": {"users": 20_000, "groups": 1_000, "memberships": 50_000, "roles": 50, "permissions": 200},
    "L": {
        "users": 100_000,
        "groups": 5_000,
        "memberships": 500_000,
        "roles": 100,
        "permissions": 400,
    },
    # L's groups, roles and memberships with ten times the users: memory must not grow.
    "XL": {
        "users": 1_000_000,
        "groups": 5_000,
        "memberships": 500_000,
        "roles": 100,
        "permissions": 400,
    },
}
SERVERS = {
    "postgresql": os.environ.get(
        "AUTHZ_SYNC_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("AUTHZ_SYNC_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
TIMING = re.compile(
    r"timing: fetch ([\d.]+) s \(([\d.]+) s of it staging users\), apply ([\d.]+) s "
    r"\((\d+) rows written\)"
)
REQUESTS = re.compile(r"(\d+) API requests")
PEAK = re.compile(r"peak-rss-kb (\d+)")
# A one-child wrapper: RUSAGE_CHILDREN then holds exactly that child's peak resident memory.
MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print('peak-rss-kb', peak, file=sys.stderr)\n"
    "sys.exit(code)"
)


@dataclass
class RunFigures:
    wall: float
    fetch: float
    staging: float  # of fetch: users written to their temporary table as they arrive
    apply: float
    rows: int
    requests: int
    peak_rss_mb: float


def run_child(env: dict[str, str]) -> RunFigures:
    """`authz-sync -v run` in a child process; its figures and peak RSS."""
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", MEASURE, "authz-sync", "-v", "run", "--allow-deletes"],
        env=env,
        capture_output=True,
        text=True,
    )
    stdout, stderr = child.stdout, child.stderr
    wall = time.monotonic() - started
    peak = int(PEAK.search(stderr).group(1)) / 1024
    if child.returncode != 0:
        raise SystemExit(f"authz-sync run failed ({child.returncode}): {stderr.strip()[-500:]}")
    fetch, staging, apply, rows = TIMING.search(stderr).groups()
    requests = int(REQUESTS.search(stdout).group(1))
    return RunFigures(wall, float(fetch), float(staging), float(apply), int(rows), requests, peak)


def fresh_database(kind: str, workdir: Path) -> tuple[URL, callable]:
    if kind == "sqlite":
        url = make_url(f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}")
        return url, lambda: None
    server = make_url(normalize_database_url(SERVERS[kind]))
    name = f"authz_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    quote = '"' if kind == "postgresql" else "`"
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))

    def drop() -> None:
        with admin.connect() as connection:
            force = " WITH (FORCE)" if kind == "postgresql" else ""
            connection.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
        admin.dispose()

    return server.set(database=name), drop


def copy_throughput(url: URL) -> tuple[int, float, float]:
    """The same rows COPYed into empty copies of the tables: seconds with the tables' keys and
    indexes in place, and seconds into bare copies with the keys and indexes built after
    (what any loader writing these rows needs at least: the write floor)."""
    import io

    engine = create_engine(url)
    raw = engine.raw_connection()
    total_rows, indexed, bare = 0, 0.0, 0.0
    try:
        cursor = raw.cursor()
        for name in [*schema.SYNCED_TABLES, *schema.EFFECTIVE_TABLES]:
            buffer = io.BytesIO()
            with cursor.copy(f"COPY {name} TO STDOUT") as copy:
                for chunk in copy:
                    buffer.write(chunk)
            data = buffer.getvalue()
            total_rows += data.count(b"\n")
            cursor.execute(f"CREATE TABLE copy_{name} (LIKE {name} INCLUDING ALL)")
            cursor.execute(f"CREATE TABLE bare_{name} (LIKE {name} INCLUDING DEFAULTS)")
            started = time.monotonic()
            with cursor.copy(f"COPY copy_{name} FROM STDIN") as copy:
                copy.write(data)
            indexed += time.monotonic() - started
            started = time.monotonic()
            with cursor.copy(f"COPY bare_{name} FROM STDIN") as copy:
                copy.write(data)
            for statement in _key_and_indexes(schema.metadata.tables[name], f"bare_{name}"):
                cursor.execute(statement)
            bare += time.monotonic() - started
        raw.rollback()
    finally:
        raw.close()
        engine.dispose()
    return total_rows, indexed, bare


def sqlite_write_floor(url: URL) -> tuple[int, float]:
    """The same rows copied by SQLite itself (INSERT … SELECT, in key order, no Python) into a
    fresh file in WAL mode, indexes built after, committed: the write floor on SQLite."""
    import sqlite3

    floor = f"{url.database}.floor"
    engine = create_engine(f"sqlite:///{floor}")
    with engine.begin() as connection:  # the tables as authz-sync makes them, without indexes
        connection.exec_driver_sql("PRAGMA journal_mode = WAL")
        for name in [*schema.SYNCED_TABLES, *schema.EFFECTIVE_TABLES]:
            table = schema.metadata.tables[name]
            table.create(connection)
            for index in table.indexes:
                index.drop(connection)
    engine.dispose()
    database = sqlite3.connect(floor, isolation_level=None)
    database.execute("ATTACH DATABASE ? AS loaded", (url.database,))
    total_rows, started = 0, time.monotonic()
    database.execute("BEGIN")
    for name in [*schema.SYNCED_TABLES, *schema.EFFECTIVE_TABLES]:
        table = schema.metadata.tables[name]
        key = ", ".join(column.name for column in table.primary_key.columns)
        cursor = database.execute(
            f"INSERT INTO main.{name} SELECT * FROM loaded.{name} ORDER BY {key}"
        )
        total_rows += cursor.rowcount
        for statement in _index_statements(table, name, lambda index: f"main.{index.name}"):
            database.execute(statement)
    database.execute("COMMIT")
    seconds = time.monotonic() - started
    database.close()
    for suffix in ("", "-wal", "-shm"):
        Path(floor + suffix).unlink(missing_ok=True)
    return total_rows, seconds


def _key_and_indexes(table, name: str) -> list[str]:
    key = ", ".join(column.name for column in table.primary_key.columns)
    indexes = _index_statements(table, name, lambda index: f"{name}_{index.name}")
    return [f"ALTER TABLE {name} ADD PRIMARY KEY ({key})", *indexes]


def _index_statements(table, on: str, named) -> list[str]:
    """CREATE INDEX for each of `table`'s indexes, on the table called `on`."""
    statements = []
    for index in sorted(table.indexes, key=lambda index: index.name):
        columns = ", ".join(column.name for column in index.columns)
        unique = "UNIQUE " if index.unique else ""
        statements.append(f"CREATE {unique}INDEX {named(index)} ON {on} ({columns})")
    return statements


def bench(size: str, kind: str, args, workdir: Path) -> None:
    shape = SIZES[size]
    started = time.monotonic()
    tenant = generate_tenant(**shape)
    tenant.index_created_at()  # the simulator's searches must keep up with a million users
    generated = time.monotonic() - started
    url, drop = fresh_database(kind, workdir)
    sim = Simulator(tenant, latency=args.latency, rate_limit=args.rate_limit, rate_limit_burst=10)
    try:
        with sim:
            env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_SYNC_")}
            env |= {
                "AUTHZ_SYNC_AUTH0_DOMAIN": sim.url,
                "AUTHZ_SYNC_CLIENT_ID": sim.client_id,
                "AUTHZ_SYNC_CLIENT_SECRET": sim.client_secret,
                "AUTHZ_SYNC_EXTENSION_URL": sim.api_url,
                "AUTHZ_SYNC_DATABASE_URL": url.render_as_string(hide_password=False),
                "AUTHZ_SYNC_EXTENSION_CONCURRENCY": str(args.concurrency),
            }
            first = run_child(env)
            limited = sim.rate_limited
            second = run_child(env)
            log_in(tenant, share=0.01)
            nightly = run_child(env)
        floor = math.ceil(shape["users"] / 100) + 3
        report(size, kind, shape, generated, floor, first, second, limited, args, url)
        print(
            f"nightly run   1% of users logged in: {nightly.requests:,} requests, "
            f"apply {nightly.apply:.2f} s "
            f"({nightly.apply / first.apply:.0%} of the initial apply), "
            f"{nightly.rows:,} rows written"
        )
    finally:
        drop()


def log_in(tenant, share: float) -> None:
    """A night's logins: `share` of the users get a new last_login and logins_count."""
    step = round(1 / share)
    for user in list(tenant.users.values())[::step]:
        user["last_login"] = "2026-12-01T03:00:00.000Z"
        user["logins_count"] = user.get("logins_count", 0) + 1


def report(size, kind, shape, generated, floor, first, second, limited, args, url) -> None:
    print(
        f"\n== {size} ({shape['users']:,} users, {shape['groups']:,} groups, "
        f"{shape['memberships']:,} memberships) on {kind}; tenant generated in {generated:.1f} s"
    )
    ratio = first.requests / floor
    print(f"requests      {first.requests:,} (floor {floor:,}: {ratio:.3f}x); 429s {limited}")
    if args.rate_limit:
        rate_floor = first.requests / args.rate_limit
        print(
            f"wall time     {first.wall:.1f} s vs rate-limit floor {rate_floor:.1f} s "
            f"({first.wall / rate_floor:.2f}x)"
        )
    else:
        print(f"wall time     {first.wall:.1f} s ({args.latency * 1000:.0f} ms per answer)")
    per_second = first.rows / first.apply if first.apply else float("inf")
    print(
        f"fetch {first.fetch:.1f} s (staging users {first.staging:.1f} s), "
        f"apply {first.apply:.1f} s, {first.rows:,} rows written "
        f"({per_second:,.0f} rows/s), peak RSS {first.peak_rss_mb:.0f} MB"
    )
    if kind == "postgresql":
        rows, indexed, bare = copy_throughput(url)
        with_staging = first.rows / (first.apply + first.staging)
        print(
            f"COPY          {rows:,} rows in {indexed:.2f} s ({rows / indexed:,.0f} rows/s); "
            f"our apply = {per_second * indexed / rows:.0%} of COPY "
            f"({with_staging * indexed / rows:.0%} counting the users' staging)"
        )
        print(
            f"write floor   COPY into bare tables, keys and indexes built after: {bare:.2f} s "
            f"({rows / bare:,.0f} rows/s); our apply = {per_second * bare / rows:.0%} of it"
        )
    if kind == "sqlite":
        rows, seconds = sqlite_write_floor(url)
        print(
            f"write floor   SQLite copying the same rows itself, indexes built after, "
            f"committed: {seconds:.2f} s ({rows / seconds:,.0f} rows/s); "
            f"our apply = {per_second * seconds / rows:.0%} of it"
        )
    share = second.apply / first.apply if first.apply else 0
    print(
        f"no-op re-run  {second.requests:,} requests ({second.requests / floor:.3f}x, in the "
        f"first run's windows), wall {second.wall:.1f} s, fetch {second.fetch:.1f} s, "
        f"apply {second.apply:.2f} s ({share:.0%} of the initial apply), "
        f"{second.rows} rows written"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="S,M", help="comma-separated: S, M, L, XL")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--dlt", action="store_true", help="compare with dlt (bench/compare.py)")
    args = parser.parse_args()
    if args.dlt:
        from bench.compare import main as compare

        options = {"--sizes": args.sizes, "--databases": args.databases, "--latency": args.latency}
        compare([str(item) for pair in options.items() for item in pair])
        return
    with tempfile.TemporaryDirectory() as workdir:
        for size in args.sizes.split(","):
            for kind in args.databases.split(","):
                bench(size.strip(), kind.strip(), args, Path(workdir))


if __name__ == "__main__":
    main()
