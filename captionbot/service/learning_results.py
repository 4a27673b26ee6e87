"""What :class:`~captionbot.service.learning.LearningService` hands back: frozen values, no ORM
objects, so the learner and the CLI never touch storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """One usable rating and/or correction, with the photo file to train on."""

    feedback_id: int
    person: int  # users.id, never a platform id
    image_sha256: str
    image_path: str  # absolute path in the ImageStore
    caption_id: int
    caption_text: str
    model_version: str | None
    rating: int | None
    correction: str | None
    review: str | None  # None | "approved" | "rejected"
    updated_at: datetime
    new: bool  # updated after the last promoted round's collected_at


@dataclass(frozen=True, slots=True)
class ModelRef:
    id: int | None
    name: str
    path: str


@dataclass(frozen=True, slots=True)
class RoundLease:
    """A running round: the holder heartbeats it and ends it with finish_round or fail_round."""

    round_id: int
    number: int
    started_at: datetime
    collected_at: datetime
    base_model: ModelRef | None
    # sha256s of the frozen feedback fixed set (empty: none yet; this round picks and records it).
    fixed_photos: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CandidateModel:
    name: str
    path: str
    sha256: str
    metrics: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RoundRecord:
    id: int
    number: int
    status: str  # running | promoted | rejected | failed | abandoned
    holder: str
    started_at: datetime
    finished_at: datetime | None
    base_model: str | None
    candidate: str | None
    counts: dict[str, Any]
    metrics: dict[str, Any]
    decision: str


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """How a model version did with people; mean_rating on -1..+1."""

    name: str
    status: str
    promoted_at: datetime | None
    captions: int
    rated: int
    mean_rating: float | None
    corrections: int
    correction_rate: float | None


@dataclass(frozen=True, slots=True)
class ReviewItem:
    feedback_id: int
    person: int
    caption_text: str
    correction: str
    image_sha256: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VersionRow:
    """A model version for ``captionbot model list``, with the round that made it (if any)."""

    name: str
    status: str
    promoted_at: datetime | None
    metrics: dict[str, Any]
    path: str
    round_number: int | None
    round_status: str | None
    round_decision: str | None


def normalised_rating(rating: int) -> float:
    """A rating on -1..+1: thumbs as they are; stars 2..5 -> (s-3)/2 (1 is what the bots send for 👍)."""
    if rating in (-1, 1):
        return float(rating)
    return (rating - 3) / 2


class RoundBusyError(RuntimeError):
    """Another round holds the lease (and its heartbeat is fresh)."""

    def __init__(self, holder: str, started_at: datetime) -> None:
        super().__init__(
            f"a learning round is already running (holder {holder!r}, started {started_at:%Y-%m-%d %H:%M} UTC)"
        )
        self.holder = holder
        self.started_at = started_at


class LeaseLostError(RuntimeError):
    """The round is no longer running (taken over after a silence, or ended): its work must not count."""


class NothingToRollBackError(LookupError):
    """No model version was promoted before the current one (or none is promoted)."""


__all__ = [
    "CandidateModel",
    "FeedbackItem",
    "LeaseLostError",
    "ModelRef",
    "ModelUsage",
    "NothingToRollBackError",
    "ReviewItem",
    "RoundBusyError",
    "RoundLease",
    "RoundRecord",
    "VersionRow",
    "normalised_rating",
]
