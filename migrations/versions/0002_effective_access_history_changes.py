"""effective access, history, change log, run metrics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 09:44:39.726749
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authz_changes",
        sa.Column("change_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "entity",
            sa.String(length=16),
            nullable=False,
            comment="user, group, role or permission",
        ),
        sa.Column("entity_id", sa.String(length=255), nullable=False),
        sa.Column(
            "operation", sa.String(length=8), nullable=False, comment="insert, update or delete"
        ),
        sa.Column(
            "old_values",
            sa.JSON(),
            nullable=True,
            comment="Changed columns before (update); the row (delete).",
        ),
        sa.Column(
            "new_values",
            sa.JSON(),
            nullable=True,
            comment="Changed columns after (update); the row (insert).",
        ),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_authz_changes")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_changes_changed_at"), ["changed_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_authz_changes_entity_id"), ["entity_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_authz_changes_run_id"), ["run_id"], unique=False)

    op.create_table(
        "authz_effective_group_members",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "via_group_id",
            sa.String(length=64),
            nullable=False,
            comment="The group that lists the user.",
        ),
        sa.Column(
            "depth", sa.Integer(), nullable=False, comment="0: direct; n: n nesting steps below."
        ),
        sa.PrimaryKeyConstraint(
            "group_id", "user_id", "via_group_id", name=op.f("pk_authz_effective_group_members")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_effective_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_effective_group_members_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "authz_effective_user_permissions",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("permission_id", sa.String(length=64), nullable=False),
        sa.Column("via_role_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "user_id",
            "permission_id",
            "via_role_id",
            name=op.f("pk_authz_effective_user_permissions"),
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_effective_user_permissions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_effective_user_permissions_permission_id"),
            ["permission_id"],
            unique=False,
        )

    op.create_table(
        "authz_effective_user_roles",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False, comment="direct or group"),
        sa.Column(
            "via_group_id",
            sa.String(length=64),
            nullable=False,
            comment="The effective group holding the role; '' for a direct assignment.",
        ),
        sa.PrimaryKeyConstraint(
            "user_id",
            "role_id",
            "source",
            "via_group_id",
            name=op.f("pk_authz_effective_user_roles"),
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_effective_user_roles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_effective_user_roles_role_id"), ["role_id"], unique=False
        )

    op.create_table(
        "authz_group_members_history",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
            comment="When the link appeared (UTC).",
        ),
        sa.Column(
            "valid_to",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
            comment="When it disappeared; NULL while it holds.",
        ),
        sa.Column("valid_from_run_id", sa.Integer(), nullable=False),
        sa.Column("valid_to_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint(
            "group_id", "user_id", "valid_from", name=op.f("pk_authz_group_members_history")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "authz_group_nesting_history",
        sa.Column("parent_group_id", sa.String(length=64), nullable=False),
        sa.Column("child_group_id", sa.String(length=64), nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
            comment="When the link appeared (UTC).",
        ),
        sa.Column(
            "valid_to",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
            comment="When it disappeared; NULL while it holds.",
        ),
        sa.Column("valid_from_run_id", sa.Integer(), nullable=False),
        sa.Column("valid_to_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint(
            "parent_group_id",
            "child_group_id",
            "valid_from",
            name=op.f("pk_authz_group_nesting_history"),
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "authz_group_roles_history",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
            comment="When the link appeared (UTC).",
        ),
        sa.Column(
            "valid_to",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
            comment="When it disappeared; NULL while it holds.",
        ),
        sa.Column("valid_from_run_id", sa.Integer(), nullable=False),
        sa.Column("valid_to_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint(
            "group_id", "role_id", "valid_from", name=op.f("pk_authz_group_roles_history")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "authz_role_permissions_history",
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column("permission_id", sa.String(length=64), nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
            comment="When the link appeared (UTC).",
        ),
        sa.Column(
            "valid_to",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
            comment="When it disappeared; NULL while it holds.",
        ),
        sa.Column("valid_from_run_id", sa.Integer(), nullable=False),
        sa.Column("valid_to_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint(
            "role_id", "permission_id", "valid_from", name=op.f("pk_authz_role_permissions_history")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "authz_role_users_history",
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
            comment="When the link appeared (UTC).",
        ),
        sa.Column(
            "valid_to",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
            comment="When it disappeared; NULL while it holds.",
        ),
        sa.Column("valid_from_run_id", sa.Integer(), nullable=False),
        sa.Column("valid_to_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint(
            "role_id", "user_id", "valid_from", name=op.f("pk_authz_role_users_history")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_sync_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "api_retries", sa.Integer(), nullable=True, comment="Requests that were retried."
            )
        )
        batch_op.add_column(
            sa.Column(
                "api_rate_limited", sa.Integer(), nullable=True, comment="429 answers received."
            )
        )
        batch_op.add_column(
            sa.Column(
                "duration_seconds", sa.Double(), nullable=True, comment="Wall time of the run."
            )
        )

    _open_history_for_existing_links()


# The links that exist when history starts are open from now on; run 0 means "before history".
HISTORY_KEYS = {
    "authz_group_members": ("group_id", "user_id"),
    "authz_group_nesting": ("parent_group_id", "child_group_id"),
    "authz_group_roles": ("group_id", "role_id"),
    "authz_role_users": ("role_id", "user_id"),
    "authz_role_permissions": ("role_id", "permission_id"),
}


def _open_history_for_existing_links() -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for base, keys in HISTORY_KEYS.items():
        columns = ", ".join(keys)
        statement = sa.text(
            f"INSERT INTO {base}_history ({columns}, valid_from, valid_from_run_id) "
            f"SELECT {columns}, :now, 0 FROM {base}"
        ).bindparams(sa.bindparam("now", now, type_=sa.DateTime()))
        op.get_bind().execute(statement)


def downgrade() -> None:
    with op.batch_alter_table("authz_sync_runs", schema=None) as batch_op:
        batch_op.drop_column("duration_seconds")
        batch_op.drop_column("api_rate_limited")
        batch_op.drop_column("api_retries")

    op.drop_table("authz_role_users_history")
    op.drop_table("authz_role_permissions_history")
    op.drop_table("authz_group_roles_history")
    op.drop_table("authz_group_nesting_history")
    op.drop_table("authz_group_members_history")
    with op.batch_alter_table("authz_effective_user_roles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_effective_user_roles_role_id"))

    op.drop_table("authz_effective_user_roles")
    with op.batch_alter_table("authz_effective_user_permissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_effective_user_permissions_permission_id"))

    op.drop_table("authz_effective_user_permissions")
    with op.batch_alter_table("authz_effective_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_effective_group_members_user_id"))

    op.drop_table("authz_effective_group_members")
    with op.batch_alter_table("authz_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_changes_run_id"))
        batch_op.drop_index(batch_op.f("ix_authz_changes_entity_id"))
        batch_op.drop_index(batch_op.f("ix_authz_changes_changed_at"))

    op.drop_table("authz_changes")
