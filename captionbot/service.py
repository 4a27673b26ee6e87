"""CaptionService: the one API the chat adapters (Telegram, Discord) use. No torch here.

Life of a photo, as an adapter sees it::

    service = CaptionService(settings, session_factory, image_store, queues)
    service.register_delivery_handler("telegram", send_reply)   # before queues.start()
    await service.start()                                        # delivers results left from before

    outcome = await service.submit(platform="telegram", platform_chat_id="42", chat_kind="private",
                                   platform_user_id="7", display_name="Ann", image_bytes=data,
                                   source_message_id="100", reply_context={"thread_id": 5})
    if isinstance(outcome, Rejected):
        reply(outcome.message)                                   # always something to say
    else:
        msg = reply(f"You're #{outcome.queue_position} in the queue")
        await service.set_status_message(outcome.request_id, msg.id)   # optional

    # later, when the worker is done (or gave up):
    async def send_reply(delivery: Delivery) -> str | None:
        ...send delivery.text (or delivery.failure_message) to delivery.platform_chat_id...
        return sent_message_id                                   # stored as reply_message_id

**Exactly-once replies.** A result is delivered by :meth:`CaptionService.deliver`: it first claims
the delivery in the database (atomic ``UPDATE``: only one process/task wins), then calls the
platform's handler, then marks the request ``delivered``. Duplicate delivery notices, the
start-up redelivery and the periodic sweep all go through the same claim, so the handler runs once
per request. If the handler raises, the claim is released and the next sweep retries: raise for
transient errors (network, rate limits), return normally for permanent ones (user blocked the bot).

The remaining window, honestly: if the process dies *after* the handler sent the message but
*before* the ``delivered`` mark commits, the claim expires after ``delivery_lease_s`` and the
result is sent again - the user may see the answer twice. The alternative (never retrying an
expired claim) would turn that crash into silence, which is worse for a chat bot. The window is one
DB commit wide.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot import texts
from captionbot.broker import Queues, QueueUnavailableError
from captionbot.images import ImageError, inspect_image
from captionbot.jobs import CaptionJob, DeliveryNotice, ErrorCode
from captionbot.observability import METRICS
from captionbot.ratelimit import TokenBucket, busy_message, estimate_queue_wait, retry_after_seconds
from captionbot.storage import queries as q
from captionbot.storage import requests as rq
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import Caption, CaptionRequest, ChatKind, Platform, RequestStatus, utcnow

PURGE_INTERVAL_S = 3600.0  # the retention sweep runs at most hourly

log = logging.getLogger(__name__)

MAX_CORRECTION_CHARS = 500
VALID_RATINGS = frozenset({-1, 1, 2, 3, 4, 5})  # thumbs (-1/+1) or stars (1..5)


# --------------------------------------------------------------------------------------- results


class RejectReason(StrEnum):
    RATE_LIMITED = "rate_limited"
    TOO_MANY_PENDING = "too_many_pending"
    QUEUE_FULL = "queue_full"
    BAD_IMAGE = "bad_image"


@dataclass(frozen=True)
class Submitted:
    """The photo is stored and queued."""

    request_id: str  # public id: safe to put in button callback data
    queue_position: int  # 1 = next to be captioned
    ok: Literal[True] = True


@dataclass(frozen=True)
class Rejected:
    """The photo was refused; ``message`` is ready to send to the user as is."""

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
    reply_context: dict[str, Any]  # what the adapter stored at submit (thread id, interaction token...)
    caption_id: int | None = None  # for rating/correction buttons
    text: str | None = None  # the caption, when status == "done"
    confidence: float | None = None  # 0..1
    band: str | None = None  # "sure", "probable", "unsure" or None: how to phrase it (captionbot.wording)
    hint: str | None = None  # the tagger's plain word for the main thing, for "It may show a cat."
    model_version: str | None = None
    failure_code: ErrorCode | None = None  # why it failed (status == "failed")
    failure_message: str | None = None  # for the user, when status == "failed"

    @property
    def ok(self) -> bool:
        return self.status == "done"


#: ``async def handler(delivery) -> reply message id or None``. Raise to have it retried later.
DeliveryHandler = Callable[[Delivery], Awaitable[str | int | None]]


@dataclass(frozen=True)
class FeedbackState:
    caption_id: int
    rating: int | None  # this user's rating
    correction: str | None  # this user's correction
    ratings: int  # how many people rated the caption
    score: int  # sum of all ratings


@dataclass(frozen=True)
class ForgetReport:
    found: bool  # False: we had nothing about this user
    requests: int = 0
    captions: int = 0
    feedback: int = 0
    images: int = 0  # photos deleted from storage


@dataclass(frozen=True)
class UserStats:
    requests: int = 0
    captions: int = 0
    pending: int = 0
    failed: int = 0
    ratings: int = 0
    corrections: int = 0
    opted_out: bool = False


class UnknownCaptionError(LookupError):
    """No caption with that id (deleted by /forget, or a forged callback)."""

    user_message = "That caption no longer exists."


class InvalidFeedbackError(ValueError):
    def __init__(self, detail: str, user_message: str) -> None:
        super().__init__(detail)
        self.user_message = user_message


# --------------------------------------------------------------------------------------- service


@dataclass
class _Throughput:
    """Recent completion times, for "try again in N s" estimates."""

    times: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    default_s: float = 1.0

    def record(self, t: float) -> None:
        self.times.append(t)

    def seconds_per_request(self) -> float:
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return self.default_s
        return (self.times[-1] - self.times[0]) / (len(self.times) - 1)


def _bucket_key(platform: Platform | str, platform_user_id: str | int) -> tuple[Platform, str]:
    return Platform(platform), str(platform_user_id)


class CaptionService:
    """Intake, backpressure, delivery, feedback and privacy for the chat adapters.

    ``settings`` needs: max_image_bytes, max_pixels, user_rate_per_minute, user_burst,
    user_max_pending, queue_max_pending, retention_days. ``clock`` (monotonic seconds) drives the
    rate limiter; ``now`` (aware UTC) the database timestamps - both injectable for tests.
    """

    def __init__(
        self,
        settings: Any,
        session_factory: async_sessionmaker[AsyncSession],
        image_store: ImageStore,
        queues: Queues,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        delivery_lease_s: float = 120.0,
        sweep_interval_s: float = 15.0,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.image_store = image_store
        self.queues = queues
        self.clock = clock
        self.now = now
        self.delivery_lease_s = delivery_lease_s
        self.sweep_interval_s = sweep_interval_s
        self.bucket = TokenBucket(rate_per_minute=settings.user_rate_per_minute, burst=settings.user_burst, clock=clock)
        self._handlers: dict[Platform, DeliveryHandler] = {}
        self._throughput = _Throughput()
        self._sweeper: asyncio.Task[None] | None = None
        self._last_purge: float | None = None
        queues.on_delivery(self._on_notice)

    # -- life cycle ------------------------------------------------------------------------------

    def register_delivery_handler(self, platform: Platform | str, handler: DeliveryHandler) -> None:
        """Route finished requests of ``platform`` to ``handler`` (one handler per platform)."""
        self._handlers[Platform(platform)] = handler

    async def start(self) -> None:
        """Deliver whatever finished while no bot was running, then keep sweeping for strays."""
        await self.redeliver_pending()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="delivery-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    # -- intake ----------------------------------------------------------------------------------

    async def submit(
        self,
        *,
        platform: Platform | str,
        platform_chat_id: str | int,
        chat_kind: ChatKind | str,
        platform_user_id: str | int,
        display_name: str | None,
        image_bytes: bytes,
        source_message_id: str | int | None,
        reply_context: dict[str, Any] | None = None,
        reserved: bool = False,
    ) -> Submitted | Rejected:
        """Validate, store and queue a photo; or say (politely, with a retry time) why not.
        ``reserved``: the caller already took the rate-limit token with :meth:`reserve`."""
        platform, chat_kind = Platform(platform), ChatKind(chat_kind)
        if not reserved and (limited := self.reserve(platform=platform, platform_user_id=platform_user_id)):
            return limited
        try:
            info = await asyncio.to_thread(
                inspect_image,
                image_bytes,
                max_bytes=self.settings.max_image_bytes,
                max_pixels=self.settings.max_pixels,
            )
        except ImageError as exc:
            METRICS.rejections.labels(reason=RejectReason.BAD_IMAGE.value).inc()
            return Rejected(RejectReason.BAD_IMAGE, exc.user_message, None)

        # One session for the admission checks, the inserts and the queue position: each session and
        # each round trip to the database is a noticeable share of a request's cost under load.
        async with self.session_factory.begin() as session:
            pending = await q.count_pending(session)
            user = await q.get_user(session, platform=platform, platform_user_id=platform_user_id)
            user_pending = await q.count_pending_for_user(session, user_id=user.id) if user else 0
            per_request = self._throughput.seconds_per_request()
            if pending >= self.settings.queue_max_pending:
                self.unreserve(platform=platform, platform_user_id=platform_user_id)
                retry = estimate_queue_wait(
                    pending - self.settings.queue_max_pending + 1, seconds_per_request=per_request
                )
                return self._reject(RejectReason.QUEUE_FULL, retry, busy_message(retry))
            if user_pending >= self.settings.user_max_pending:
                self.unreserve(platform=platform, platform_user_id=platform_user_id)
                retry = estimate_queue_wait(pending, seconds_per_request=per_request)
                return self._reject(
                    RejectReason.TOO_MANY_PENDING,
                    retry,
                    f"I'm still working on your last {user_pending} photos \N{EM DASH} "
                    f"please send more in about {retry} s.",
                )

            await self.image_store.aput(image_bytes)
            if user is None:
                user = await q.get_or_create_user(
                    session, platform=platform, platform_user_id=platform_user_id, display_name=display_name
                )
            elif display_name is not None and user.display_name != display_name:
                user.display_name = display_name  # same as get_or_create_user, without its two queries
            chat = await q.get_or_create_chat(
                session, platform=platform, platform_chat_id=platform_chat_id, kind=chat_kind
            )
            image = await q.add_image(
                session,
                sha256=info.sha256,
                size_bytes=info.size_bytes,
                width=info.width,
                height=info.height,
                mime=info.mime,
            )
            req = await q.create_request(
                session,
                platform=platform,
                chat_id=chat.id,
                requester_id=user.id,
                image_id=image.id,
                source_message_id=source_message_id,
                reply_context=reply_context or {},
            )
            public_id = req.public_id
            position = await q.queue_position(session, request_id=req.id)
        try:
            await self.queues.enqueue_caption(CaptionJob(request_id=public_id, image_sha256=info.sha256))
        except QueueUnavailableError:
            # Stored and queued in the DB: a worker's recovery sweep will pick it up.
            METRICS.failures.labels(kind="enqueue_error").inc()
            log.warning("request %s stored but not enqueued (broker down); recovery will enqueue it", public_id)
        return Submitted(public_id, position if position is not None else 0)

    def reserve(self, *, platform: Platform | str, platform_user_id: str | int) -> Rejected | None:
        """Take the user's rate-limit token now, before downloading the photo, so a flood costs no
        bandwidth: a refusal, or None and ``submit(..., reserved=True)`` takes no second token. A
        photo that never reaches ``submit`` (its download failed) gets it back with :meth:`unreserve`."""
        wait = self.bucket.take(_bucket_key(platform, platform_user_id))
        return self._rate_limited(wait) if wait > 0 else None

    def unreserve(self, *, platform: Platform | str, platform_user_id: str | int) -> None:
        self.bucket.give_back(_bucket_key(platform, platform_user_id))

    def _rate_limited(self, wait: float) -> Rejected:
        retry = retry_after_seconds(wait)
        return self._reject(
            RejectReason.RATE_LIMITED,
            retry,
            f"You're sending photos faster than I can look at them \N{EM DASH} please try again in {retry} s.",
        )

    @staticmethod
    def _reject(reason: RejectReason, retry_after: int, message: str) -> Rejected:
        METRICS.rejections.labels(reason=reason.value).inc()
        return Rejected(reason, message, retry_after)

    async def queue_position(self, request_id: str) -> int | None:
        """1 = next in line; 0 = being captioned now; None = finished (or unknown)."""
        async with self.session_factory() as session:
            req = await q.get_request_by_public_id(session, public_id=request_id)
            return None if req is None else await q.queue_position(session, request_id=req.id)

    async def set_status_message(self, request_id: str, message_id: str | int) -> bool:
        """Remember the "you're #N in the queue" message, so the delivery can edit it."""
        async with self.session_factory.begin() as session:
            req = await q.get_request_by_public_id(session, public_id=request_id)
            if req is None:
                return False
            await q.set_status_message(session, request_id=req.id, status_message_id=message_id)
            return True

    async def pending_count(self) -> int:
        """Queued + running requests (the queue-depth metric)."""
        async with self.session_factory() as session:
            return await q.count_pending(session)

    # -- delivery --------------------------------------------------------------------------------

    async def _on_notice(self, notice: DeliveryNotice) -> None:
        await self.deliver(notice.request_id)

    async def deliver(self, request_id: str) -> bool:
        """Send request ``request_id``'s result through its platform's handler, at most once
        (see the module docstring). True when this call sent it."""
        async with self.session_factory.begin() as session:  # the look-up and the claim: one session
            req = await q.get_request_by_public_id(session, public_id=request_id)
            if req is None or req.status not in (RequestStatus.DONE, RequestStatus.FAILED):
                return False
            handler = self._handlers.get(req.platform)
            if handler is None:
                log.debug("no delivery handler for %s in this process; leaving %s", req.platform, request_id)
                return False
            claimed = await q.claim_delivery(session, request_id=req.id, lease=timedelta(seconds=self.delivery_lease_s))
            if claimed is None:
                return False
            extras = await rq.delivery_extras(session, request_id=req.id)
            delivery = _delivery_from(claimed, extras)
        try:
            reply_id = await handler(delivery)
        except Exception:
            METRICS.failures.labels(kind="delivery_error").inc()
            if claimed.delivery_attempts >= q.DEFAULT_DELIVERY_ATTEMPTS:
                # Keep the claim: neither the sweep nor a notice will take it again.
                log.error(
                    "giving up the reply to %s after %d attempts", request_id, claimed.delivery_attempts, exc_info=True
                )
                return False
            log.warning("delivery handler failed for %s; will retry", request_id, exc_info=True)
            async with self.session_factory.begin() as session:
                await q.release_delivery(session, request_id=req.id)
            return False
        async with self.session_factory.begin() as session:
            await q.mark_delivered(session, request_id=req.id, reply_message_id=reply_id)
        METRICS.deliveries.labels(status=delivery.status).inc()
        METRICS.request_latency.observe(max(0.0, (self.now() - claimed.created_at).total_seconds()))
        self._throughput.record(self.clock())
        return True

    async def redeliver_pending(self, *, min_age_s: float = 0.0) -> int:
        """Deliver results that finished at least ``min_age_s`` ago and were never sent (e.g. the
        bot was down). Only platforms with a handler in this process. Returns how many were sent."""
        if not self._handlers:
            return 0
        cutoff = self.now() - timedelta(seconds=min_age_s)
        lease = timedelta(seconds=self.delivery_lease_s)
        ids: list[str] = []
        async with self.session_factory() as session:
            for platform in list(self._handlers):
                rows = await q.undelivered_results(session, platform=platform, lease=lease, limit=500)
                ids += [r.public_id for r in rows if r.finished_at is None or r.finished_at <= cutoff]
        sent = 0
        for request_id in ids:
            sent += await self.deliver(request_id)
        if sent:
            log.info("delivered %d result(s) that were waiting", sent)
        return sent

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            try:
                # Give normal notices a head start; the sweep is for lost ones.
                await self.redeliver_pending(min_age_s=self.sweep_interval_s)
            except Exception:
                log.warning("delivery sweep failed", exc_info=True)
            if self._last_purge is None or self.clock() - self._last_purge >= PURGE_INTERVAL_S:
                self._last_purge = self.clock()
                try:
                    await self.purge_expired_photos()
                except Exception:
                    log.warning("retention sweep failed", exc_info=True)

    async def purge_expired_photos(self) -> int:
        """Delete photo files older than ``settings.retention_days`` (0 keeps them) whose requests are
        all answered; photos with feedback usable for training (and not opted out) are kept, as the
        privacy text says. Returns how many files went."""
        days = self.settings.retention_days
        if not days:
            return 0
        async with self.session_factory.begin() as session:
            purged = await q.purge_expired_images(
                session, older_than=self.now() - timedelta(days=days), image_store=self.image_store
            )
        if purged:
            log.info("retention: deleted %d photo(s) older than %d days", len(purged), days)
        return len(purged)

    # -- feedback --------------------------------------------------------------------------------

    async def rate(
        self, *, caption_id: int, platform: Platform | str, platform_user_id: str | int, rating: int
    ) -> FeedbackState:
        """Set this user's rating of a caption (-1/+1 thumbs or 1..5 stars; rating again replaces it)."""
        if rating not in VALID_RATINGS:
            raise InvalidFeedbackError(f"rating {rating!r}", "Ratings are thumbs up/down or 1 to 5 stars.")
        return await self._feedback(caption_id, platform, platform_user_id, {"rating": int(rating)})

    async def correct(
        self, *, caption_id: int, platform: Platform | str, platform_user_id: str | int, text: str
    ) -> FeedbackState:
        """Store this user's better caption for a caption (replaces their earlier one)."""
        text = " ".join((text or "").split())
        if not text:
            raise InvalidFeedbackError("empty correction", "Please send the caption you'd suggest as text.")
        if len(text) > MAX_CORRECTION_CHARS:
            raise InvalidFeedbackError(
                "correction too long", f"Please keep your caption under {MAX_CORRECTION_CHARS} characters."
            )
        return await self._feedback(caption_id, platform, platform_user_id, {"correction": text})

    async def _feedback(
        self, caption_id: int, platform: Platform | str, platform_user_id: str | int, values: dict[str, Any]
    ) -> FeedbackState:
        async with self.session_factory.begin() as session:
            if await session.get(Caption, caption_id) is None:
                raise UnknownCaptionError(caption_id)
            user = await q.get_or_create_user(session, platform=platform, platform_user_id=platform_user_id)
            mine = await q.set_feedback(session, caption_id=caption_id, user_id=user.id, **values)
            ratings, score = await rq.feedback_totals(session, caption_id=caption_id)
        return FeedbackState(caption_id, mine.rating, mine.correction, ratings, score)

    # -- privacy ---------------------------------------------------------------------------------

    async def forget(self, *, platform: Platform | str, platform_user_id: str | int) -> ForgetReport:
        """Delete everything about this user: requests, captions, feedback, and photos only they sent."""
        async with self.session_factory.begin() as session:
            user = await q.get_user(session, platform=platform, platform_user_id=platform_user_id)
            if user is None:
                return ForgetReport(found=False)
            # Photo files go when this transaction commits (queries.forget_user arranges it).
            r = await q.forget_user(session, user_id=user.id, image_store=self.image_store)
        log.info("forgot a %s user: %d request(s), %d photo(s)", platform, r.requests, r.images)
        return ForgetReport(True, r.requests, r.captions, r.feedback, r.images)

    async def set_opt_out(self, *, platform: Platform | str, platform_user_id: str | int, opt_out: bool = True) -> bool:
        """Keep (False) or stop (True) using this user's photos and feedback for training.
        Captioning goes on either way. Returns the new setting."""
        async with self.session_factory.begin() as session:
            user = await q.get_or_create_user(session, platform=platform, platform_user_id=platform_user_id)
            await q.set_training_opt_out(session, user_id=user.id, opt_out=bool(opt_out))
        return bool(opt_out)

    async def stats(self, *, platform: Platform | str, platform_user_id: str | int) -> UserStats:
        async with self.session_factory() as session:
            user = await q.get_user(session, platform=platform, platform_user_id=platform_user_id)
            if user is None:
                return UserStats()
            s = await q.user_stats(session, user_id=user.id)
            c = await rq.user_counts(session, user_id=user.id)
        return UserStats(
            requests=s.requests,
            captions=s.captions,
            pending=c.pending,
            failed=c.failed,
            ratings=s.ratings_given,
            corrections=s.corrections_given,
            opted_out=user.training_opt_out,
        )

    def privacy_text(self) -> str:
        days = self.settings.retention_days
        keep = (
            f"for {days} days after they are captioned, longer only if you rated or corrected the caption "
            "and did not opt out of training"
            if days
            else "until you ask me to forget them"
        )
        return (
            "What I keep: the photos you send me (" + keep + "), the captions I wrote, and your ratings and "
            "corrections, linked to your account id and display name. They are used to answer you and, "
            "unless you opt out, to train better captions.\n"
            "/optout \N{EM DASH} keep getting captions, but never use your photos or feedback for training.\n"
            "/forget \N{EM DASH} delete everything I have about you, now.\n"
            "I never share your photos with anyone."
        )


