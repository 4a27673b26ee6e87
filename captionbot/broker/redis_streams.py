"""The ``redis://`` transport: a taskiq broker on one Redis stream and one consumer group.

It is built on taskiq's documented extension point for brokers (subclass :class:`taskiq.AsyncBroker`,
implement ``kick`` and ``listen``; ``listen`` yields :class:`taskiq.AckableMessage` whose ``ack`` the
receiver awaits once the handler returned) and on redis-py's public stream commands (``XADD``,
``XGROUP CREATE``, ``XREADGROUP``, ``XAUTOCLAIM``, ``XACK``), and on nothing private of either.

Why not taskiq-redis's ``RedisStreamBroker``: up to 1.2 its ``listen`` runs ``XAUTOCLAIM`` only right
after a read that returned new messages, so on an idle queue a killed worker's unacknowledged jobs
would wait for the next fresh job; and it gives up on the first connection error. Here:

* the claim runs after every read (empty or not), at most every ``reclaim_interval`` seconds, for
  messages idle longer than ``reclaim_after_ms``; ``XAUTOCLAIM`` is atomic, so concurrent consumers
  never get the same message from one sweep;
* the listen loop survives Redis going away: it backs off, reconnects, and logs one line when Redis
  goes and one when it is back;
* it re-creates its consumer group if Redis lost it (a restart without persistence, a purge);
* acknowledgements are retried on transient errors (a message whose ack is lost comes back after
  ``reclaim_after_ms`` and its handler, idempotent, skips it).

A message is the stream entry ``{"data": <taskiq message bytes>}``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage

__all__ = ["TRANSIENT_ERRORS", "ReclaimingRedisStreamBroker", "unique_consumer_name"]

log = logging.getLogger(__name__)

#: Errors after which the same command may well succeed a moment later (Redis restarting, a cut
#: connection, a network blip). redis-py's ConnectionError covers BusyLoadingError too.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)

DATA_FIELD = b"data"
ACK_ATTEMPTS = 5
_FIRST_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 2.0

#: One stream entry as redis-py returns it: (entry id, {field: value}).
StreamEntry = tuple[bytes, dict[bytes, bytes]]


def unique_consumer_name() -> str:
    """Unique per process: a restarted process must not inherit (and ignore) its old pending list."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ReclaimingRedisStreamBroker(AsyncBroker):
    """A taskiq broker on the Redis stream ``queue_name``, consuming as ``consumer_name`` in the group
    ``group_name``, that re-claims a dead consumer's messages even on an idle queue (see the module).

    ``group_start_id`` is where a newly created group starts reading: ``"0"`` (the default) so that a
    group created after the first message was sent still gets that message.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_name: str,
        group_name: str,
        consumer_name: str,
        group_start_id: str = "0",
        maxlen: int | None = None,
        reclaim_after_ms: int = 600_000,
        reclaim_interval: float = 5.0,
        read_block_ms: int = 2000,
        read_count: int = 100,
        claim_count: int = 100,
        max_connections: int | None = None,
        client_name: str | None = None,
    ) -> None:
        super().__init__()
        self.queue_name = queue_name
        self.group_name = group_name
        self.consumer_name = consumer_name
        self.group_start_id = group_start_id
        self.maxlen = maxlen
        self.reclaim_after_ms = reclaim_after_ms
        self.reclaim_interval = reclaim_interval
        self.read_block_ms = read_block_ms
        self.read_count = read_count
        self.claim_count = claim_count
        # client_name lets an operator (or a test) spot this broker's connections in CLIENT LIST.
        self.connection_pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, client_name=client_name
        )

    def client(self) -> Redis:
        """A Redis client on this broker's connection pool; use it as ``async with broker.client() as r``."""
        return Redis(connection_pool=self.connection_pool)

    # -- taskiq's broker interface ---------------------------------------------------------------

    async def startup(self) -> None:
        await super().startup()
        async with self.client() as conn:
            await self._create_group(conn)

    async def shutdown(self) -> None:
        await super().shutdown()
        await self.connection_pool.disconnect()

    async def kick(self, message: BrokerMessage) -> None:
        async with self.client() as conn:
            await conn.xadd(self.queue_name, {DATA_FIELD: message.message}, maxlen=self.maxlen, approximate=True)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """New messages for this consumer, then (every ``reclaim_interval`` s) those re-claimed from
        consumers that left them unacknowledged for ``reclaim_after_ms``. Runs until cancelled."""
        outage = _Outage(self.queue_name)
        group_missing = False
        next_claim = 0.0
        async with self.client() as conn:
            while True:
                try:
                    if group_missing:
                        await self._create_group(conn)
                        group_missing = False
                    fresh = await self._read_new(conn)
                    claimed: list[StreamEntry] = []
                    if time.monotonic() >= next_claim:
                        next_claim = time.monotonic() + self.reclaim_interval
                        claimed = await self._claim_idle(conn)
                except TRANSIENT_ERRORS as exc:
                    await outage.wait(exc)
                    continue
                except ResponseError as exc:
                    if not _group_is_gone(exc):
                        raise
                    log.warning("consumer group for %s is gone; re-creating it", self.queue_name)
                    group_missing = True
                    continue
                outage.over()
                for entry_id, fields in fresh:
                    if (message := await self._ackable(entry_id, fields)) is not None:
                        yield message
                for entry_id, fields in claimed:
                    log.info("re-claimed unacknowledged message %s on %s", entry_id, self.queue_name)
                    if (message := await self._ackable(entry_id, fields)) is not None:
                        yield message

    # -- the stream commands ---------------------------------------------------------------------

    async def _create_group(self, conn: Redis) -> None:
        """XGROUP CREATE (and the stream with it); a group that exists already is fine."""
        try:
            await conn.xgroup_create(self.queue_name, self.group_name, id=self.group_start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return
            log.warning("could not create consumer group %s on %s: %s", self.group_name, self.queue_name, exc)

    async def _read_new(self, conn: Redis) -> list[StreamEntry]:
        reply = await conn.xreadgroup(
            self.group_name,
            self.consumer_name,
            {self.queue_name: ">"},
            count=self.read_count,
            block=self.read_block_ms,
            noack=False,
        )
        return _entries_of_read(reply)

    async def _claim_idle(self, conn: Redis) -> list[StreamEntry]:
        reply = await conn.xautoclaim(
            self.queue_name,
            self.group_name,
            self.consumer_name,
            min_idle_time=self.reclaim_after_ms,
            count=self.claim_count,
        )
        # [next start id, claimed entries, (Redis >= 7) ids of entries deleted from the stream meanwhile]
        return _entries(reply[1]) if isinstance(reply, list) and len(reply) > 1 else []

    async def _ackable(self, entry_id: bytes, fields: dict[bytes, bytes]) -> AckableMessage | None:
        """The entry as taskiq's message; None (and acknowledged) for an entry ``kick`` did not write."""
        ack = self._acknowledger(entry_id)
        data = fields.get(DATA_FIELD)
        if data is None:
            log.warning("dropping message %s on %s: it has no %r field", entry_id, self.queue_name, DATA_FIELD)
            await ack()
            return None
        return AckableMessage(data=data, ack=ack)

    def _acknowledger(self, entry_id: bytes) -> Callable[[], Awaitable[None]]:
        """XACK for one entry, retried on transient errors."""

        async def ack() -> None:
            for attempt in range(ACK_ATTEMPTS):
                try:
                    async with self.client() as conn:
                        await conn.xack(self.queue_name, self.group_name, entry_id)
                    return
                except TRANSIENT_ERRORS:
                    await asyncio.sleep(0.2 * (attempt + 1))
            # Not fatal: the message gets re-delivered later and skipped (its request is finished).
            log.warning("could not acknowledge message %s on %s", entry_id, self.queue_name)

        return ack


class _Outage:
    """The listen loop's view of Redis being away: one log line when it goes, one when it is back,
    and an exponential backoff between the attempts in between."""

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self.down = False
        self.backoff = _FIRST_BACKOFF_S

    async def wait(self, exc: BaseException) -> None:
        if not self.down:
            log.warning("Redis unavailable on %s (%s); retrying", self.queue_name, type(exc).__name__)
            self.down = True
        await asyncio.sleep(self.backoff)
        self.backoff = min(self.backoff * 2, _MAX_BACKOFF_S)

    def over(self) -> None:
        if self.down:
            log.info("Redis is back for %s", self.queue_name)
        self.down, self.backoff = False, _FIRST_BACKOFF_S


def _group_is_gone(exc: ResponseError) -> bool:
    """NOGROUP: the group (or the whole stream) no longer exists; UNBLOCKED: the stream was deleted
    while XREADGROUP was waiting on it."""
    text = str(exc)
    return "NOGROUP" in text or "UNBLOCKED" in text


def _entries_of_read(reply: object) -> list[StreamEntry]:
    """XREADGROUP's reply, ``[[stream, entries], ...]`` (empty or None when the block timed out)."""
    if not isinstance(reply, list):
        return []
    return [
        entry
        for stream in reply
        if isinstance(stream, list | tuple) and len(stream) == 2
        for entry in _entries(stream[1])
    ]


def _entries(raw: object) -> list[StreamEntry]:
    """A list of stream entries as redis-py parses them, ``[(id, {field: value}), ...]``, leaving out
    the ``(None, None)`` that XAUTOCLAIM gives (Redis 6.2) for an entry trimmed from the stream."""
    if not isinstance(raw, list):
        return []
    return [
        (item[0], item[1])
        for item in raw
        if isinstance(item, list | tuple)
        and len(item) >= 2
        and item[0] is not None
        and isinstance(item[1], dict)
        and item[1]
    ]
