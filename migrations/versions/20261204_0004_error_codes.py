"""Failure reasons as a code column: ``caption_requests.error_code``.

Until now the reason travelled inside the message, as ``"[code] message"``. Existing rows are
converted: the code moves to the new column and the message keeps only the text for the person.
A message without a known code becomes ``caption_error`` with its text kept.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:00:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CODES = ("bad_image", "missing_image", "caption_error")
_TAGGED = re.compile(r"^\[(?P<code>[a-z_]+)\] (?P<message>.*)$", re.S)

requests = sa.table(
    "caption_requests",
    sa.column("id", sa.Integer),
    sa.column("error", sa.Text),
    sa.column("error_code", sa.String(16)),
)


def upgrade() -> None:
    codes = ", ".join(f"'{c}'" for c in CODES)
    with op.batch_alter_table("caption_requests") as batch:
        batch.add_column(sa.Column("error_code", sa.String(16), nullable=True))
        batch.create_check_constraint(op.f("ck_caption_requests_error_code"), sa.text(f"error_code IN ({codes})"))
    conn = op.get_bind()
    rows = conn.execute(sa.select(requests.c.id, requests.c.error).where(requests.c.error.is_not(None))).all()
    for row_id, error in rows:
        match = _TAGGED.match(error)
        if match and match["code"] in CODES:
            code, message = match["code"], match["message"]
        else:
            code, message = "caption_error", error
        conn.execute(sa.update(requests).where(requests.c.id == row_id).values(error_code=code, error=message))


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(requests.c.id, requests.c.error, requests.c.error_code).where(requests.c.error_code.is_not(None))
    ).all()
    for row_id, error, code in rows:
        conn.execute(sa.update(requests).where(requests.c.id == row_id).values(error=f"[{code}] {error or ''}"))
    with op.batch_alter_table("caption_requests") as batch:
        batch.drop_constraint(op.f("ck_caption_requests_error_code"), type_="check")
        batch.drop_column("error_code")
