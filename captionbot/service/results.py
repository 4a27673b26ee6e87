"""What the service hands back to a front end: plain frozen values, no ORM objects, no torch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from captionbot.jobs import ErrorCode
from captionbot.storage.models import ChatKind, Platform
from captionbot.storage.users import ForgetReport, UserStats


class RejectReason(StrEnum):
    RATE_LIMITED = "rate_limited"
    TOO_MANY_PENDING = "too_many_pending"
    QUEUE_FULL = "queue_full"
    BAD_IMAGE = "bad_image"
    DOWNLOAD_FAILED = "download_failed"


@dataclass(frozen=True)
class Submitted:
    """The photo is stored and queued."""

    request_id: str  # public id: safe to put in button callback data
    queue_position: int  # 1 = next to be captioned
    ok: Literal[True] = True
    #: The same incoming message was taken before (the platform delivered it again): nothing new
    #: was stored, queued or posted.
    again: bool = False


@dataclass(frozen=True)
class Rejected:
    """The photo was refused; ``message`` is ready to send to the person as is."""

    reason: RejectReason  # a StrEnum: compares equal to "rate_limited", "too_many_pending", ...
    message: str
    retry_after: int | None = None  # seconds; None when retrying won't help (bad_image)
    ok: Literal[False] = False


@dataclass(frozen=True)
class Delivery:
    """A finished request, handed to the platform's delivery handler to send."""

    request_id: str
    platform: Platform
    status: Literal["done", "failed"]
    platform_chat_id: str
    chat_kind: ChatKind
    platform_user_id: str
    source_message_id: str | None  # the photo's message: reply to it
    status_message_id: str | None  # the "you're #3 in the queue" message: edit it into the answer
    reply_context: dict[str, Any]  # what the front end stored at submit (thread id, interaction token...)
    caption_id: int | None = None  # for rating/correction buttons
    text: str | None = None  # the caption, when status == "done"
    confidence: float | None = None  # 0..1
    band: str | None = None  # "sure", "probable", "unsure" or None: how to phrase it (captionbot.texts)
    hint: str | None = None  # the tagger's plain word for the main thing, for "It may show a cat."
    #: Text read in the photo, one line per line (captionbot.texts.photo_text says how to show it).
    photo_text: str | None = None
    model_version: str | None = None
    failure_code: ErrorCode | None = None  # why it failed (status == "failed")
    failure_message: str | None = None  # for the person, when status == "failed"

    @property
    def ok(self) -> bool:
        return self.status == "done"


#: ``async def post() -> message id``: posts the "describing your photo" placeholder the answer will
#: edit; may raise (then the answer comes as a new message).
PlaceholderPoster = Callable[[], Awaitable[str | int]]

#: ``async def handler(delivery) -> reply message id or None``. Raise to have it retried later.
DeliveryHandler = Callable[[Delivery], Awaitable[str | int | None]]


@dataclass(frozen=True)
class FeedbackState:
    caption_id: int
    rating: int | None  # this person's rating
    correction: str | None  # this person's correction
    ratings: int  # how many people rated the caption
    score: int  # sum of all ratings


@dataclass(frozen=True)
class CorrectionPrompt:
    """What "Better caption" needs to ask: the caption (quoted first), and the prompt already posted
    for this person, caption and chat (ask once per press window, not once per press)."""

    caption_id: int
    caption_text: str
    prompt_message_id: str | None  # the prompt already posted for this wait, if any
    #: True: this person was already asked for this caption (a second press or a double tap): post
    #: no new prompt. False: post one and record it with set_correction_prompt.
    asked_before: bool = False


@dataclass(frozen=True)
class CorrectionTaken:
    """A text taken as a correction: the stored state and the saved text (to quote back), or
    ``expired`` when the wait ran out before the text came."""

    caption_id: int
    saved_text: str | None = None
    state: FeedbackState | None = None
    expired: bool = False


_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/heic": "heic",
    "image/heif": "heif",
}


@dataclass(frozen=True)
class CaptionRecord:
    """One stored caption, as a button press needs it (pre-fill a correction, re-post the photo)."""

    caption_id: int
    text: str
    requester_id: str  # the platform user id of whoever asked for the caption
    image_sha256: str
    image_mime: str
    image_purged: bool
    band: str | None = None  # how sure the model is (captionbot.texts)
    hint: str | None = None
    photo_text: str | None = None  # text read in the photo, one line per line

    @property
    def filename(self) -> str:
        return f"image.{_EXTENSIONS.get(self.image_mime, 'png')}"


@dataclass(frozen=True)
class TagLabel:
    """One of the image tagger's labels: its own name, the plain word people get, its probability."""

    label: str
    word: str
    p: float


@dataclass(frozen=True)
class Attention:
    """Where the model looked for each word: ``maps[i]`` is a ``side`` x ``side`` grid (row-major,
    0..1, each scaled to its own maximum) over the photo, for ``words[i]``."""

    side: int
    words: tuple[str, ...]
    maps: tuple[tuple[float, ...], ...]


RequestState = Literal["queued", "working", "done", "failed"]


@dataclass(frozen=True)
class RequestView:
    """One request as its requester sees it on a page (see service.requests)."""

    request_id: str
    state: RequestState
    queue_position: int | None  # 1 = next; 0 = being captioned now; None once finished
    created_at: datetime
    caption_id: int | None  # for rating, correcting and reporting
    text: str | None  # the caption's words as the model wrote them
    answer: str | None  # the caption as people are told it, phrased for how sure it is (captionbot.texts)
    confidence: float | None
    band: str | None
    hint: str | None
    labels: tuple[TagLabel, ...]
    attention: Attention | None
    photo_text: str | None  # text read in the photo, one line per line
    model_version: str | None
    failure_message: str | None  # for the person, when state == "failed"
    rating: int | None  # this person's
    correction: str | None  # this person's
    flagged: bool  # this person reported the caption
    image_mime: str
    photo_kept: bool  # False once retention deleted the photo

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


@dataclass(frozen=True)
class ModelOverview:
    model: str | None  # the promoted version, else the one that wrote the latest caption
    total_captions: int


class UnknownCaptionError(LookupError):
    """No caption with that id (deleted by /forget, or a forged callback)."""

    user_message = "That caption no longer exists."


class InvalidFeedbackError(ValueError):
    def __init__(self, detail: str, user_message: str) -> None:
        super().__init__(detail)
        self.user_message = user_message


class PhotoUnavailableError(Exception):
    """Raised by a front end's download callable: the photo can't be fetched (``user_message`` says why)."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


__all__ = [
    "Attention",
    "CaptionRecord",
    "CorrectionPrompt",
    "CorrectionTaken",
    "Delivery",
    "DeliveryHandler",
    "FeedbackState",
    "ForgetReport",
    "InvalidFeedbackError",
    "ModelOverview",
    "PhotoUnavailableError",
    "PlaceholderPoster",
    "RejectReason",
    "Rejected",
    "RequestState",
    "RequestView",
    "Submitted",
    "TagLabel",
    "UnknownCaptionError",
    "UserStats",
]
