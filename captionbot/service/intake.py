"""Intake: the one path every photo takes in, from any front end.

``take_photo`` is what a front end calls: rate limit (before downloading, so a flood costs no
bandwidth), download through the front end's own callable, validate, store, queue. Every refusal
comes back as a :class:`Rejected` whose message is ready to send.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from captionbot import texts
from captionbot.broker import QueueUnavailableError
from captionbot.images import ImageError, inspect_image
from captionbot.jobs import CaptionJob
from captionbot.observability import METRICS
from captionbot.ratelimit import estimate_queue_wait, retry_after_seconds
from captionbot.service.base import ServiceBase
from captionbot.service.results import PhotoUnavailableError, PlaceholderPoster, Rejected, RejectReason, Submitted
from captionbot.storage import jobs, users
from captionbot.storage.models import ChatKind, Platform

log = logging.getLogger(__name__)


async def _post(placeholder: PlaceholderPoster | None) -> str | None:
    """Post the placeholder; None when there is none or posting failed (the answer is then sent new)."""
    if placeholder is None:
        return None
    try:
        return str(await placeholder())
    except Exception as exc:
        log.info("placeholder not posted (%s); the answer will be a new message", type(exc).__name__)
        return None


def _bucket_key(platform: Platform | str, platform_user_id: str | int) -> tuple[Platform, str]:
    return Platform(platform), str(platform_user_id)


class Intake(ServiceBase):
    async def take_photo(
        self,
        *,
        platform: Platform | str,
        platform_chat_id: str | int,
        chat_kind: ChatKind | str,
        platform_user_id: str | int,
        display_name: str | None,
        download: Callable[[], Awaitable[bytes]],
        source_message_id: str | int | None,
        reply_context: dict[str, Any] | None = None,
        intake_key: str | None = None,
        placeholder: PlaceholderPoster | None = None,
    ) -> Submitted | Rejected:
        """Rate-limit, download (``download()`` raises :class:`PhotoUnavailableError` with a message
        for the person when it can't), validate, post the placeholder, store and queue one photo.

        ``intake_key`` names the incoming message (platform, chat, message): when it was taken
        before (delivered again after a crash), the earlier request is returned with ``again=True``
        and nothing is downloaded, posted or stored. ``placeholder`` posts the message the answer
        will edit; it runs after the photo is known to be good and right before the request row is
        written with its id, so a crash between the two is as short as it can be."""
        if intake_key is not None and (known := await self._taken_before(intake_key)) is not None:
            return known
        if limited := self.reserve(platform=platform, platform_user_id=platform_user_id):
            return limited
        try:
            data = await download()
        except PhotoUnavailableError as exc:
            self.unreserve(platform=platform, platform_user_id=platform_user_id)
            return Rejected(RejectReason.DOWNLOAD_FAILED, exc.user_message, None)
        except BaseException:
            self.unreserve(platform=platform, platform_user_id=platform_user_id)
            raise
        return await self.submit(
            platform=platform,
            platform_chat_id=platform_chat_id,
            chat_kind=chat_kind,
            platform_user_id=platform_user_id,
            display_name=display_name,
            image_bytes=data,
            source_message_id=source_message_id,
            reply_context=reply_context,
            reserved=True,
            intake_key=intake_key,
            placeholder=placeholder,
        )

    async def _taken_before(self, intake_key: str) -> Submitted | None:
        async with self.session_factory() as session:
            req = await jobs.find_by_intake_key(session, intake_key=intake_key)
            if req is None:
                return None
            position = await jobs.queue_position(session, request_id=req.id)
        log.info("request %s: its message arrived again; not taken twice", req.public_id)
        return Submitted(req.public_id, position or 0, again=True)

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
        intake_key: str | None = None,
        placeholder: PlaceholderPoster | None = None,
    ) -> Submitted | Rejected:
        """Validate, store and queue a photo already in memory; or say (politely, with a retry
        time) why not. ``reserved``: the caller already took the rate-limit token (:meth:`reserve`)."""
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
        # Everything that can refuse or take time happens before the placeholder is posted, so the
        # step between "placeholder posted" and "its id stored" is one INSERT: a crash there leaves a
        # placeholder nobody edits (the photo is still answered once, when the platform resends it).
        try:
            async with self.session_factory.begin() as session:
                pending = await jobs.count_pending(session)
                user = await users.get_user(session, platform=platform, platform_user_id=platform_user_id)
                user_pending = await jobs.count_pending_for_user(session, user_id=user.id) if user else 0
                per_request = self.throughput.seconds_per_request()
                if pending >= self.settings.queue_max_pending:
                    self.unreserve(platform=platform, platform_user_id=platform_user_id)
                    retry = estimate_queue_wait(
                        pending - self.settings.queue_max_pending + 1, seconds_per_request=per_request
                    )
                    return self._reject(RejectReason.QUEUE_FULL, retry, texts.busy(retry))
                if user_pending >= self.settings.user_max_pending:
                    self.unreserve(platform=platform, platform_user_id=platform_user_id)
                    retry = estimate_queue_wait(pending, seconds_per_request=per_request)
                    message = texts.too_many_pending(user_pending, retry)
                    return self._reject(RejectReason.TOO_MANY_PENDING, retry, message)

                await self.image_store.aput(image_bytes)
                if user is None:
                    user = await users.get_or_create_user(
                        session, platform=platform, platform_user_id=platform_user_id, display_name=display_name
                    )
                elif display_name is not None and user.display_name != display_name:
                    user.display_name = display_name  # same as get_or_create_user, without its two queries
                chat = await users.get_or_create_chat(
                    session, platform=platform, platform_chat_id=platform_chat_id, kind=chat_kind
                )
                image = await jobs.add_image(
                    session,
                    sha256=info.sha256,
                    size_bytes=info.size_bytes,
                    width=info.width,
                    height=info.height,
                    mime=info.mime,
                )
                new_request: dict[str, Any] = {
                    "platform": platform,
                    "chat_id": chat.id,
                    "requester_id": user.id,
                    "image_id": image.id,
                    "source_message_id": source_message_id,
                    "reply_context": reply_context or {},
                    "intake_key": intake_key,
                }
                if placeholder is None:  # nothing to post: one transaction does it all
                    req = await jobs.create_request(session, **new_request)
                    public_id = req.public_id
                    position = await jobs.queue_position(session, request_id=req.id)
            if placeholder is not None:
                placeholder_id = await _post(placeholder)
                async with self.session_factory.begin() as session:
                    req = await jobs.create_request(session, status_message_id=placeholder_id, **new_request)
                    public_id = req.public_id
                async with self.session_factory() as session:
                    position = await jobs.queue_position(session, request_id=req.id)
        except IntegrityError:
            # The same message, taken twice at the same moment: the other one stored it.
            self.unreserve(platform=platform, platform_user_id=platform_user_id)
            if intake_key is not None and (known := await self._taken_before(intake_key)) is not None:
                return known
            raise
        try:
            await self.queues.enqueue_caption(CaptionJob(request_id=public_id, image_sha256=info.sha256))
        except QueueUnavailableError:
            # Stored and queued in the DB: a worker's recovery sweep will pick it up.
            METRICS.failures.labels(kind="enqueue_error").inc()
            log.warning("request %s stored but not enqueued (broker down); recovery will enqueue it", public_id)
        return Submitted(public_id, position if position is not None else 0)

    def reserve(self, *, platform: Platform | str, platform_user_id: str | int) -> Rejected | None:
        """Take the person's rate-limit token now, before downloading the photo: a refusal, or None
        and ``submit(..., reserved=True)`` takes no second token. A photo that never reaches
        ``submit`` (its download failed) gets it back with :meth:`unreserve`."""
        wait = self.bucket.take(_bucket_key(platform, platform_user_id))
        if wait <= 0:
            return None
        retry = retry_after_seconds(wait)
        return self._reject(RejectReason.RATE_LIMITED, retry, texts.rate_limited(retry))

    def unreserve(self, *, platform: Platform | str, platform_user_id: str | int) -> None:
        self.bucket.give_back(_bucket_key(platform, platform_user_id))

    @staticmethod
    def _reject(reason: RejectReason, retry_after: int, message: str) -> Rejected:
        METRICS.rejections.labels(reason=reason.value).inc()
        return Rejected(reason, message, retry_after)

    async def queue_position(self, request_id: str) -> int | None:
        """1 = next in line; 0 = being captioned now; None = finished (or unknown)."""
        async with self.session_factory() as session:
            req = await jobs.get_request_by_public_id(session, public_id=request_id)
            return None if req is None else await jobs.queue_position(session, request_id=req.id)

    async def set_status_message(self, request_id: str, message_id: str | int) -> bool:
        """Remember the "you're #N in the queue" message, so the delivery can edit it."""
        async with self.session_factory.begin() as session:
            req = await jobs.get_request_by_public_id(session, public_id=request_id)
            if req is None:
                return False
            await jobs.set_status_message(session, request_id=req.id, status_message_id=message_id)
            return True
