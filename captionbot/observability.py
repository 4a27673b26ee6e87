"""Prometheus metrics and the ``/metrics`` + ``/healthz`` HTTP endpoints.

The metric objects live at module level (prometheus-client's default registry), so any module can
``from captionbot.observability import METRICS`` and record without plumbing. The server is an
aiohttp app started by the runtime on ``settings.metrics_port`` (0 = off). ``/healthz`` answers
200 when the database and the broker are reachable and 503 otherwise, with a JSON body saying which,
plus the model version a worker is serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


@dataclass(frozen=True)
class _Metrics:
    queue_depth: Gauge = field(
        default_factory=lambda: Gauge("captionbot_queue_depth", "Caption requests queued or running (database).")
    )
    batch_size: Histogram = field(
        default_factory=lambda: Histogram(
            "captionbot_batch_size", "Photos per model call.", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
        )
    )
    queue_wait: Histogram = field(
        default_factory=lambda: Histogram(
            "captionbot_queue_wait_seconds",
            "From request creation to a worker claiming it.",
            buckets=_LATENCY_BUCKETS,
        )
    )
    caption_latency: Histogram = field(
        default_factory=lambda: Histogram(
            "captionbot_caption_latency_seconds", "Duration of one batched model call.", buckets=_LATENCY_BUCKETS
        )
    )
    request_latency: Histogram = field(
        default_factory=lambda: Histogram(
            "captionbot_request_latency_seconds",
            "From request creation to its reply being sent.",
            buckets=_LATENCY_BUCKETS,
        )
    )
    failures: Counter = field(
        default_factory=lambda: Counter(
            "captionbot_failures", "Failures by kind (bad_image, caption_error, delivery_error, ...).", ["kind"]
        )
    )
    captions: Counter = field(default_factory=lambda: Counter("captionbot_captions", "Captions produced."))
    deliveries: Counter = field(
        default_factory=lambda: Counter("captionbot_deliveries", "Replies sent, by outcome.", ["status"])
    )
    rejections: Counter = field(
        default_factory=lambda: Counter("captionbot_rejections", "Photos refused at intake, by reason.", ["reason"])
    )
    model_reloads: Counter = field(
        default_factory=lambda: Counter("captionbot_model_reloads", "Hot model swaps in workers.")
    )
    text_reads: Histogram = field(
        default_factory=lambda: Histogram(
            "captionbot_text_read_seconds",
            "Reading text in one photo (only photos the text check flagged).",
            buckets=_LATENCY_BUCKETS,
        )
    )
    photos_with_text: Counter = field(
        default_factory=lambda: Counter(
            "captionbot_photos_with_text", "Captions that came with text read in the photo."
        )
    )


METRICS = _Metrics()


def one_line(exc: BaseException) -> str:
    """An error as one log line: its type and the first line of its message. Enough for failures
    that repeat while a server is away (each retry logs once); the traceback goes to DEBUG. Only
    the first line: database errors list the statement's parameters (personal data) below it."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


Check = Callable[[], Awaitable[bool]]


class HealthServer:
    """``/metrics`` (Prometheus text) and ``/healthz`` (JSON) on one port.

    ``checks`` name async probes that must all return True for a 200 ("db", "broker"...);
    ``info`` adds plain values to the JSON (e.g. ``{"model_version": lambda: worker.model_version}``);
    ``queue_depth`` refreshes the queue-depth gauge at scrape time.
    """

    def __init__(
        self,
        port: int,
        *,
        host: str = "0.0.0.0",
        checks: dict[str, Check] | None = None,
        info: dict[str, Callable[[], Any]] | None = None,
        queue_depth: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.port = port
        self.host = host
        self.checks = checks or {}
        self.info = info or {}
        self.queue_depth = queue_depth
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def start(self) -> int:
        """Start serving; returns the bound port (useful with port 0 in tests)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        # The bound address (port 0 in tests picks a free one): the runner lists what its sites bound.
        addresses = self._runner.addresses
        port = addresses[0][1] if addresses else self.port
        log.info("metrics and health on :%d (/metrics, /healthz)", port)
        return int(port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        if self.queue_depth is not None:
            try:
                METRICS.queue_depth.set(await asyncio.wait_for(self.queue_depth(), 2.0))
            except Exception:
                log.debug("queue depth unavailable", exc_info=True)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        results = await asyncio.gather(*(self._probe(check) for check in self.checks.values()))
        checks = dict(zip(self.checks, results, strict=True))
        body: dict[str, Any] = {"status": "ok" if all(results) else "unavailable", "checks": checks}
        for name, get in self.info.items():
            try:
                body[name] = get()
            except Exception:
                body[name] = None
        return web.json_response(body, status=200 if all(results) else 503)

    @staticmethod
    async def _probe(check: Check) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), 2.0))
        except Exception:
            return False


__all__ = ["METRICS", "Check", "HealthServer"]
