"""Typed ORM models: users, chats, images, caption requests, captions, feedback, model versions.

Conventions:

* every timestamp is a timezone-aware UTC ``datetime`` (:class:`UTCDateTime` normalises what the
  driver returns, since SQLite keeps no zone);
* platform ids (users, chats, messages) are strings: Telegram ints and Discord snowflakes both fit,
  and nothing ever does arithmetic on them;
* enums are stored as short strings guarded by CHECK constraints (no native PostgreSQL enum types,
  so adding a value is a plain migration on both backends).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from captionbot.jobs import ErrorCode

# Deterministic constraint names, so migrations can drop/alter them on every backend.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind of datetime this schema stores)."""
    return datetime.now(UTC)


def new_public_id() -> str:
    """A random public id: 32 hex chars, short enough for Telegram's 64-byte callback data."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    SQLite stores no zone, so values are written there as naive UTC (which also keeps its text
    comparison correct) and re-tagged as UTC when read. Naive input is rejected: a silent local-time
    guess is how "stale" checks end up off by hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Platform(StrEnum):
    TELEGRAM = "telegram"
    DISCORD = "discord"
    WEB = "web"  # the web page (bot.web): a visitor is a user like any other


class ChatKind(StrEnum):
    PRIVATE = "private"  # Telegram private chat
    GROUP = "group"  # Telegram group / supergroup
    CHANNEL = "channel"  # Telegram channel
    GUILD = "guild"  # Discord guild (server) channel
    DM = "dm"  # Discord direct message


class RequestStatus(StrEnum):
    """Life cycle of a caption request.

    ``queued -> running -> done -> delivered``; a failed attempt goes back to ``queued`` until
    ``max_attempts``, then ``failed -> delivered`` (the user is told it failed). ``delivered`` means
    the bot has sent its reply: it is what makes the reply exactly-once across restarts.
    """

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DELIVERED = "delivered"


#: Requests still waiting for (or getting) a caption.
PENDING_STATUSES: tuple[RequestStatus, ...] = (RequestStatus.QUEUED, RequestStatus.RUNNING)
#: Requests with a result the bot has not sent yet.
UNDELIVERED_STATUSES: tuple[RequestStatus, ...] = (RequestStatus.DONE, RequestStatus.FAILED)


class ModelStatus(StrEnum):
    CANDIDATE = "candidate"
    PROMOTED = "promoted"
    RETIRED = "retired"


def _enum(cls: type[StrEnum], name: str) -> SAEnum:
    """A string column limited to ``cls``'s values by a named CHECK constraint."""
    return SAEnum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,  # fixed, so adding a value never needs a column type change
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class User(Base):
    """A person on one platform. The same human on Telegram and Discord is two users."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(_enum(Platform, "platform"))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(256))
    # Opted out: keep serving captions, but never use their photos or feedback for training.
    training_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, {self.platform}:{self.platform_user_id})"


class Chat(Base):
    """A conversation the bot is in (private chat, group, Discord channel or DM)."""

    __tablename__ = "chats"
    __table_args__ = (UniqueConstraint("platform", "platform_chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(_enum(Platform, "platform"))
    platform_chat_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[ChatKind] = mapped_column(_enum(ChatKind, "kind"))
    # Caption every photo posted here, not only those the bot is asked about.
    autocaption: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"Chat(id={self.id!r}, {self.platform}:{self.platform_chat_id}, {self.kind})"


class Image(Base):
    """An uploaded photo, content-addressed: the bytes live in the ImageStore under ``sha256``."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    mime: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the retention sweep deleted the file (the row stays: captions and feedback refer to
    # it); cleared when the same photo is uploaded again.
    purged_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"Image(id={self.id!r}, sha256={self.sha256[:12]}…, {self.width}x{self.height})"


