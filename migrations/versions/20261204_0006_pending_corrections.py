"""Corrections in progress: ``pending_corrections`` (one per person and chat).

After "Better caption" the person's next text message in that chat is the correction, whether or
not it is a reply; the row survives a restart and expires after a setting's time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("platform_chat_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("caption_id", sa.Integer(), nullable=False),
        sa.Column("prompt_message_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_corrections")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pending_corrections_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["caption_id"], ["captions.id"], name=op.f("fk_pending_corrections_caption_id_captions"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "platform", "platform_chat_id", "user_id", name=op.f("uq_pending_corrections_platform_platform_chat_id_user_id")
        ),
        sa.CheckConstraint("platform IN ('telegram', 'discord')", name=op.f("ck_pending_corrections_platform")),
    )
    op.create_index(op.f("ix_pending_corrections_user_id"), "pending_corrections", ["user_id"])
    op.create_index(op.f("ix_pending_corrections_caption_id"), "pending_corrections", ["caption_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_corrections_caption_id"), table_name="pending_corrections")
    op.drop_index(op.f("ix_pending_corrections_user_id"), table_name="pending_corrections")
    op.drop_table("pending_corrections")
