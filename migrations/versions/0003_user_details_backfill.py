"""user details backfill

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:41:35.813197
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authz_backfills",
        sa.Column("backfill_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False, comment="user-details"),
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
        sa.Column("status", sa.String(length=16), nullable=False, comment="running or finished"),
        sa.Column("users_total", sa.Integer(), nullable=True),
        sa.Column("users_fetched", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("backfill_id", name=op.f("pk_authz_backfills")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "authz_user_details",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "profile", sa.JSON(), nullable=False, comment="GET /api/users/{id}, as the API answered"
        ),
        sa.Column(
            "fetched_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column("backfill_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_authz_user_details")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("authz_user_details", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_user_details_backfill_id"), ["backfill_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("authz_user_details", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_user_details_backfill_id"))

    op.drop_table("authz_user_details")
    op.drop_table("authz_backfills")