def _delivery_from(req: CaptionRequest, extras: rq.DeliveryExtras) -> Delivery:
    """``req`` as returned by ``queries.claim_delivery`` (its caption and chat loaded)."""
    caption = req.caption
    common: dict[str, Any] = {
        "request_id": req.public_id,
        "platform": req.platform,
        "platform_chat_id": req.chat.platform_chat_id,
        "chat_kind": req.chat.kind,
        "platform_user_id": extras.platform_user_id,
        "source_message_id": req.source_message_id,
        "status_message_id": req.status_message_id,
        "reply_context": dict(req.reply_context or {}),
    }
    if caption is not None:
        return Delivery(
            status="done",
            caption_id=caption.id,
            text=caption.text,
            confidence=caption.confidence,
            band=caption.band,
            hint=caption.hint,
            model_version=extras.model_version,
            **common,
        )
    code = req.error_code or ErrorCode.CAPTION_ERROR
    return Delivery(status="failed", failure_code=code, failure_message=req.error or texts.failure(code), **common)


__all__ = [
    "CaptionService",
    "Delivery",
    "DeliveryHandler",
    "FeedbackState",
    "ForgetReport",
    "InvalidFeedbackError",
    "RejectReason",
    "Rejected",
    "Submitted",
    "UnknownCaptionError",
    "UserStats",
]
