"""Job queues on taskiq: ``captions`` (bot side -> workers) and ``deliveries`` (workers -> bot side).

The broker URL picks the transport; the code using :class:`Queues` is the same either way:

``memory://``
    taskiq's ``InMemoryBroker``: a kick runs the registered handler as a task in this same process.
    Nothing survives a restart, so everything pending is re-enqueued from the database at start
    (the worker's recovery sweep with no age limit). Only ``captionbot run`` (all in one process)
    can use it.
``redis://host:6379/0`` (or ``rediss://``)
    taskiq-redis's Redis Streams broker, one stream per queue, one consumer group per side.
    A message is acknowledged only after its handler returned, so a killed process's messages stay
    pending in the group and are re-claimed by another consumer once idle for ``reclaim_after``
    seconds (see :class:`ReclaimingRedisStreamBroker` for why taskiq-redis needs help there).

Options travel in the URL's query string and are removed before the URL reaches redis:

* ``queue_prefix`` (default ``captionbot``): stream names ``<prefix>:captions`` and
  ``<prefix>:deliveries``, so several deployments (or tests) can share one Redis;
* ``reclaim_after`` (seconds, default 60): idle time after which an unacknowledged message is
  handed to another consumer. Workers use the same number to decide a ``running`` request is
  stale, so it must exceed the slowest batch.

Messages are tiny (:mod:`captionbot.jobs`); the database is the source of truth and every handler is
idempotent, so a duplicate delivery of a message is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker
from taskiq.acks import AcknowledgeType
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver

from captionbot.jobs import CAPTION_TASK, DELIVERY_TASK, CaptionJob, DeliveryNotice

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "captionbot"
DEFAULT_RECLAIM_AFTER_S = 60.0
# Keep the streams bounded: acknowledged entries are never read again. Far above queue_max_pending.
STREAM_MAXLEN = 100_000

CaptionHandler = Callable[[CaptionJob], Awaitable[None]]
DeliveryHandler = Callable[[DeliveryNotice], Awaitable[None]]


class QueueUnavailableError(RuntimeError):
    """A message could not be sent before the deadline (broker down). The DB row is still there:
    the recovery sweeps will send it again later."""


@dataclass(frozen=True)
class BrokerOptions:
    """What :func:`parse_broker_url` took out of the URL."""

    scheme: str  # "memory" or "redis"
    url: str  # the URL for redis, without our own query options (may hold a password: don't log)
    prefix: str = DEFAULT_PREFIX
    reclaim_after_s: float = DEFAULT_RECLAIM_AFTER_S

    @property
    def durable(self) -> bool:
        """Do messages outlive this process?"""
        return self.scheme != "memory"


def parse_broker_url(url: str) -> BrokerOptions:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    prefix = query.pop("queue_prefix", DEFAULT_PREFIX) or DEFAULT_PREFIX
    reclaim = float(query.pop("reclaim_after", DEFAULT_RECLAIM_AFTER_S))
    if reclaim <= 0:
        raise ValueError("reclaim_after must be > 0 seconds")
    if scheme == "memory":
        return BrokerOptions("memory", url, prefix, reclaim)
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"unsupported broker URL scheme {scheme!r}: use memory:// or redis://host:port/db")
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    return BrokerOptions("redis", clean, prefix, reclaim)


# ------------------------------------------------------------------------------------ redis broker


def _redis_broker_class() -> type[AsyncBroker]:
    """Defined lazily: taskiq-redis is the optional ``redis`` extra."""
    from redis.asyncio import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from taskiq_redis import RedisStreamBroker

    transient = (RedisConnectionError, RedisTimeoutError, OSError)

    class ReclaimingRedisStreamBroker(RedisStreamBroker):
        """``RedisStreamBroker`` that re-claims a dead consumer's messages reliably.

        taskiq-redis 1.2's ``listen`` runs ``XAUTOCLAIM`` only right after a read that returned new
        messages, so on an idle queue a killed worker's unacknowledged jobs would wait for the next
        fresh job. Here the claim runs after every read (empty or not), at most every
        ``reclaim_interval`` seconds, for messages idle longer than ``idle_timeout`` ms. The listen
        loop also survives Redis going away (backs off and reconnects) and re-creates its consumer
        group if Redis lost it (restart without persistence). XAUTOCLAIM is atomic, so concurrent
        consumers never get the same message from one sweep.
        """

        def __init__(self, *args: Any, reclaim_interval: float = 5.0, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.reclaim_interval = reclaim_interval

        def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:  # noqa: A002
            async def _ack() -> None:
                for attempt in range(5):
                    try:
                        async with Redis(connection_pool=self.connection_pool) as conn:
                            await conn.xack(queue_name, self.consumer_group_name, id)
                        return
                    except transient:
                        await asyncio.sleep(0.2 * (attempt + 1))
                # Not fatal: the message gets re-delivered later and skipped (its request is finished).
                log.warning("could not acknowledge message %s on %s", id, queue_name)

            return _ack

        async def listen(self) -> AsyncGenerator[AckableMessage, None]:
            backoff = 0.1
            last_reclaim = 0.0
            down = False
            async with Redis(connection_pool=self.connection_pool) as conn:
                while True:
                    try:
                        fetched = await conn.xreadgroup(
                            self.consumer_group_name,
                            self.consumer_name,
                            {self.queue_name: ">"},
                            block=self.block,
                            noack=False,
                            count=self.count,
                        )
                        claimed: list[Any] = []
                        if time.monotonic() - last_reclaim >= self.reclaim_interval:
                            last_reclaim = time.monotonic()
                            result = await conn.xautoclaim(
                                self.queue_name,
                                self.consumer_group_name,
                                self.consumer_name,
                                min_idle_time=self.idle_timeout,
                                count=self.unacknowledged_batch_size,
                            )
                            claimed = [m for m in result[1] if m and m[1]]  # skip entries trimmed away
                    except transient as exc:
                        if not down:
                            log.warning("Redis unavailable on %s (%s); retrying", self.queue_name, type(exc).__name__)
                        down = True
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 2.0)
                        continue
                    except ResponseError as exc:
                        if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                            raise
                        # The stream or its group vanished (Redis restarted empty, or a purge).
                        log.warning("consumer group for %s is gone; re-creating it", self.queue_name)
                        await self._declare_consumer_group()
                        continue
                    if down:
                        log.info("Redis is back for %s", self.queue_name)
                    down, backoff = False, 0.1
                    for _stream, messages in fetched or []:
                        for msg_id, msg in messages:
                            yield AckableMessage(data=msg[b"data"], ack=self._ack_generator(msg_id, self.queue_name))
                    for msg_id, msg in claimed:
                        log.info("re-claimed unacknowledged message %s on %s", msg_id, self.queue_name)
                        yield AckableMessage(data=msg[b"data"], ack=self._ack_generator(msg_id, self.queue_name))

    return ReclaimingRedisStreamBroker


def _consumer_name() -> str:
    """Unique per process: a restarted process must not inherit (and ignore) its old pending list."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


