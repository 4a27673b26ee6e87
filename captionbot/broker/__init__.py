"""Job queues on taskiq: ``captions`` (bot side -> workers) and ``deliveries`` (workers -> bot side).

The broker URL picks the transport; the code using :class:`Queues` is the same either way:

``memory://``
    taskiq's ``InMemoryBroker``: a kick runs the registered handler as a task in this same process.
    Nothing survives a restart, so everything pending is re-enqueued from the database at start
    (the worker's recovery sweep with no age limit). Only ``captionbot run`` (all in one process)
    can use it.
``redis://host:6379/0`` (or ``rediss://``)
    Redis Streams, one stream per queue, one consumer group per side
    (:class:`~captionbot.broker.redis_streams.ReclaimingRedisStreamBroker`). A message is
    acknowledged only after its handler returned, so a killed process's messages stay pending in
    the group and are re-claimed by another consumer once idle for ``reclaim_after`` seconds, even
    when no new message comes.

Options travel in the URL's query string and are removed before the URL reaches redis:

* ``queue_prefix`` (default ``captionbot``): stream names ``<prefix>:captions`` and
  ``<prefix>:deliveries``, so several deployments (or tests) can share one Redis;
* ``reclaim_after`` (seconds, default 60): idle time after which an unacknowledged message is
  handed to another consumer. Workers use the same number to decide a ``running`` request is
  stale, so it must exceed the slowest batch.

Messages are tiny (:mod:`captionbot.jobs`); the database is the source of truth and every handler is
idempotent, so a duplicate delivery of a message is harmless.

The modules: :mod:`~captionbot.broker.options` (the URL), :mod:`~captionbot.broker.queues` (the
facade), :mod:`~captionbot.broker.receiver_loop` (consuming one broker) and
:mod:`~captionbot.broker.redis_streams` (the Redis transport; imports redis, so only loaded for it).
"""

from __future__ import annotations

from captionbot.broker.options import BrokerOptions, parse_broker_url
from captionbot.broker.queues import CaptionHandler, DeliveryHandler, Queues, QueueUnavailableError

__all__ = [
    "BrokerOptions",
    "CaptionHandler",
    "DeliveryHandler",
    "QueueUnavailableError",
    "Queues",
    "parse_broker_url",
]
