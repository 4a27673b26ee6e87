"""Learning rounds: ``learning_rounds`` (one running at a time) and ``feedback.review``.

A round is the lease for fine-tuning on feedback: the partial unique index lets only one row be
``running``, whichever machine starts it. ``feedback.review`` holds a moderator's verdict on a
correction (NULL until reviewed).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("running", "promoted", "rejected", "failed", "abandoned")


def upgrade() -> None:
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    op.create_table(
        "learning_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("base_model_version_id", sa.Integer(), nullable=True),
        sa.Column("candidate_model_version_id", sa.Integer(), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learning_rounds")),
        sa.UniqueConstraint("number", name=op.f("uq_learning_rounds_number")),
        sa.ForeignKeyConstraint(
            ["base_model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_learning_rounds_base_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["candidate_model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_learning_rounds_candidate_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(f"status IN ({statuses})", name=op.f("ck_learning_rounds_status")),
    )
    # At most one running round, enforced by the database.
    op.create_index(
        "uq_learning_rounds_running",
        "learning_rounds",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("review", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("review")
    op.drop_index("uq_learning_rounds_running", table_name="learning_rounds")
    op.drop_table("learning_rounds")
