"""Count reply attempts per request, so a reply that can never be sent is given up after a few.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 04:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("caption_requests") as batch:
        batch.add_column(sa.Column("delivery_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("caption_requests") as batch:
        batch.drop_column("delivery_attempts")
