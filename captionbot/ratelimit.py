"""Backpressure for incoming photos: a per-user token bucket, plus the numbers for friendly refusals.

Three limits guard the queue (checked by :class:`captionbot.service.CaptionService`):

1. **rate** - each user has a token bucket (``user_burst`` tokens, refilled at
   ``user_rate_per_minute``); a photo takes one token. Kept in memory per bot process: it smooths
   floods, it is not a security boundary, and a restart forgetting it is harmless;
2. **per-user pending** - at most ``user_max_pending`` of a user's requests queued or running
   (counted in the database, so it holds across processes);
3. **global pending** - at most ``queue_max_pending`` requests queued or running in total.

The two database checks count then insert, so concurrent senders can overshoot a bound by a few;
they are there to keep the queue bounded, not exact. Past any limit the user gets a refusal with a
"try again in N s" - never silence.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """Per-key token buckets. ``take(key)`` returns 0 when allowed, else the seconds to wait.

    Idle buckets refill to full and are then indistinguishable from new ones, so only the most
    recently used ``max_keys`` are kept (bounded memory under many users).
    """

    def __init__(
        self,
        *,
        rate_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError("rate_per_minute must be > 0 and burst >= 1")
        self.rate = rate_per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()
        self._lock = threading.Lock()  # cheap; lets the bucket be shared with threads too

    def _refill(self, key: Hashable, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            self._buckets.move_to_end(key)
        return bucket

    def take(self, key: Hashable, n: float = 1.0) -> float:
        """Take ``n`` tokens if there are enough: returns 0.0. Otherwise takes nothing and returns
        how many seconds until there will be."""
        with self._lock:
            bucket = self._refill(key, self.clock())
            if bucket.tokens >= n:
                bucket.tokens -= n
                return 0.0
            return (n - bucket.tokens) / self.rate

    def give_back(self, key: Hashable, n: float = 1.0) -> None:
        """Return tokens taken for a photo that was then refused for another reason."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.tokens = min(self.burst, bucket.tokens + n)


def retry_after_seconds(seconds: float, *, minimum: int = 1, maximum: int = 3600) -> int:
    """Whole seconds to tell a user (rounded up, clamped)."""
    return int(min(maximum, max(minimum, math.ceil(seconds))))


def estimate_queue_wait(excess: int, *, seconds_per_request: float, minimum: int = 5) -> int:
    """How long until ``excess`` pending requests have drained, for a queue that finishes one
    request every ``seconds_per_request`` (a moving average the service keeps)."""
    return retry_after_seconds(max(1, excess) * seconds_per_request, minimum=minimum, maximum=600)


__all__ = ["TokenBucket", "estimate_queue_wait", "retry_after_seconds"]
