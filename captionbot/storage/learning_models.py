"""The learning loop's table: one row per learning round (its lease, inputs, outcome).

Kept out of :mod:`captionbot.storage.models` only to keep files small; ``captionbot.storage``
imports it, so it is always on ``Base.metadata`` (migrations, schema checks).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from captionbot.storage.models import Base, _enum, utcnow


class RoundStatus(StrEnum):
    """``running`` until it ends as promoted/rejected (finished), failed, or abandoned (lease expired)."""

    RUNNING = "running"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    FAILED = "failed"
    ABANDONED = "abandoned"


class LearningRound(Base):
    """One fine-tuning round. At most one is ``running``: that row is the lease, across machines."""

    __tablename__ = "learning_rounds"
    __table_args__ = (
        # The database itself guarantees a single running round (partial unique index).
        Index(
            "uq_learning_rounds_running",
            "status",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[RoundStatus] = mapped_column(_enum(RoundStatus, "status"), default=RoundStatus.RUNNING)
    holder: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Renewed while the round works; a round silent past settings.learn_lease_s may be taken over.
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Feedback up to this time is what the round learned from ("new" feedback is newer).
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    base_model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    candidate_model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    # What the round chose and must reuse later, e.g. {"fixed_photos": [sha256, ...]}.
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decision: Mapped[str] = mapped_column(Text, default="")

    def __repr__(self) -> str:
        return f"LearningRound(id={self.id!r}, number={self.number!r}, status={self.status})"


__all__ = ["LearningRound", "RoundStatus"]
