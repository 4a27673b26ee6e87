"""Text read in the photo, stored with its caption.

- ``captions.photo_text``: the lines the worker read in the photo (signs, screenshots, menus), one
  per line; None when it found none or reading was off. Personal data like the photo: it goes with
  the caption when a person is forgotten, and training exports leave it out.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("captions") as batch:
        batch.add_column(sa.Column("photo_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("captions") as batch:
        batch.drop_column("photo_text")
