"""Persistence: ORM models, async engine/session helpers, query functions and the image store.

Nothing here connects to a database at import time; build an engine from ``Settings`` at start-up.
"""

from captionbot.storage.imagestore import ImageStore
from captionbot.storage.learning_models import LearningRound, RoundStatus
from captionbot.storage.models import (
    PENDING_STATUSES,
    UNDELIVERED_STATUSES,
    Base,
    Caption,
    CaptionRequest,
    Chat,
    ChatKind,
    Feedback,
    Image,
    ModelStatus,
    ModelVersion,
    Platform,
    RequestStatus,
    User,
)

__all__ = [
    "PENDING_STATUSES",
    "UNDELIVERED_STATUSES",
    "Base",
    "Caption",
    "CaptionRequest",
    "Chat",
    "ChatKind",
    "Feedback",
    "Image",
    "ImageStore",
    "LearningRound",
    "ModelStatus",
    "ModelVersion",
    "Platform",
    "RequestStatus",
    "RoundStatus",
    "User",
]
