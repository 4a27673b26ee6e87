"""Delivery: hand each finished request to its platform's handler, once.

**Exactly-once replies.** :meth:`Deliveries.deliver` first claims the delivery in the database
(atomic ``UPDATE``: only one process/task wins), then calls the platform's handler, then marks the
request ``delivered``. Duplicate delivery notices, the start-up redelivery and the periodic sweep
all go through the same claim, so the handler runs once per request. If the handler raises, the
claim is released and the next sweep retries: raise for transient errors (network, rate limits),
return normally for permanent ones (the person blocked the bot).

Sending twice after a crash: if the process dies *after* the handler sent the answer but *before*
the ``delivered`` mark commits, the claim expires after ``delivery_lease_s`` and the handler runs
again for the same request. Front ends make that harmless by answering with an *edit* of the
placeholder stored with the request (``Delivery.status_message_id``), which can be repeated; only
an answer without a placeholder is a new message, sent again in that case. Never retrying an
expired claim would turn the crash into silence instead, which is worse for a chat bot.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from captionbot import texts
from captionbot.jobs import DeliveryNotice, ErrorCode
from captionbot.observability import METRICS, one_line
from captionbot.service.base import ServiceBase
from captionbot.service.results import Delivery, DeliveryHandler
from captionbot.storage import deliveries, jobs, retention
from captionbot.storage.deliveries import DeliveryExtras
from captionbot.storage.models import CaptionRequest, Platform, RequestStatus

PURGE_INTERVAL_S = 3600.0  # the retention sweep runs at most hourly

log = logging.getLogger(__name__)


class Deliveries(ServiceBase):
    _handlers: dict[Platform, DeliveryHandler]
    _sweeper: asyncio.Task[None] | None
    _last_purge: float | None

    def _setup(self) -> None:
        super()._setup()
        self._handlers = {}
        self._sweeper = None
        self._last_purge = None
        self.queues.on_delivery(self._on_notice)

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

    async def _on_notice(self, notice: DeliveryNotice) -> None:
        await self.deliver(notice.request_id)

    async def deliver(self, request_id: str) -> bool:
        """Send request ``request_id``'s result through its platform's handler, at most once
        (see the module docstring). True when this call sent it."""
        async with self.session_factory.begin() as session:  # the look-up and the claim: one session
            req = await jobs.get_request_by_public_id(session, public_id=request_id)
            if req is None or req.status not in (RequestStatus.DONE, RequestStatus.FAILED):
                return False
            handler = self._handlers.get(req.platform)
            if handler is None:
                log.debug("no delivery handler for %s in this process; leaving %s", req.platform, request_id)
                return False
            claimed = await deliveries.claim_delivery(
                session, request_id=req.id, lease=timedelta(seconds=self.delivery_lease_s)
            )
            if claimed is None:
                return False
            extras = await deliveries.delivery_extras(session, request_id=req.id)
            delivery = delivery_from(claimed, extras)
        try:
            reply_id = await handler(delivery)
        except Exception as exc:
            METRICS.failures.labels(kind="delivery_error").inc()
            if claimed.delivery_attempts >= deliveries.DEFAULT_DELIVERY_ATTEMPTS:
                # Keep the claim: neither the sweep nor a notice will take it again.
                log.error(
                    "giving up the reply to %s after %d attempts",
                    request_id,
                    claimed.delivery_attempts,
                    exc_info=True,
                )
                return False
            log.warning("delivery handler failed for %s (%s); will retry", request_id, one_line(exc))
            log.debug("delivery handler failure", exc_info=True)
            async with self.session_factory.begin() as session:
                await deliveries.release_delivery(session, request_id=req.id)
            return False
        async with self.session_factory.begin() as session:
            await deliveries.mark_delivered(session, request_id=req.id, reply_message_id=reply_id)
        METRICS.deliveries.labels(status=delivery.status).inc()
        METRICS.request_latency.observe(max(0.0, (self.now() - claimed.created_at).total_seconds()))
        self.throughput.record(self.clock())
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
                rows = await deliveries.undelivered_results(session, platform=platform, lease=lease, limit=500)
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
            except Exception as exc:
                log.warning("delivery sweep failed (%s); next try in %.0f s", one_line(exc), self.sweep_interval_s)
                log.debug("delivery sweep failure", exc_info=True)
            if self._last_purge is None or self.clock() - self._last_purge >= PURGE_INTERVAL_S:
                self._last_purge = self.clock()
                try:
                    await self.purge_expired_photos()
                except Exception as exc:
                    log.warning("retention sweep failed (%s)", one_line(exc))
                    log.debug("retention sweep failure", exc_info=True)

    async def purge_expired_photos(self) -> int:
        """Delete photo files older than ``settings.retention_days`` (0 keeps them) whose requests are
        all answered; photos with feedback usable for training (and not opted out) are kept, as the
        privacy text says. Returns how many files went."""
        days = self.settings.retention_days
        if not days:
            return 0
        async with self.session_factory.begin() as session:
            purged = await retention.purge_expired_images(
                session, older_than=self.now() - timedelta(days=days), image_store=self.image_store
            )
        if purged:
            log.info("retention: deleted %d photo(s) older than %d days", len(purged), days)
        return len(purged)


def delivery_from(req: CaptionRequest, extras: DeliveryExtras) -> Delivery:
    """``req`` as returned by ``deliveries.claim_delivery`` (its caption and chat loaded)."""
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
            photo_text=caption.photo_text,
            model_version=extras.model_version,
            **common,
        )
    code = req.error_code or ErrorCode.CAPTION_ERROR
    return Delivery(status="failed", failure_code=code, failure_message=req.error or texts.failure(code), **common)
