"""The :class:`Queues` facade: the two logical queues (``captions`` and ``deliveries``) over one
transport, with handler registration, start/stop, sending with retries, and health checks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from taskiq import AsyncBroker, InMemoryBroker
from taskiq.kicker import AsyncKicker

from captionbot.broker.options import parse_broker_url
from captionbot.broker.receiver_loop import ReceiverLoop
from captionbot.jobs import CAPTION_TASK, DELIVERY_TASK, CaptionJob, DeliveryNotice

if TYPE_CHECKING:
    from captionbot.broker.redis_streams import ReclaimingRedisStreamBroker

__all__ = ["CaptionHandler", "DeliveryHandler", "QueueUnavailableError", "Queues"]

log = logging.getLogger(__name__)

# Keep the streams bounded: acknowledged entries are never read again. Far above queue_max_pending.
STREAM_MAXLEN = 100_000

CaptionHandler = Callable[[CaptionJob], Awaitable[None]]
DeliveryHandler = Callable[[DeliveryNotice], Awaitable[None]]
# Sends one task by name with a JSON payload (the handler side may live in another process).
_PayloadKicker = AsyncKicker[[dict[str, Any]], None]


class QueueUnavailableError(RuntimeError):
    """A message could not be sent before the deadline (broker down). The DB row is still there:
    the recovery sweeps will send it again later."""


class Queues:
    """The two logical queues over one transport. Register handlers, then :meth:`start`.

    A process only consumes the queues it asks for in :meth:`start` (the worker: captions; the bot
    side: deliveries; ``captionbot run``: both); it can send to either.
    """

    def __init__(self, broker_url: str, *, caption_batch_hint: int = 16) -> None:
        self.options = parse_broker_url(broker_url)
        self.captions: AsyncBroker
        self.deliveries: AsyncBroker
        self._redis: ReclaimingRedisStreamBroker | None = None  # the captions broker, for ping/purge
        if self.options.scheme == "memory":
            # Runs each kicked task in this process, concurrently (the worker's batcher groups them).
            self.captions = InMemoryBroker(max_stored_results=1, propagate_exceptions=False)
            self.deliveries = InMemoryBroker(max_stored_results=1, propagate_exceptions=False)
        else:
            # Imported here: redis is the optional ``redis`` extra.
            from captionbot.broker.redis_streams import unique_consumer_name

            consumer = unique_consumer_name()
            self._redis = self._redis_broker("captions", "workers", consumer, read_count=max(1, caption_batch_hint))
            self.captions = self._redis
            self.deliveries = self._redis_broker("deliveries", "bots", consumer, read_count=16)
        self._caption_kicker: _PayloadKicker = AsyncKicker(CAPTION_TASK, self.captions, {})
        self._delivery_kicker: _PayloadKicker = AsyncKicker(DELIVERY_TASK, self.deliveries, {})
        self._loops: list[ReceiverLoop] = []
        self._started = False
        # memory:// only: messages kicked whose handler has not returned yet (see wait_idle).
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def _redis_broker(self, queue: str, group: str, consumer: str, *, read_count: int) -> ReclaimingRedisStreamBroker:
        """The broker of one queue: stream ``<prefix>:<queue>``, consumer group ``<prefix>:<group>``."""
        from captionbot.broker.redis_streams import ReclaimingRedisStreamBroker

        prefix, reclaim_after_s = self.options.prefix, self.options.reclaim_after_s
        return ReclaimingRedisStreamBroker(
            self.options.url,
            queue_name=f"{prefix}:{queue}",
            group_name=f"{prefix}:{group}",
            consumer_name=consumer,
            group_start_id="0",  # a group created after the first kick still sees that message
            maxlen=STREAM_MAXLEN,
            reclaim_after_ms=int(reclaim_after_s * 1000),
            reclaim_interval=max(0.5, min(5.0, reclaim_after_s / 4)),
            read_count=read_count,
            max_connections=64,
            client_name=prefix,  # lets an operator (or a test) spot our connections
        )

    @property
    def durable(self) -> bool:
        return self.options.durable

    @property
    def reclaim_after_s(self) -> float:
        return self.options.reclaim_after_s

    def describe(self) -> str:
        """For logs: the transport and stream names, never the URL (it may hold a password)."""
        if not self.durable:
            return "memory (in-process)"
        return f"redis streams {self.options.prefix}:captions / {self.options.prefix}:deliveries"

    # -- handlers --------------------------------------------------------------------------------

    def on_caption(self, handler: CaptionHandler) -> None:
        """Register the worker's handler for caption jobs (before :meth:`start`)."""

        async def caption_task(job: dict[str, Any]) -> None:
            try:
                parsed = CaptionJob.model_validate(job)
            except ValidationError:
                log.error("dropping malformed caption job")
                return
            await handler(parsed)

        self.captions.register_task(self._counted(caption_task), task_name=CAPTION_TASK)

    def on_delivery(self, handler: DeliveryHandler) -> None:
        """Register the bot side's handler for delivery notices (before :meth:`start`)."""

        async def delivery_task(notice: dict[str, Any]) -> None:
            try:
                parsed = DeliveryNotice.model_validate(notice)
            except ValidationError:
                log.error("dropping malformed delivery notice")
                return
            await handler(parsed)

        self.deliveries.register_task(self._counted(delivery_task), task_name=DELIVERY_TASK)

    def _counted(
        self, task: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> Callable[[dict[str, Any]], Awaitable[None]]:
        """memory:// only: count the handler's return, so :meth:`wait_idle` knows when all are done."""
        if self.durable:
            return task

        async def counted(payload: dict[str, Any]) -> None:
            try:
                await task(payload)
            finally:
                self._finished_one()

        counted.__name__ = getattr(task, "__name__", "task")
        return counted

    def _finished_one(self) -> None:
        self._unfinished -= 1
        if self._unfinished <= 0:
            self._unfinished = 0
            self._idle.set()

    # -- life cycle ------------------------------------------------------------------------------

    async def start(
        self,
        *,
        consume_captions: bool = False,
        consume_deliveries: bool = False,
        caption_concurrency: int = 32,
        delivery_concurrency: int = 16,
    ) -> None:
        """Connect, and consume the queues asked for. For memory:// the handlers of both queues
        must be registered in this process, and 'consuming' happens on every kick."""
        if self._started:
            return
        await self.captions.startup()
        await self.deliveries.startup()
        self._started = True
        if not self.durable:
            return
        for broker, name, wanted, n in (
            (self.captions, f"{self.options.prefix}:captions", consume_captions, caption_concurrency),
            (self.deliveries, f"{self.options.prefix}:deliveries", consume_deliveries, delivery_concurrency),
        ):
            if wanted:
                loop = ReceiverLoop(broker, name=name, concurrency=n)
                loop.start()
                self._loops.append(loop)

    async def stop_consuming(self, grace: float = 30.0) -> None:
        """Stop taking messages; handlers already running get ``grace`` seconds to finish."""
        loops, self._loops = self._loops, []
        await asyncio.gather(*(loop.stop(grace) for loop in loops))
        if not self.durable:
            await self.wait_idle(grace)

    async def stop(self, grace: float = 30.0) -> None:
        await self.stop_consuming(grace)
        if self._started:
            self._started = False
            for broker in (self.captions, self.deliveries):
                try:
                    await broker.shutdown()
                except Exception:
                    log.warning("broker shutdown failed", exc_info=True)

    async def wait_idle(self, grace: float = 30.0) -> None:
        """memory:// only: wait (up to ``grace`` s) until every kicked handler has returned."""
        if self.durable:
            return
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
        except TimeoutError:
            log.warning("%d in-process task(s) still running after %.0f s", self._unfinished, grace)

    # -- sending ---------------------------------------------------------------------------------

    async def enqueue_caption(self, job: CaptionJob, *, retry_for: float = 10.0) -> None:
        """Send a caption job, retrying for up to ``retry_for`` s; else :class:`QueueUnavailableError`."""
        await self._send(self._caption_kicker, job.model_dump(mode="json"), retry_for)

    async def enqueue_delivery(self, notice: DeliveryNotice, *, retry_for: float = 10.0) -> None:
        """Send a delivery notice, retrying for up to ``retry_for`` s; else :class:`QueueUnavailableError`."""
        await self._send(self._delivery_kicker, notice.model_dump(mode="json"), retry_for)

    async def _send(self, kicker: _PayloadKicker, payload: dict[str, Any], retry_for: float) -> None:
        """Kick with retries: a Redis blip delays the message instead of losing it."""
        deadline = time.monotonic() + retry_for
        delay = 0.05
        while True:
            if not self.durable:  # counted now: the in-process handler may run before kiq returns
                self._unfinished += 1
                self._idle.clear()
            try:
                await kicker.kiq(payload)
                return
            except Exception as exc:
                if not self.durable:
                    self._finished_one()
                if time.monotonic() + delay > deadline:
                    raise QueueUnavailableError(f"could not enqueue {kicker.task_name}: {type(exc).__name__}") from exc
                log.info("enqueue of %s failed (%s); retrying", kicker.task_name, type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def ping(self, within: float = 1.0) -> bool:
        """Is the transport reachable? (health checks)"""
        if self._redis is None:
            return True
        try:
            async with self._redis.client() as conn:
                return bool(await asyncio.wait_for(conn.ping(), within))
        except Exception:
            return False

    async def purge(self) -> None:
        """Delete this prefix's streams and group state (tests and benchmarks only)."""
        if self._redis is None:
            return
        async with self._redis.client() as conn:
            p = self.options.prefix
            await conn.delete(f"{p}:captions", f"{p}:deliveries")  # their consumer groups go with them
