"""The web page: ``web`` as a platform, per-word attention with each caption, and flags.

- ``users``, ``chats``, ``caption_requests`` and ``pending_corrections`` accept the platform ``web``.
- ``captions.attention``: where the model looked for each word (shown on the web page).
- ``feedback.flagged_at``: when a person reported the caption as harmful or offensive (moderators
  see flagged captions and clear the flag).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "chats", "caption_requests", "pending_corrections")


def _platforms(values: Sequence[str]) -> sa.TextClause:
    return sa.text("platform IN ({})".format(", ".join(f"'{v}'" for v in values)))


def _set_platforms(values: Sequence[str]) -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_platform"), type_="check")
            batch.create_check_constraint(op.f(f"ck_{table}_platform"), _platforms(values))


def upgrade() -> None:
    _set_platforms(("telegram", "discord", "web"))
    with op.batch_alter_table("captions") as batch:
        batch.add_column(sa.Column("attention", sa.JSON(), nullable=True))
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    conn = op.get_bind()
    for table in ("pending_corrections", "caption_requests", "chats", "users"):  # web rows cannot outlive the platform
        conn.execute(sa.text(f"DELETE FROM {table} WHERE platform = 'web'"))
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("flagged_at")
    with op.batch_alter_table("captions") as batch:
        batch.drop_column("attention")
    _set_platforms(("telegram", "discord"))