class CaptionRequest(Base):
    """One "caption this photo" request: the durable record behind a queued job."""

    __tablename__ = "caption_requests"
    __table_args__ = (
        # Worker recovery (stale_requests) and the bot's redelivery scan (undelivered_results).
        Index("ix_caption_requests_status_updated_at", "status", "updated_at"),
        # Queue position and global pending count: queued rows in id order.
        Index("ix_caption_requests_status_id", "status", "id"),
        # Per-user pending limit and user stats.
        Index("ix_caption_requests_requester_id_status", "requester_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Public, unguessable id for job payloads and button callback data (the int id is enumerable).
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    platform: Mapped[Platform] = mapped_column(_enum(Platform, "platform"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # RESTRICT: an image is deleted explicitly, and only once no request references it.
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), index=True)
    source_message_id: Mapped[str | None] = mapped_column(String(64))
    reply_message_id: Mapped[str | None] = mapped_column(String(64))
    # The "you are #N in the queue" message, edited as the queue moves.
    status_message_id: Mapped[str | None] = mapped_column(String(64))
    # What the platform calls the message that asked (chat + message id): the same update delivered
    # again after a crash finds its request instead of making a second one.
    intake_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    status: Mapped[RequestStatus] = mapped_column(
        _enum(RequestStatus, "status"),
        default=RequestStatus.QUEUED,
        server_default=RequestStatus.QUEUED.value,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Times a bot took the reply to send (claim_delivery); past the limit the reply is given up.
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Why it failed (a code the front ends act on) and the message for the person who asked.
    error_code: Mapped[ErrorCode | None] = mapped_column(_enum(ErrorCode, "error_code"))
    error: Mapped[str | None] = mapped_column(Text)
    # Platform-specific data the bot needs to answer (thread id, album id, interaction token...).
    reply_context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # While the status is done/failed this is the delivery lease (a bot is sending the reply, see
    # queries.claim_delivery); once delivered, when the reply went out.
    delivered_at: Mapped[datetime | None]

    chat: Mapped[Chat] = relationship(lazy="raise")
    requester: Mapped[User] = relationship(lazy="raise")
    image: Mapped[Image] = relationship(lazy="raise")
    caption: Mapped[Caption | None] = relationship(back_populates="request", lazy="raise")

    def __repr__(self) -> str:
        return f"CaptionRequest(id={self.id!r}, status={self.status}, attempts={self.attempts})"


class ModelVersion(Base):
    """A trained checkpoint. At most one is ``promoted`` (the one workers load)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # The database itself guarantees a single promoted version (partial unique index).
        Index(
            "uq_model_versions_promoted",
            "status",
            unique=True,
            sqlite_where=text("status = 'promoted'"),
            postgresql_where=text("status = 'promoted'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[ModelStatus] = mapped_column(
        _enum(ModelStatus, "status"),
        default=ModelStatus.CANDIDATE,
        server_default=ModelStatus.CANDIDATE.value,
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"ModelVersion(id={self.id!r}, name={self.name!r}, status={self.status})"


class Caption(Base):
    """The model's caption for a request (exactly one per request)."""

    __tablename__ = "captions"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("caption_requests.id", ondelete="CASCADE"), unique=True)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    # Mean token probability (0..1) or similar; None when the decoder gives none.
    confidence: Mapped[float | None] = mapped_column(Float)
    # How sure the model is, as people are told: "sure", "probable" or "unsure" (captionbot.texts);
    # None for models without calibrated bands.
    band: Mapped[str | None] = mapped_column(String(16))
    # The image tagger's plain word for the main thing ("a cat"), said when the caption is unsure.
    hint: Mapped[str | None] = mapped_column(String(64))
    # The tagger's top labels: [{"label": "tabby", "word": "cat", "p": 0.71}, ...].
    labels: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Where the model looked for each word: {"side": 7, "words": [...], "maps": [[0..255 x side*side], ...]}
    # (each map scaled to its own maximum); None for models without attention.
    attention: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Text read in the photo, one line per line of text; None when there was none (or reading is off).
    # Personal data like the photo: never logged, never exported for training.
    photo_text: Mapped[str | None] = mapped_column(Text)
    # Decoding parameters, e.g. {"beam_size": 3, "max_len": 20}.
    decoding: Mapped[dict[str, Any]] = mapped_column(default=dict)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[CaptionRequest] = relationship(back_populates="caption", lazy="raise")
    model_version: Mapped[ModelVersion | None] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"Caption(id={self.id!r}, request_id={self.request_id!r}, text={self.text!r})"


class Feedback(Base):
    """One user's rating and/or correction of one caption; changeable (upserted)."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("caption_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    caption_id: Mapped[int] = mapped_column(ForeignKey("captions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # +1 / -1 (thumbs) or 1..5 (stars); None when only a correction was given.
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    correction: Mapped[str | None] = mapped_column(Text)
    # A moderator's verdict on the correction: None (not reviewed), "approved" or "rejected".
    review: Mapped[str | None] = mapped_column(String(16))
    # When this person reported the caption as harmful or offensive; a moderator clears it.
    flagged_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    caption: Mapped[Caption] = relationship(lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"Feedback(caption_id={self.caption_id!r}, user_id={self.user_id!r}, rating={self.rating!r})"


class PendingCorrection(Base):
    """A person pressed "Better caption" in a chat: their next text there is the correction."""

    __tablename__ = "pending_corrections"
    __table_args__ = (UniqueConstraint("platform", "platform_chat_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(_enum(Platform, "platform"))
    platform_chat_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    caption_id: Mapped[int] = mapped_column(ForeignKey("captions.id", ondelete="CASCADE"), index=True)
    prompt_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


__all__ = [
    "NAMING_CONVENTION",
    "PENDING_STATUSES",
    "UNDELIVERED_STATUSES",
    "Base",
    "Caption",
    "CaptionRequest",
    "Chat",
    "ChatKind",
    "Feedback",
    "Image",
    "ModelStatus",
    "ModelVersion",
    "PendingCorrection",
    "Platform",
    "RequestStatus",
    "User",
    "UTCDateTime",
    "new_public_id",
    "utcnow",
]
