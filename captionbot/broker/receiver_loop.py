"""Consuming one broker: a taskiq ``Receiver`` kept running until stopped."""

from __future__ import annotations

import asyncio
import logging

from taskiq import AsyncBroker
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from captionbot.observability import one_line

__all__ = ["ReceiverLoop"]

log = logging.getLogger(__name__)


class ReceiverLoop:
    """Runs a taskiq Receiver on one broker until stopped; restarts it (with backoff) on errors.

    Stopping sets the Receiver's finish event: it stops fetching and waits for running handlers,
    which then acknowledge normally. (Cancelling instead would make taskiq acknowledge the
    cancelled messages, i.e. drop them.)
    """

    def __init__(self, broker: AsyncBroker, *, name: str, concurrency: int) -> None:
        self.broker = broker
        self.name = name
        self.concurrency = concurrency
        self.finish = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"receiver-{self.name}")

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
            except Exception as exc:
                # One line per failure (a lost connection repeats until it is back); details at DEBUG.
                log.warning("queue listener failed (%s); restarting in %.1fs", one_line(exc), backoff)
                log.debug("queue listener failure", exc_info=True)
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
