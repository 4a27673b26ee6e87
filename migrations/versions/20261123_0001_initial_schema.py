"""Initial schema: users, chats, images, caption requests, captions, feedback, model versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 15:02:40

Generated from captionbot.storage.models, then written out by hand: plain String columns with named
CHECK constraints for the enums (so later migrations can drop/replace them by name on both
backends), explicit constraint names matching the models' naming convention, and indexes created
after their tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORMS = ("telegram", "discord")
CHAT_KINDS = ("private", "group", "channel", "guild", "dm")
REQUEST_STATUSES = ("queued", "running", "done", "failed", "delivered")
MODEL_STATUSES = ("candidate", "promoted", "retired")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("platform_user_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=True),
        sa.Column("training_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("platform", "platform_user_id", name=op.f("uq_users_platform_platform_user_id")),
        sa.CheckConstraint(_in("platform", PLATFORMS), name=op.f("ck_users_platform")),
    )
    op.create_table(
        "chats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("platform_chat_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("autocaption", sa.Boolean(), server_default=sa.false(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chats")),
        sa.UniqueConstraint("platform", "platform_chat_id", name=op.f("uq_chats_platform_platform_chat_id")),
        sa.CheckConstraint(_in("platform", PLATFORMS), name=op.f("ck_chats_platform")),
        sa.CheckConstraint(_in("kind", CHAT_KINDS), name=op.f("ck_chats_kind")),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("mime", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("purged_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("sha256", name=op.f("uq_images_sha256")),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), server_default="candidate", nullable=False),
        _ts("created_at"),
        _ts("promoted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("name", name=op.f("uq_model_versions_name")),
        sa.CheckConstraint(_in("status", MODEL_STATUSES), name=op.f("ck_model_versions_status")),
    )
    # At most one promoted model version, enforced by the database.
    op.create_index(
        "uq_model_versions_promoted",
        "model_versions",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'promoted'"),
        postgresql_where=sa.text("status = 'promoted'"),
    )
    op.create_table(
        "caption_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("source_message_id", sa.String(64), nullable=True),
        sa.Column("reply_message_id", sa.String(64), nullable=True),
        sa.Column("status_message_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reply_context", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _ts("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caption_requests")),
        sa.UniqueConstraint("public_id", name=op.f("uq_caption_requests_public_id")),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_caption_requests_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["users.id"],
            name=op.f("fk_caption_requests_requester_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_caption_requests_image_id_images"), ondelete="RESTRICT"
        ),
        sa.CheckConstraint(_in("platform", PLATFORMS), name=op.f("ck_caption_requests_platform")),
        sa.CheckConstraint(_in("status", REQUEST_STATUSES), name=op.f("ck_caption_requests_status")),
    )
    op.create_index("ix_caption_requests_chat_id", "caption_requests", ["chat_id"])
    op.create_index("ix_caption_requests_image_id", "caption_requests", ["image_id"])
    op.create_index("ix_caption_requests_requester_id_status", "caption_requests", ["requester_id", "status"])
    op.create_index("ix_caption_requests_status_id", "caption_requests", ["status", "id"])
    op.create_index("ix_caption_requests_status_updated_at", "caption_requests", ["status", "updated_at"])
    op.create_table(
        "captions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("decoding", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captions")),
        sa.UniqueConstraint("request_id", name=op.f("uq_captions_request_id")),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["caption_requests.id"],
            name=op.f("fk_captions_request_id_caption_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_captions_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_captions_model_version_id", "captions", ["model_version_id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caption_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("correction", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("caption_id", "user_id", name=op.f("uq_feedback_caption_id_user_id")),
        sa.ForeignKeyConstraint(
            ["caption_id"], ["captions.id"], name=op.f("fk_feedback_caption_id_captions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feedback_user_id_users"), ondelete="CASCADE"
        ),
    )
    op.create_index("ix_feedback_user_id", "feedback", ["user_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints too; children first.
    op.drop_table("feedback")
    op.drop_table("captions")
    op.drop_table("caption_requests")
    op.drop_table("model_versions")
    op.drop_table("images")
    op.drop_table("chats")
    op.drop_table("users")
