"""Remember which incoming message made each request: ``caption_requests.intake_key`` (unique).

A chat platform may deliver the same message again after the bot crashed before acknowledging it;
the key lets intake find the request it already made instead of answering the photo twice.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("caption_requests") as batch:
        batch.add_column(sa.Column("intake_key", sa.String(length=160), nullable=True))
        batch.create_unique_constraint(op.f("uq_caption_requests_intake_key"), ["intake_key"])


def downgrade() -> None:
    with op.batch_alter_table("caption_requests") as batch:
        batch.drop_constraint(op.f("uq_caption_requests_intake_key"), type_="unique")
        batch.drop_column("intake_key")
