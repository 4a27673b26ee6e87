"""Store how sure each caption is: its band, the tagger's hint word and top labels.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("captions") as batch:
        batch.add_column(sa.Column("band", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("hint", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("labels", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("captions") as batch:
        batch.drop_column("labels")
        batch.drop_column("hint")
        batch.drop_column("band")
