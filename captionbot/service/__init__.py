"""CaptionService: the one API every front end (Telegram, Discord, the web page) calls. No torch,
and front ends never reach past it into storage.

Life of a photo, as a front end sees it::

    service = CaptionService(settings, session_factory, image_store, queues)
    service.register_delivery_handler("telegram", send_reply)   # before queues.start()
    await service.start()                                        # delivers results left from before

    outcome = await service.take_photo(platform="telegram", platform_chat_id="42", chat_kind="private",
                                       platform_user_id="7", display_name="Ann", download=fetch_bytes,
                                       source_message_id="100", reply_context={"thread_id": 5})
    if isinstance(outcome, Rejected):
        reply(outcome.message)                                   # always something to say
    else:
        msg = reply(texts.queue_status(outcome.queue_position))
        await service.set_status_message(outcome.request_id, msg.id)   # optional

    # later, when the worker is done (or gave up):
    async def send_reply(delivery: Delivery) -> str | None:
        ...send delivery.text (or delivery.failure_message) to delivery.platform_chat_id...
        return sent_message_id                                   # stored as reply_message_id

The parts: :mod:`~captionbot.service.intake` (photos in), :mod:`~captionbot.service.delivery`
(answers out, exactly once), :mod:`~captionbot.service.people` (feedback, privacy, stats, chat
settings), :mod:`~captionbot.service.requests` (a person's own requests, as a page shows them);
:class:`~captionbot.service.moderation.ModerationService` serves the moderator's page;
:mod:`~captionbot.service.results` holds the values they return.
"""

from __future__ import annotations

from captionbot.service.delivery import Deliveries
from captionbot.service.intake import Intake
from captionbot.service.learning import LearningService
from captionbot.service.learning_results import (
    CandidateModel,
    FeedbackItem,
    LeaseLostError,
    ModelRef,
    ModelUsage,
    NothingToRollBackError,
    ReviewItem,
    RoundBusyError,
    RoundLease,
    RoundRecord,
    VersionRow,
)
from captionbot.service.moderation import (
    FlaggedCaption,
    ModerationService,
    PersonActivity,
    RatingPoint,
    VersionOverview,
)
from captionbot.service.people import MAX_CORRECTION_CHARS, People
from captionbot.service.requests import Requests
from captionbot.service.results import (
    Attention,
    CaptionRecord,
    CorrectionPrompt,
    CorrectionTaken,
    Delivery,
    DeliveryHandler,
    FeedbackState,
    ForgetReport,
    InvalidFeedbackError,
    ModelOverview,
    PhotoUnavailableError,
    PlaceholderPoster,
    Rejected,
    RejectReason,
    RequestView,
    Submitted,
    TagLabel,
    UnknownCaptionError,
    UserStats,
)


class CaptionService(Intake, Deliveries, People, Requests):
    """Intake, backpressure, delivery, feedback and privacy for every front end.

    ``CaptionService(settings, session_factory, image_store, queues, *, clock=, now=,
    delivery_lease_s=, sweep_interval_s=)``: see :class:`~captionbot.service.base.ServiceBase`.
    """


__all__ = [
    "MAX_CORRECTION_CHARS",
    "Attention",
    "FlaggedCaption",
    "ModerationService",
    "PersonActivity",
    "RatingPoint",
    "RequestView",
    "TagLabel",
    "VersionOverview",
    "CandidateModel",
    "CaptionRecord",
    "CaptionService",
    "CorrectionPrompt",
    "CorrectionTaken",
    "Delivery",
    "DeliveryHandler",
    "FeedbackItem",
    "FeedbackState",
    "ForgetReport",
    "InvalidFeedbackError",
    "LearningService",
    "LeaseLostError",
    "ModelOverview",
    "ModelRef",
    "ModelUsage",
    "NothingToRollBackError",
    "PhotoUnavailableError",
    "PlaceholderPoster",
    "RejectReason",
    "Rejected",
    "ReviewItem",
    "RoundBusyError",
    "RoundLease",
    "RoundRecord",
    "Submitted",
    "UnknownCaptionError",
    "UserStats",
    "VersionRow",
]
