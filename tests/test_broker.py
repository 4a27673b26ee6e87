"""captionbot.broker: the broker URL, and the Redis Streams broker against the real Redis.

The Redis tests each use their own stream names (a random prefix) and remove them at the end; they
are skipped, saying why, when Redis is not reachable at ``CAPTIONBOT_TEST_REDIS_URL``
(default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from captionbot.broker import BrokerOptions, Queues, parse_broker_url
from tests.tiny_model import REDIS_URL, purge_redis, redis_available, until

# ------------------------------------------------------------------------------------ broker URL


def test_parse_broker_url_takes_our_options_out_of_the_query():
    options = parse_broker_url("redis://:secret@host:6380/2?queue_prefix=blue&reclaim_after=7.5&socket_timeout=3")
    assert options == BrokerOptions("redis", "redis://:secret@host:6380/2?socket_timeout=3", "blue", 7.5)
    assert options.durable
    memory = parse_broker_url("memory://")
    assert (memory.scheme, memory.prefix, memory.reclaim_after_s, memory.durable) == (
        "memory",
        "captionbot",
        60.0,
        False,
    )


@pytest.mark.parametrize("url", ["amqp://host", "redis://host?reclaim_after=0"])
def test_parse_broker_url_refuses(url):
    with pytest.raises(ValueError):
        parse_broker_url(url)


def test_queues_on_redis_name_streams_and_groups_by_prefix_without_connecting():
    queues = Queues("redis://127.0.0.1:1/0?queue_prefix=p1&reclaim_after=2", caption_batch_hint=8)
    assert queues.describe() == "redis streams p1:captions / p1:deliveries"
    captions: Any = queues.captions
    deliveries: Any = queues.deliveries
    assert (captions.queue_name, captions.group_name) == ("p1:captions", "p1:workers")
    assert (deliveries.queue_name, deliveries.group_name) == ("p1:deliveries", "p1:bots")
    assert captions.consumer_name == deliveries.consumer_name  # one consumer name per process
    assert (captions.reclaim_after_ms, captions.reclaim_interval, captions.read_count) == (2000, 0.5, 8)


# ------------------------------------------------------------------------------ the Redis broker

PAYLOAD = b'{"task_name": "test", "args": []}'


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    if not redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    name = f"cbtest-broker-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        await purge_redis(name)


def make_broker(prefix: str, consumer: str, url: str = REDIS_URL, **overrides: Any) -> Any:
    from captionbot.broker.redis_streams import ReclaimingRedisStreamBroker

    options: dict[str, Any] = {
        "queue_name": f"{prefix}:jobs",
        "group_name": f"{prefix}:workers",
        "consumer_name": consumer,
        "reclaim_after_ms": 300,
        "reclaim_interval": 0.1,
        "read_block_ms": 100,
        "client_name": prefix,
    }
    options.update(overrides)
    return ReclaimingRedisStreamBroker(url, **options)


async def send(broker: Any, data: bytes = PAYLOAD) -> None:
    from taskiq import BrokerMessage

    await broker.kick(BrokerMessage(task_id=uuid.uuid4().hex, task_name="test", message=data, labels={}))


async def pending_count(broker: Any) -> int:
    async with broker.client() as conn:
        summary = await conn.xpending(broker.queue_name, broker.group_name)
    return int(summary["pending"])


@contextlib.asynccontextmanager
async def started(broker: Any) -> AsyncIterator[Any]:
    await broker.startup()
    try:
        yield broker
    finally:
        await broker.shutdown()


async def next_message(messages: AsyncGenerator[Any, None], within: float = 10.0) -> Any:
    return await asyncio.wait_for(anext(messages), within)


def log_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("captionbot.broker") and text in r.getMessage()]


@pytest.mark.redis
async def test_message_is_delivered_and_acknowledged(prefix):
    async with started(make_broker(prefix, "c1")) as broker:
        await send(broker)
        messages = broker.listen()
        try:
            message = await next_message(messages)
            assert message.data == PAYLOAD
            assert await pending_count(broker) == 1  # delivered, not yet acknowledged
            await message.ack()
            assert await pending_count(broker) == 0
        finally:
            await messages.aclose()


@pytest.mark.redis
async def test_a_dead_consumers_unacknowledged_message_is_reclaimed_on_an_idle_queue(prefix, caplog):
    caplog.set_level(logging.INFO, logger="captionbot.broker")
    # The first consumer takes the message and dies before acknowledging it.
    async with started(make_broker(prefix, "dies")) as dead:
        await send(dead)
        messages = dead.listen()
        assert (await next_message(messages)).data == PAYLOAD
        await messages.aclose()
    # Nothing new is ever sent: the survivor must still get the message, once it is idle for 300 ms.
    async with started(make_broker(prefix, "survives")) as survivor:
        messages = survivor.listen()
        try:
            message = await next_message(messages)
            assert message.data == PAYLOAD
            await message.ack()
            assert await pending_count(survivor) == 0
        finally:
            await messages.aclose()
    assert len(log_lines(caplog, "re-claimed unacknowledged message")) == 1


@pytest.mark.redis
async def test_a_lost_consumer_group_is_recreated(prefix, caplog):
    caplog.set_level(logging.INFO, logger="captionbot.broker")
    async with started(make_broker(prefix, "c1")) as broker:
        messages = broker.listen()
        try:
            async with broker.client() as conn:
                await conn.xgroup_destroy(broker.queue_name, broker.group_name)  # e.g. Redis restarted empty
            await send(broker)  # sent while the group is missing: the new group starts at 0, so it sees it
            message = await next_message(messages)
            assert message.data == PAYLOAD
            await message.ack()
            assert await pending_count(broker) == 0
        finally:
            await messages.aclose()
    assert log_lines(caplog, "is gone; re-creating it")


@pytest.mark.redis
async def test_a_deleted_stream_is_recreated_with_its_group(prefix):
    async with started(make_broker(prefix, "c1")) as broker:
        messages = broker.listen()
        try:
            first = asyncio.ensure_future(next_message(messages))
            async with broker.client() as conn:
                await conn.delete(broker.queue_name)  # a purge while the consumer waits on the stream
            await send(broker)
            assert (await first).data == PAYLOAD
        finally:
            await messages.aclose()


@pytest.mark.redis
async def test_listening_survives_redis_going_away_and_coming_back(prefix, caplog):
    caplog.set_level(logging.INFO, logger="captionbot.broker")
    async with TcpProxy(REDIS_URL) as proxy:
        listener = make_broker(prefix, "c1", url=proxy.url)
        sender = make_broker(prefix, "sender")  # straight to Redis
        async with started(listener), started(sender):
            messages = listener.listen()
            try:
                received = asyncio.ensure_future(next_message(messages, within=30))
                proxy.go_down()  # Redis is gone for the listener: its connections drop, new ones fail
                await until(lambda: _logged(caplog, "Redis unavailable"), within=10)
                await until(proxy.has_refused, within=10)  # it keeps trying
                await send(sender)
                proxy.come_back()
                message = await received
                assert message.data == PAYLOAD
                await message.ack()
                assert await pending_count(sender) == 0
            finally:
                await messages.aclose()
    assert len(log_lines(caplog, "Redis unavailable")) == 1  # one line while it is away, however long
    assert len(log_lines(caplog, "Redis is back")) == 1


@pytest.mark.redis
async def test_an_acknowledgement_is_retried_while_redis_is_away(prefix):
    async with TcpProxy(REDIS_URL) as proxy:
        broker = make_broker(prefix, "c1", url=proxy.url)
        async with started(broker):
            await send(broker)
            messages = broker.listen()
            try:
                message = await next_message(messages)
            finally:
                await messages.aclose()
            proxy.go_down()
            ack = asyncio.ensure_future(message.ack())
            await until(proxy.has_refused, within=10)  # it is retrying: a new connection was tried ...
            proxy.come_back()
            await asyncio.wait_for(ack, 10)
            assert await pending_count(broker) == 0  # ... and a later one went through


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return bool(log_lines(caplog, text))


class TcpProxy:
    """Forwards a local port to Redis. :meth:`go_down` cuts every connection and fails new ones (as
    a Redis that went away would), :meth:`come_back` forwards again."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.scheme, self.path = parts.scheme, parts.path
        self.server: asyncio.Server | None = None
        self.up = True
        self.refused = 0
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return urlunsplit((self.scheme, f"127.0.0.1:{port}", self.path, "", ""))

    async def __aenter__(self) -> TcpProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        self.go_down()

    async def has_refused(self) -> bool:
        return self.refused > 0

    def go_down(self) -> None:
        self.up = False
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()

    def come_back(self) -> None:
        self.up = True

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self.up:
            self.refused += 1
            client_writer.close()
            return
        redis_reader, redis_writer = await asyncio.open_connection(*self.target)
        self.writers |= {client_writer, redis_writer}
        await asyncio.gather(
            self._pipe(client_reader, redis_writer), self._pipe(redis_reader, client_writer), return_exceptions=True
        )
        for writer in (client_writer, redis_writer):
            self.writers.discard(writer)
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
