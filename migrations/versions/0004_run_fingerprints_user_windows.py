"""run fingerprints and user windows: what a successful run read, so the next one can skip
unchanged tables and read users without probing

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 07:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SOURCE_BEFORE = "The extension API URL the run read from."
SOURCE_AFTER = "What the run read: the extension API URL, or file:NAME sha256:… for an import."


def upgrade() -> None:
    with op.batch_alter_table("authz_sync_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "fingerprints",
                sa.JSON(),
                nullable=True,
                comment="Digests of what a successful run read; the next run skips what they "
                "show unchanged (fingerprint.py).",
            )
        )
        batch_op.add_column(
            sa.Column(
                "user_windows",
                sa.JSON(),
                nullable=True,
                comment="The created_at windows a successful run read users in, [end, users] "
                "each; the next run reads the same ones (paging.py).",
            )
        )
        batch_op.alter_column(
            "source",
            existing_type=sa.String(length=255),
            existing_nullable=True,
            comment=SOURCE_AFTER,
            existing_comment=SOURCE_BEFORE,
        )


def downgrade() -> None:
    with op.batch_alter_table("authz_sync_runs", schema=None) as batch_op:
        batch_op.alter_column(
            "source",
            existing_type=sa.String(length=255),
            existing_nullable=True,
            comment=SOURCE_BEFORE,
            existing_comment=SOURCE_AFTER,
        )
        batch_op.drop_column("user_windows")
        batch_op.drop_column("fingerprints")
