"""What the commands that only read ask the database (`status`, `graph`), on one snapshot.

They must leave the database as they found it: unlike `run`, they never create the schema on an
empty database, and a typo in a SQLite path must not leave a new empty file behind. A database
whose schema is not the one this version reads is refused with the command that fixes it, the
same way `run` refuses it (revisions.py), so the operator meets one rule and one message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, func, select, text

from sync.config import DatabaseSettings
from sync.sql import schema
from sync.sql.engine import database_errors, engine_for, sqlite_file_missing
from sync.sql.revisions import require_current, state_of, state_of_engine

CREATE_WITH = "`authz-sync db upgrade` (or `authz-sync run`, which creates them)"


@contextmanager
def snapshot(database: DatabaseSettings) -> Iterator[Connection]:
    """A connection whose queries all see one committed state, on a schema this version reads.

    Several queries make one picture (the group graph joins four tables); a sync committing
    between them must not mix two states. Database failures become DatabaseError (exit 74).
    A missing database.schema is not created either: it reads as a database without tables.
    """
    engine = engine_for(database)
    try:
        if sqlite_file_missing(engine.url):  # connecting would create it
            require_current(state_of_engine(engine), engine, CREATE_WITH)
        with database_errors(engine), engine.connect() as connection:
            _one_snapshot(connection)
            require_current(state_of(connection), engine, CREATE_WITH)
            yield connection
    finally:
        engine.dispose()


def _one_snapshot(connection: Connection) -> None:
    """Make the reads of this connection share one snapshot, on each database's terms."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # READ COMMITTED, the default, takes a new snapshot per statement.
        connection.execution_options(isolation_level="REPEATABLE READ")
    elif dialect == "sqlite":
        # pysqlite opens no transaction for a SELECT, so each query would see the latest
        # commit; an explicit BEGIN holds one WAL snapshot until the connection rolls back.
        connection.exec_driver_sql("BEGIN")
    # MySQL/MariaDB: REPEATABLE READ is the default; the first read fixes the snapshot.


# The question this project exists for, as an analyst would ask it (the demo prints it).
USER_GROUPS_SQL = """\
SELECT g.name, g.description
FROM authz_group_members AS m
JOIN authz_groups AS g ON g.group_id = m.group_id
WHERE m.user_id = :user_id
ORDER BY g.name"""

BUSIEST_USER_SQL = """\
SELECT m.user_id, u.name FROM authz_group_members AS m
JOIN authz_users AS u ON u.user_id = m.user_id
GROUP BY m.user_id, u.name ORDER BY COUNT(*) DESC, m.user_id LIMIT 1"""


def busiest_user_groups(connection: Connection) -> tuple[str, str, list[tuple]] | None:
    """The user in most groups, and their groups' names and descriptions (USER_GROUPS_SQL);
    None when no user is in any group."""
    busiest = connection.execute(text(BUSIEST_USER_SQL)).first()
    if busiest is None:
        return None
    user_id, name = busiest
    rows = connection.execute(text(USER_GROUPS_SQL), {"user_id": user_id}).all()
    return user_id, name, [tuple(row) for row in rows]


def recent_runs(connection: Connection, limit: int) -> list[dict[str, Any]]:
    """The ledger's newest `limit` rows, newest first, every column."""
    runs = schema.sync_runs
    query = select(runs).order_by(runs.c.run_id.desc()).limit(limit)
    return [dict(row) for row in connection.execute(query).mappings()]


def group_graph(connection: Connection) -> tuple[dict, list, dict, dict]:
    """Group names, nesting edges, direct member counts and distinct members counting nested
    groups: what the group graph is drawn from."""
    groups, nesting = schema.groups, schema.group_nesting
    direct, effective = schema.group_members, schema.effective_group_members
    names = dict(connection.execute(select(groups.c.group_id, groups.c.name)).all())
    edges = connection.execute(select(nesting.c.parent_group_id, nesting.c.child_group_id)).all()
    members = connection.execute(
        select(direct.c.group_id, func.count()).group_by(direct.c.group_id)
    ).all()
    with_nested = connection.execute(
        select(effective.c.group_id, func.count(effective.c.user_id.distinct())).group_by(
            effective.c.group_id
        )
    ).all()
    return names, [tuple(edge) for edge in edges], dict(members), dict(with_nested)
