"""The tables analysts query: a public contract, documented column by column in the README.

Alembic owns the DDL (migrations/); this module is the model the migrations are checked against
and the one place the rest of the code takes table objects from. The names and key columns are
plain data in model.py, so that code without SQLAlchemy (transform.py) can name tables too.

Choices that hold for every table:
- Timestamps are naive UTC (`DateTime` without time zone), the same on every database. SQLite,
  which has no timestamp type, stores them as ISO 8601 text (`2026-12-01T21:15:15.149184`), so
  that ISO strings (what `status --json` prints) compare with them as they do elsewhere.
- On MySQL/MariaDB tables are utf8mb4 with a NO PAD binary collation: emoji round-trip, and ids
  that differ only in case, accents or trailing spaces (`auth0|Ann`, `auth0|ann`, `auth0|ann `)
  stay distinct keys (`utf8mb4_bin` is PAD SPACE: it compares `'x'` and `'x '` as equal).
- No foreign keys: a membership may name a user that no longer exists in Auth0 (kept, flagged
  `is_orphan`), and the job itself guarantees the group/role/permission links (see transform.py).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql, sqlite

from sync import model

# Stable constraint names on every database, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

MYSQL_CHARSET = "utf8mb4"
# Binary (case and accents count) and NO PAD (trailing spaces count): each server names its own.
NO_PAD_BINARY = {"mariadb": "utf8mb4_nopad_bin", "mysql": "utf8mb4_0900_bin"}
PAD_SPACE_BINARY = "utf8mb4_bin"  # MySQL before 8.0 has no NO PAD binary utf8mb4 collation


def binary_collation(dialect) -> str:
    """The collation of every table and text column on this MySQL or MariaDB server."""
    if getattr(dialect, "is_mariadb", False) or dialect.name == "mariadb":
        return NO_PAD_BINARY["mariadb"]
    if (dialect.server_version_info or (8,)) >= (8,):
        return NO_PAD_BINARY["mysql"]
    return PAD_SPACE_BINARY


def mysql_table_args(dialect=None) -> dict[str, str]:
    """Table options for MySQL/MariaDB under both dialect names (a `mariadb://` URL reads the
    `mariadb_` ones): for `dialect`'s server, or without one as on MariaDB (the model's)."""
    is_mysql = dialect is not None and dialect.name in ("mysql", "mariadb")
    collation = binary_collation(dialect) if is_mysql else NO_PAD_BINARY["mariadb"]
    return {
        f"{prefix}_{option}": value
        for prefix in ("mysql", "mariadb")
        for option, value in (("charset", MYSQL_CHARSET), ("collate", collation))
    }


# The model as on MariaDB; migration 0005 and the run's temporary tables use the server's own.
MYSQL_TABLE_ARGS = mysql_table_args()

# A Python None is SQL NULL, not the JSON text 'null': `multifactor IS NULL` must work.
JsonOrNull = JSON(none_as_null=True)

# Milliseconds matter (Auth0 timestamps carry them); MySQL's DATETIME drops them by default.
# SQLite: ISO 8601 with a T (SQLAlchemy's default puts a space there, which sorts before any
# `…T…` string a user compares with: `changed_at >= '2026-12-01T00:00:00'` found nothing).
SQLITE_ISO_8601 = (
    "%(year)04d-%(month)02d-%(day)02dT%(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)
Timestamp = (
    DateTime()
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    .with_variant(sqlite.DATETIME(storage_format=SQLITE_ISO_8601), "sqlite")
)

USER_ID = 255  # Auth0 user ids: "samlp|Corp|jane@example.com" and the like.
OBJECT_ID = 64  # Extension ids are GUIDs (36 characters); room for other stores' ids.


def _user_id(name: str = "user_id", **kwargs) -> Column:
    return Column(name, String(USER_ID), nullable=False, **kwargs)


def _object_id(name: str, **kwargs) -> Column:
    return Column(name, String(OBJECT_ID), nullable=False, **kwargs)


def _changed_at() -> Column:
    return Column(
        "changed_at",
        Timestamp,
        nullable=False,
        comment="When authz-sync last inserted or changed this row (UTC).",
    )


def _link(name: str, first: str, second: str) -> Table:
    """Two ids, together the key; the second indexed, for lookups starting from its side."""
    return Table(
        name,
        metadata,
        _object_id(first, primary_key=True),
        _object_id(second, primary_key=True, index=True),
        **MYSQL_TABLE_ARGS,
    )


users = Table(
    model.USERS,
    metadata,
    _user_id(primary_key=True),
    Column("email", String(320), index=True),
    Column("name", String(255)),
    Column("connection", String(255), comment="identities[0].connection"),
    Column("picture", Text),
    Column("last_login", Timestamp),
    Column("logins_count", Integer),
    Column("blocked", Boolean),
    Column("multifactor", JsonOrNull),
    Column("identities", JsonOrNull),
    _changed_at(),
    **MYSQL_TABLE_ARGS,
)

groups = Table(
    model.GROUPS,
    metadata,
    _object_id("group_id", primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", Text),
    _changed_at(),
    **MYSQL_TABLE_ARGS,
)

group_members = Table(
    model.GROUP_MEMBERS,
    metadata,
    _object_id("group_id", primary_key=True),
    _user_id(primary_key=True, index=True),  # "a user's groups" starts from the user
    Column("is_orphan", Boolean, nullable=False, comment="The user is not in authz_users."),
    **MYSQL_TABLE_ARGS,
)

group_nesting = _link(model.GROUP_NESTING, "parent_group_id", "child_group_id")

group_mappings = Table(
    model.GROUP_MAPPINGS,
    metadata,
    _object_id("mapping_id", primary_key=True),
    _object_id("group_id", index=True),
    Column("group_name", String(255), nullable=False),
    Column("connection_name", String(255), nullable=False),
    **MYSQL_TABLE_ARGS,
)


def _catalog(name: str, id_column: str) -> Table:
    """Roles and permissions: the same columns, each belonging to an application."""
    return Table(
        name,
        metadata,
        _object_id(id_column, primary_key=True),
        Column("name", String(255), nullable=False),
        Column("description", Text),
        Column("application_type", String(32)),
        Column("application_id", String(255)),
        _changed_at(),
        **MYSQL_TABLE_ARGS,
    )


roles = _catalog(model.ROLES, "role_id")
permissions = _catalog(model.PERMISSIONS, "permission_id")

role_permissions = _link(model.ROLE_PERMISSIONS, "role_id", "permission_id")

group_roles = _link(model.GROUP_ROLES, "group_id", "role_id")

role_users = Table(
    model.ROLE_USERS,
    metadata,
    _object_id("role_id", primary_key=True),
    _user_id(primary_key=True, index=True),
    Column("is_orphan", Boolean, nullable=False, comment="The user is not in authz_users."),
    **MYSQL_TABLE_ARGS,
)

sync_runs = Table(
    "authz_sync_runs",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="running, succeeded, failed, aborted (a signal) or abandoned (killed)",
    ),
    Column("exit_code", Integer),
    Column("rows_inserted", Integer),
    Column("rows_updated", Integer),
    Column("rows_deleted", Integer),
    Column("api_requests", Integer),
    Column(
        "counts", JsonOrNull, comment="Per table: fetched, inserted, updated, deleted, unchanged."
    ),
    Column("warnings", JsonOrNull, comment="Dropped dangling references and similar remarks."),
    Column("error", Text),
    Column("api_retries", Integer, comment="Requests that were retried."),
    Column("api_rate_limited", Integer, comment="429 answers received."),
    Column("duration_seconds", Double, comment="Wall time of the run."),
    Column(
        "source",
        String(255),
        comment="What the run read: the extension API URL, or file:NAME sha256:… for an import.",
    ),
    Column("version", String(32), comment="authz-sync version that ran."),
    Column(
        "fingerprints",
        JsonOrNull,
        comment="Digests of what a successful run read; the next run skips what they show "
        "unchanged (fingerprint.py).",
    ),
    Column(
        "user_windows",
        JsonOrNull,
        comment="The created_at windows a successful run read users in, [end, users] each; the "
        "next run reads the same ones (paging.py).",
    ),
    Column(
        "heartbeat_at",
        Timestamp,
        comment="The run's last sign of life (UTC), recorded as it goes; a killed run's end.",
    ),
    **MYSQL_TABLE_ARGS,
)

# --- Effective access: derived in the same transaction as each sync (effective.py) -----------

effective_group_members = Table(
    model.EFFECTIVE_GROUP_MEMBERS,
    metadata,
    _object_id("group_id", primary_key=True),
    _user_id(primary_key=True, index=True),
    _object_id("via_group_id", primary_key=True, comment="The group that lists the user."),
    Column("depth", Integer, nullable=False, comment="0: direct; n: n nesting steps below."),
    **MYSQL_TABLE_ARGS,
)

effective_user_roles = Table(
    model.EFFECTIVE_USER_ROLES,
    metadata,
    _user_id(primary_key=True),
    _object_id("role_id", primary_key=True, index=True),
    Column("source", String(16), primary_key=True, comment="direct or group"),
    Column(
        "via_group_id",
        String(OBJECT_ID),
        primary_key=True,
        comment="The effective group holding the role; '' for a direct assignment.",
    ),
    **MYSQL_TABLE_ARGS,
)

effective_user_permissions = Table(
    model.EFFECTIVE_USER_PERMISSIONS,
    metadata,
    _user_id(primary_key=True),
    _object_id("permission_id", primary_key=True, index=True),
    _object_id("via_role_id", primary_key=True),
    **MYSQL_TABLE_ARGS,
)


# --- History: when each link held (SCD type 2), written from each run's diff (history.py) ----


def _history(base: Table) -> Table:
    keys = [c for c in base.primary_key.columns]
    return Table(
        f"{base.name}_history",
        metadata,
        *(Column(c.name, c.type, primary_key=True) for c in keys),
        Column("valid_from", Timestamp, primary_key=True, comment="When the link appeared (UTC)."),
        Column("valid_to", Timestamp, comment="When it disappeared; NULL while it holds."),
        Column("valid_from_run_id", Integer, nullable=False),
        Column("valid_to_run_id", Integer),
        **MYSQL_TABLE_ARGS,
    )


group_members_history = _history(group_members)
group_nesting_history = _history(group_nesting)
group_roles_history = _history(group_roles)
role_users_history = _history(role_users)
role_permissions_history = _history(role_permissions)

HISTORY_TABLES: dict[str, Table] = {
    base.name: history
    for base, history in (
        (group_members, group_members_history),
        (group_nesting, group_nesting_history),
        (group_roles, group_roles_history),
        (role_users, role_users_history),
        (role_permissions, role_permissions_history),
    )
}

changes = Table(
    "authz_changes",
    metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False, index=True),
    Column("changed_at", Timestamp, nullable=False, index=True),
    Column("entity", String(16), nullable=False, comment="user, group, role or permission"),
    Column("entity_id", String(USER_ID), nullable=False, index=True),
    Column("operation", String(8), nullable=False, comment="insert, update or delete"),
    Column("old_values", JsonOrNull, comment="Changed columns before (update); the row (delete)."),
    Column("new_values", JsonOrNull, comment="Changed columns after (update); the row (insert)."),
    Column(
        "cause",
        String(8),
        nullable=False,
        server_default="tenant",
        comment="tenant (the extension changed) or repair (the table had been changed by hand)",
    ),
    **MYSQL_TABLE_ARGS,
)

# --- Backfills: one-off reads beyond what a run needs (backfill.py) --------------------------

backfills = Table(
    "authz_backfills",
    metadata,
    Column("backfill_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False, comment="user-details"),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column("status", String(16), nullable=False, comment="running or finished"),
    Column("users_total", Integer),
    Column("users_fetched", Integer),
    **MYSQL_TABLE_ARGS,
)

user_details = Table(
    "authz_user_details",
    metadata,
    _user_id(primary_key=True),
    Column(
        "profile", JsonOrNull, nullable=False, comment="GET /api/users/{id}, as the API answered"
    ),
    Column("fetched_at", Timestamp, nullable=False),
    Column("backfill_id", Integer, nullable=False, index=True),
    **MYSQL_TABLE_ARGS,
)

# The tables one run replaces, and those derived from them, with their key columns.
SYNCED_TABLES = model.SYNCED_TABLES
EFFECTIVE_TABLES = model.EFFECTIVE_TABLES

# Entity tables whose changes are logged in authz_changes, with the entity name used there.
CHANGE_LOGGED = {
    users.name: "user",
    groups.name: "group",
    roles.name: "role",
    permissions.name: "permission",
}
