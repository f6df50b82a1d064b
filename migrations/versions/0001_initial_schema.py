"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 09:08:39.400229
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authz_group_mappings",
        sa.Column("mapping_id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("group_name", sa.String(length=255), nullable=False),
        sa.Column("connection_name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("mapping_id", name=op.f("pk_authz_group_mappings")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_group_mappings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_group_mappings_group_id"), ["group_id"], unique=False
        )

    op.create_table(
        "authz_group_members",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "is_orphan", sa.Boolean(), nullable=False, comment="The user is not in authz_users."
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_authz_group_members")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_group_members_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "authz_group_nesting",
        sa.Column("parent_group_id", sa.String(length=64), nullable=False),
        sa.Column("child_group_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "parent_group_id", "child_group_id", name=op.f("pk_authz_group_nesting")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_group_nesting", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_group_nesting_child_group_id"), ["child_group_id"], unique=False
        )

    op.create_table(
        "authz_group_roles",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "role_id", name=op.f("pk_authz_group_roles")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_group_roles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_authz_group_roles_role_id"), ["role_id"], unique=False)

    op.create_table(
        "authz_groups",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
            comment="When authz-sync last inserted or changed this row (UTC).",
        ),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_authz_groups")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "authz_permissions",
        sa.Column("permission_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("application_type", sa.String(length=32), nullable=True),
        sa.Column("application_id", sa.String(length=255), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
            comment="When authz-sync last inserted or changed this row (UTC).",
        ),
        sa.PrimaryKeyConstraint("permission_id", name=op.f("pk_authz_permissions")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "authz_role_permissions",
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column("permission_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("role_id", "permission_id", name=op.f("pk_authz_role_permissions")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_role_permissions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_role_permissions_permission_id"), ["permission_id"], unique=False
        )

    op.create_table(
        "authz_role_users",
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "is_orphan", sa.Boolean(), nullable=False, comment="The user is not in authz_users."
        ),
        sa.PrimaryKeyConstraint("role_id", "user_id", name=op.f("pk_authz_role_users")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_role_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_authz_role_users_user_id"), ["user_id"], unique=False)

    op.create_table(
        "authz_roles",
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("application_type", sa.String(length=32), nullable=True),
        sa.Column("application_id", sa.String(length=255), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
            comment="When authz-sync last inserted or changed this row (UTC).",
        ),
        sa.PrimaryKeyConstraint("role_id", name=op.f("pk_authz_roles")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "authz_sync_runs",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "finished_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="running, succeeded, failed, aborted (a signal) or abandoned (killed)",
        ),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("rows_inserted", sa.Integer(), nullable=True),
        sa.Column("rows_updated", sa.Integer(), nullable=True),
        sa.Column("rows_deleted", sa.Integer(), nullable=True),
        sa.Column("api_requests", sa.Integer(), nullable=True),
        sa.Column(
            "counts",
            sa.JSON(),
            nullable=True,
            comment="Per table: fetched, inserted, updated, deleted, unchanged.",
        ),
        sa.Column(
            "warnings",
            sa.JSON(),
            nullable=True,
            comment="Dropped dangling references and similar remarks.",
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "source",
            sa.String(length=255),
            nullable=True,
            comment="The extension API URL the run read from.",
        ),
        sa.Column(
            "version", sa.String(length=32), nullable=True, comment="authz-sync version that ran."
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_authz_sync_runs")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "authz_users",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column(
            "connection", sa.String(length=255), nullable=True, comment="identities[0].connection"
        ),
        sa.Column("picture", sa.Text(), nullable=True),
        sa.Column(
            "last_login",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column("logins_count", sa.Integer(), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=True),
        sa.Column("multifactor", sa.JSON(), nullable=True),
        sa.Column("identities", sa.JSON(), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
            comment="When authz-sync last inserted or changed this row (UTC).",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_authz_users")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_authz_users_email"), ["email"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("authz_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_users_email"))

    op.drop_table("authz_users")
    op.drop_table("authz_sync_runs")
    op.drop_table("authz_roles")
    with op.batch_alter_table("authz_role_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_role_users_user_id"))

    op.drop_table("authz_role_users")
    with op.batch_alter_table("authz_role_permissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_role_permissions_permission_id"))

    op.drop_table("authz_role_permissions")
    op.drop_table("authz_permissions")
    op.drop_table("authz_groups")
    with op.batch_alter_table("authz_group_roles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_group_roles_role_id"))

    op.drop_table("authz_group_roles")
    with op.batch_alter_table("authz_group_nesting", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_group_nesting_child_group_id"))

    op.drop_table("authz_group_nesting")
    with op.batch_alter_table("authz_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_group_members_user_id"))

    op.drop_table("authz_group_members")
    with op.batch_alter_table("authz_group_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_group_mappings_group_id"))

    op.drop_table("authz_group_mappings")
