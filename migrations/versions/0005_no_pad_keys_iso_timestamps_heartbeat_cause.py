"""NO PAD binary collation on MySQL/MariaDB, ISO 8601 timestamps on SQLite, the run heartbeat
and the cause of a logged change

- MySQL/MariaDB: every table (and every text column in it) moves from utf8mb4_bin, which is
  PAD SPACE (`'auth0|x' = 'auth0|x '`: one key for two users), to the server's NO PAD binary
  collation: utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL 8.
- SQLite: stored timestamps are rewritten from `2026-12-01 21:15:15.149184` to
  `2026-12-01T21:15:15.149184`, the form sync.schema now writes (ISO strings compare with it).
- authz_sync_runs.heartbeat_at: the run's last sign of life; a killed run ends there.
- authz_changes.cause: `tenant` (the extension changed; every change logged so far) or `repair`
  (the table had been changed by hand, and the run put it right).
PostgreSQL gets only the two columns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The tables of revision 0004 (a migration describes the schema as it was, not as it grows).
TABLES = (
    "authz_backfills", "authz_changes", "authz_effective_group_members",
    "authz_effective_user_permissions", "authz_effective_user_roles", "authz_group_mappings",
    "authz_group_members", "authz_group_members_history", "authz_group_nesting",
    "authz_group_nesting_history", "authz_group_roles", "authz_group_roles_history",
    "authz_groups", "authz_permissions", "authz_role_permissions",
    "authz_role_permissions_history", "authz_role_users", "authz_role_users_history",
    "authz_roles", "authz_sync_runs", "authz_user_details", "authz_users",
)  # fmt: skip
TIMESTAMPS = {
    "authz_backfills": ("started_at", "finished_at"),
    "authz_changes": ("changed_at",),
    "authz_group_members_history": ("valid_from", "valid_to"),
    "authz_group_nesting_history": ("valid_from", "valid_to"),
    "authz_group_roles_history": ("valid_from", "valid_to"),
    "authz_role_permissions_history": ("valid_from", "valid_to"),
    "authz_role_users_history": ("valid_from", "valid_to"),
    "authz_groups": ("changed_at",),
    "authz_permissions": ("changed_at",),
    "authz_roles": ("changed_at",),
    "authz_sync_runs": ("started_at", "finished_at"),
    "authz_user_details": ("fetched_at",),
    "authz_users": ("last_login", "changed_at"),
}
PAD_SPACE_BINARY = "utf8mb4_bin"  # before 0005; MySQL 5.7 has nothing better
CAUSE = "tenant (the extension changed) or repair (the table had been changed by hand)"
HEARTBEAT = "The run's last sign of life (UTC), recorded as it goes; a killed run's end."


def upgrade() -> None:
    with op.batch_alter_table("authz_sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", _timestamp(), comment=HEARTBEAT))
    with op.batch_alter_table("authz_changes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "cause", sa.String(length=8), nullable=False, server_default="tenant", comment=CAUSE
            )
        )
    dialect = op.get_bind().dialect
    if dialect.name in ("mysql", "mariadb"):
        _collate(binary_collation(dialect))
    elif dialect.name == "sqlite":
        _rewrite_timestamps(" ", "T")


def downgrade() -> None:
    dialect = op.get_bind().dialect
    if dialect.name in ("mysql", "mariadb"):
        # Refused (duplicate key) while two ids differ only by trailing spaces: PAD SPACE
        # cannot hold both.
        _collate(PAD_SPACE_BINARY)
    elif dialect.name == "sqlite":
        _rewrite_timestamps("T", " ")
    with op.batch_alter_table("authz_changes", schema=None) as batch_op:
        batch_op.drop_column("cause")
    with op.batch_alter_table("authz_sync_runs", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")


def binary_collation(dialect) -> str:
    """The server's NO PAD binary utf8mb4 collation (as sync.schema.binary_collation)."""
    if getattr(dialect, "is_mariadb", False) or dialect.name == "mariadb":
        return "utf8mb4_nopad_bin"
    if (dialect.server_version_info or (8,)) >= (8,):
        return "utf8mb4_0900_bin"
    return PAD_SPACE_BINARY


def _timestamp():
    from sqlalchemy.dialects import mysql

    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _collate(collation: str) -> None:
    """The table default and every text column of every table (CONVERT TO does both)."""
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}")


def _rewrite_timestamps(before: str, after: str) -> None:
    """`YYYY-MM-DD<before>…` → `YYYY-MM-DD<after>…` in every timestamp column."""
    for table, columns in TIMESTAMPS.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = substr({column}, 1, 10) || '{after}' || "
                f"substr({column}, 12) WHERE {column} LIKE '____-__-__{before}%'"
            )