# ----------------------------------------------------------------------------------------- queues


class _ReceiverLoop:
    """Runs a taskiq Receiver on one broker until stopped; restarts it (with backoff) on errors.

    Stopping sets the Receiver's finish event: it stops fetching and waits for running handlers,
    which then acknowledge normally. (Cancelling instead would make taskiq acknowledge the
    cancelled messages, i.e. drop them.)
    """

    def __init__(self, broker: AsyncBroker, *, concurrency: int) -> None:
        self.broker = broker
        self.concurrency = concurrency
        self.finish = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"receiver-{getattr(self.broker, 'queue_name', '')}")

    async def _run(self) -> None:
        backoff = 0.2
        while not self.finish.is_set():
            receiver = Receiver(
                broker=self.broker,
                executor=None,
                validate_params=True,
                max_async_tasks=self.concurrency,
                max_prefetch=0,
                run_startup=False,
                ack_type=AcknowledgeType.WHEN_EXECUTED,
            )
            try:
                await receiver.listen(self.finish)
                backoff = 0.2
            except Exception:
                log.warning("queue listener failed; restarting in %.1fs", backoff, exc_info=True)
                try:
                    await asyncio.wait_for(self.finish.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, 5.0)

    async def stop(self, grace: float) -> None:
        self.finish.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), grace)
        except TimeoutError:
            log.warning("queue listener did not stop within %.0fs; abandoning its handlers", grace)
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class Queues:
    """The two logical queues over one transport. Register handlers, then :meth:`start`.

    A process only consumes the queues it asks for in :meth:`start` (the worker: captions; the bot
    side: deliveries; ``captionbot run``: both); it can send to either.
    """

    def __init__(self, broker_url: str, *, caption_batch_hint: int = 16) -> None:
        self.options = parse_broker_url(broker_url)
        self.captions: AsyncBroker
        self.deliveries: AsyncBroker
        if self.options.scheme == "memory":
            # Runs each kicked task in this process, concurrently (the worker's batcher groups them).
            self.captions = InMemoryBroker(max_stored_results=1, propagate_exceptions=False)
            self.deliveries = InMemoryBroker(max_stored_results=1, propagate_exceptions=False)
        else:
            cls = _redis_broker_class()
            common: dict[str, Any] = {
                "url": self.options.url,
                "consumer_name": _consumer_name(),
                "consumer_id": "0",  # a group created after the first kick still sees that message
                "maxlen": STREAM_MAXLEN,
                "idle_timeout": int(self.options.reclaim_after_s * 1000),
                "reclaim_interval": max(0.5, min(5.0, self.options.reclaim_after_s / 4)),
                "max_connection_pool_size": 64,
                "client_name": self.options.prefix,  # lets an operator (or a test) spot our connections
            }
            p = self.options.prefix
            self.captions = cls(
                queue_name=f"{p}:captions",
                consumer_group_name=f"{p}:workers",
                xread_count=max(1, caption_batch_hint),
                **common,
            )
            self.deliveries = cls(
                queue_name=f"{p}:deliveries",
                consumer_group_name=f"{p}:bots",
                xread_count=16,
                **common,
            )
        self._caption_kicker = AsyncKicker(CAPTION_TASK, self.captions, {})
        self._delivery_kicker = AsyncKicker(DELIVERY_TASK, self.deliveries, {})
        self._loops: list[_ReceiverLoop] = []
        self._started = False

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

        self.captions.register_task(caption_task, task_name=CAPTION_TASK)

    def on_delivery(self, handler: DeliveryHandler) -> None:
        """Register the bot side's handler for delivery notices (before :meth:`start`)."""

        async def delivery_task(notice: dict[str, Any]) -> None:
            try:
                parsed = DeliveryNotice.model_validate(notice)
            except ValidationError:
                log.error("dropping malformed delivery notice")
                return
            await handler(parsed)

        self.deliveries.register_task(delivery_task, task_name=DELIVERY_TASK)

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
        for broker, wanted, n in (
            (self.captions, consume_captions, caption_concurrency),
            (self.deliveries, consume_deliveries, delivery_concurrency),
        ):
            if wanted:
                loop = _ReceiverLoop(broker, concurrency=n)
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
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            running = [
                t for b in (self.captions, self.deliveries) for t in getattr(b, "_running_tasks", ()) if not t.done()
            ]
            if not running:
                return
            await asyncio.wait(running, timeout=max(0.0, deadline - time.monotonic()))

    # -- sending ---------------------------------------------------------------------------------

    async def enqueue_caption(self, job: CaptionJob, *, retry_for: float = 10.0) -> None:
        """Send a caption job, retrying for up to ``retry_for`` s; else :class:`QueueUnavailableError`."""
        await self._send(self._caption_kicker, job.model_dump(mode="json"), retry_for)

    async def enqueue_delivery(self, notice: DeliveryNotice, *, retry_for: float = 10.0) -> None:
        """Send a delivery notice, retrying for up to ``retry_for`` s; else :class:`QueueUnavailableError`."""
        await self._send(self._delivery_kicker, notice.model_dump(mode="json"), retry_for)

    async def _send(self, kicker: AsyncKicker[Any, Any], payload: dict[str, Any], retry_for: float) -> None:
        """Kick with retries: a Redis blip delays the message instead of losing it."""
        deadline = time.monotonic() + retry_for
        delay = 0.05
        while True:
            try:
                await kicker.kiq(payload)
                return
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    raise QueueUnavailableError(f"could not enqueue {kicker.task_name}: {type(exc).__name__}") from exc
                log.info("enqueue of %s failed (%s); retrying", kicker.task_name, type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def ping(self, within: float = 1.0) -> bool:
        """Is the transport reachable? (health checks)"""
        if not self.durable:
            return True
        from redis.asyncio import Redis

        try:
            async with Redis(connection_pool=self.captions.connection_pool) as conn:  # type: ignore[attr-defined]
                return bool(await asyncio.wait_for(conn.ping(), within))
        except Exception:
            return False

    async def purge(self) -> None:
        """Delete this prefix's streams and group state (tests and benchmarks only)."""
        if not self.durable:
            return
        from redis.asyncio import Redis

        async with Redis(connection_pool=self.captions.connection_pool) as conn:  # type: ignore[attr-defined]
            p = self.options.prefix
            await conn.delete(f"{p}:captions", f"{p}:deliveries")
            keys = [k async for k in conn.scan_iter(match=f"autoclaim:{p}:*")]
            if keys:
                await conn.delete(*keys)


__all__ = [
    "BrokerOptions",
    "CaptionHandler",
    "DeliveryHandler",
    "QueueUnavailableError",
    "Queues",
    "parse_broker_url",
]
