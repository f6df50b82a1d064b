"""The migrations build exactly the tables of sync.schema, on every database, and text of any
script (emoji included) round-trips."""

from __future__ import annotations

import zipfile

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select, text

from sync.errors import SchemaError
from sync.sql import revisions, schema
from sync.sql.engine import open_engine


def test_migrations_match_the_model(database_url):
    engine = open_engine(database_url)
    try:
        revisions.upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, schema.metadata) == []
            assert revisions.current_revision(connection) == revisions.head_revision()
    finally:
        engine.dispose()


def test_head_names_the_newest_migration():
    """The run compares with revisions.HEAD instead of loading the scripts: it must be theirs."""
    scripts = ScriptDirectory.from_config(revisions.alembic_config())
    assert scripts.get_current_head() == revisions.HEAD


def test_the_revision_is_read_as_alembic_reads_it(database_url):
    engine = open_engine(database_url)
    alembic_reads = lambda c: MigrationContext.configure(c).get_current_revision()  # noqa: E731
    try:
        with engine.connect() as connection:  # empty: no version table
            assert revisions.current_revision(connection) is None is alembic_reads(connection)
        revisions.upgrade(engine, "0003")
        with engine.connect() as connection:
            assert revisions.current_revision(connection) == "0003" == alembic_reads(connection)
        revisions.upgrade(engine)
        with engine.begin() as connection:
            assert revisions.current_revision(connection) == revisions.HEAD
            connection.execute(text("INSERT INTO alembic_version VALUES ('0004')"))
            with pytest.raises(SchemaError, match="records 2 schema revisions"):
                revisions.current_revision(connection)
    finally:
        engine.dispose()


def test_unicode_and_case_distinct_ids_round_trip(database_url):
    engine = open_engine(database_url)
    rows = [
        {"user_id": "auth0|abc", "name": "Zoë Ångström 🚀", "changed_at": _now()},
        {"user_id": "auth0|ABC", "name": "東京 👩🏽‍💻", "changed_at": _now()},
        {"user_id": "samlp|Corp Dir|jane@example.com", "name": "ß", "changed_at": _now()},
    ]
    try:
        revisions.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(insert(schema.users), rows)
        with engine.connect() as connection:
            query = select(schema.users.c.user_id, schema.users.c.name)
            found = {user_id: name for user_id, name in connection.execute(query)}
    finally:
        engine.dispose()
    assert found == {row["user_id"]: row["name"] for row in rows}


def _now():
    from sync.sql.ledger import utcnow

    return utcnow()


def test_the_wheel_ships_the_migrations(tmp_path):
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
    )
    (wheel,) = tmp_path.glob("authz_sync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sync/migrations/env.py" in names
    assert "sync/migrations/script.py.mako" in names
    assert "sync/migrations/versions/0001_initial_schema.py" in names
    assert "sync/simulator/server.py" in names


def test_upgrading_to_0002_opens_history_for_existing_links(database_url):
    engine = open_engine(database_url)
    try:
        revisions.upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.execute(
                insert(schema.group_members),
                [{"group_id": "g1", "user_id": "auth0|1", "is_orphan": False}],
            )
        revisions.upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(select(schema.group_members_history)).mappings().all()
    finally:
        engine.dispose()
    assert len(rows) == 1
    assert (rows[0]["group_id"], rows[0]["user_id"]) == ("g1", "auth0|1")
    assert rows[0]["valid_to"] is None and rows[0]["valid_from_run_id"] == 0


def test_the_installed_wheel_migrates_and_syncs_outside_the_checkout(tmp_path):
    """The wheel alone (no checkout on the path) carries what `demo` needs, migrations too."""
    import subprocess
    import sys
    import sysconfig
    from pathlib import Path

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
    )
    (wheel,) = tmp_path.glob("authz_sync-*.whl")
    venv = tmp_path / "venv"
    # Dependencies from this interpreter's environment (a virtualenv's too, which
    # --system-site-packages would miss); authz-sync itself only from the wheel. A .pth line only
    # adds the directory: its own .pth files (the checkout's editable install) are not run.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    purelib = [
        str(venv / "bin" / "python"),
        "-c",
        "import sysconfig; print(sysconfig.get_path('purelib'))",
    ]
    venv_site = Path(
        subprocess.run(purelib, capture_output=True, text=True, check=True).stdout.strip()
    )
    (venv_site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)]
    subprocess.run(pip, check=True)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    done = subprocess.run(
        [str(venv / "bin" / "authz-sync"), "demo", "--users", "120"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "The groups of" in done.stdout
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sync; print(sync.__file__)"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(venv) in where  # the wheel's copy ran, not the checkout


def test_upgrading_to_0005_keeps_the_rows_and_makes_them_comparable(database_url):
    """Rows written before 0005: SQLite's timestamps move to the ISO form (and back on a
    downgrade), MySQL/MariaDB's keys to NO PAD (a trailing-space twin then fits), and logged
    changes get the cause `tenant`."""
    from datetime import datetime

    from sqlalchemy import text

    engine = open_engine(database_url)
    stamp = datetime(2026, 12, 1, 21, 15, 15, 149184)
    try:
        revisions.upgrade(engine, "0004")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO authz_users (user_id, name, changed_at) VALUES ('auth0|x', 'X', "
                    ":at)"
                ),
                {"at": stamp if engine.dialect.name != "sqlite" else str(stamp)},
            )
            connection.execute(
                text(
                    "INSERT INTO authz_changes (run_id, changed_at, entity, entity_id, operation) "
                    "VALUES (1, :at, 'user', 'auth0|x', 'insert')"
                ),
                {"at": stamp if engine.dialect.name != "sqlite" else str(stamp)},
            )
        revisions.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                insert(schema.users), [{"user_id": "auth0|x ", "name": "X ", "changed_at": stamp}]
            )
            names = dict(
                connection.execute(select(schema.users.c.user_id, schema.users.c.name)).all()
            )
            changed = connection.execute(select(schema.users.c.changed_at)).scalars().all()
            cause = connection.scalar(select(schema.changes.c.cause))
            stored = connection.scalar(text("SELECT changed_at FROM authz_users LIMIT 1"))
            later = connection.scalar(
                text("SELECT COUNT(*) FROM authz_users WHERE changed_at >= '2026-12-01T21:00:00'")
            )
        assert names == {"auth0|x": "X", "auth0|x ": "X "}
        assert changed == [stamp, stamp] and cause == "tenant" and later == 2
        if engine.dialect.name == "sqlite":
            assert stored == "2026-12-01T21:15:15.149184"
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM authz_users WHERE user_id = 'auth0|x '"))
            revisions.downgrade(engine, "0004")
            with engine.connect() as connection:
                old = connection.scalar(text("SELECT changed_at FROM authz_users"))
            assert old == "2026-12-01 21:15:15.149184"
    finally:
        engine.dispose()
