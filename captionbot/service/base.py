"""The state every part of the service shares: settings, database, photo store, queues, clocks."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.broker import Queues
from captionbot.ratelimit import TokenBucket
from captionbot.settings import Settings
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import utcnow


@dataclass
class Throughput:
    """Recent completion times, for "try again in N s" estimates."""

    times: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    default_s: float = 1.0

    def record(self, t: float) -> None:
        self.times.append(t)

    def seconds_per_request(self) -> float:
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return self.default_s
        return (self.times[-1] - self.times[0]) / (len(self.times) - 1)


class ServiceBase:
    """Holds what the intake, delivery and people parts of :class:`CaptionService` share.

    ``clock`` (monotonic seconds) drives the rate limiter; ``now`` (aware UTC) the database
    timestamps - both injectable for tests.
    """

    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        image_store: ImageStore,
        queues: Queues,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        delivery_lease_s: float | None = None,
        sweep_interval_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.image_store = image_store
        self.queues = queues
        self.clock = clock
        self.now = now
        # The settings unless a test passes its own.
        self.delivery_lease_s = delivery_lease_s if delivery_lease_s is not None else settings.delivery_lease_s
        self.sweep_interval_s = sweep_interval_s if sweep_interval_s is not None else settings.delivery_sweep_s
        self.bucket = TokenBucket(rate_per_minute=settings.user_rate_per_minute, burst=settings.user_burst, clock=clock)
        self.throughput = Throughput()
        self._setup()

    def _setup(self) -> None:
        """A part's own state; a part that has some overrides this and calls ``super()._setup()``."""
