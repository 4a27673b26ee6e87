"""Dynamic micro-batching: many concurrent callers, one batched call.

Each caller awaits :meth:`MicroBatcher.submit` with one item. A single background loop gathers
items until it has ``max_size`` of them or ``max_wait`` seconds have passed since the first one
arrived, then hands the whole list to ``run_batch`` (one call), and resolves every caller's future
with its own output. Batches run one at a time, so whatever ``run_batch`` does first (e.g. swapping
in a freshly loaded model) happens *between* batches.

Failure isolation:

* ``run_batch`` may return an exception instance in place of an output: only that caller sees it;
* if ``run_batch`` raises, every caller of that batch sees the exception, and no other batch does;
* the loop itself never dies from a batch's error.

This module has no torch in it: the model call lives in ``run_batch``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

RunBatch = Callable[[list[In]], Awaitable[Sequence[Out | BaseException]]]


class BatcherStopped(RuntimeError):
    """The batcher stopped before this item was put in a batch: nothing was done with it."""


@dataclass
class _Pending(Generic[In, Out]):
    item: In
    future: asyncio.Future[Out]


class MicroBatcher(Generic[In, Out]):
    """Collects items from concurrent callers into batches of at most ``max_size``.

    ``max_wait`` (seconds) bounds how long the first item of a batch waits for company; 0 means
    "take whatever is already waiting". Call :meth:`start` inside the event loop, :meth:`stop` at
    the end.
    """

    def __init__(self, run_batch: RunBatch[In, Out], *, max_size: int, max_wait: float) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        self._run_batch = run_batch
        self.max_size = max_size
        self.max_wait = max(0.0, max_wait)
        self._queue: asyncio.Queue[_Pending[In, Out]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._gathering: list[_Pending[In, Out]] = []  # taken off the queue, batch not yet started
        self._stopping = False
        self.batches_run = 0

    @property
    def pending(self) -> int:
        """Items waiting for a batch (not counting the batch now running)."""
        return self._queue.qsize()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="micro-batcher")

    async def submit(self, item: In) -> Out:
        """Put ``item`` in the next batch and wait for its output (or its exception)."""
        if self._stopping or self._task is None:
            raise BatcherStopped("batcher is not running")
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(item, future))
        return await future

    async def stop(self) -> None:
        """Stop: the batch now running finishes; items still waiting get :class:`BatcherStopped`."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            # The loop only gets cancelled while it waits for items, never inside run_batch
            # (see _loop): a batch that started always completes and resolves its futures.
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._abandon_waiting()

    def _abandon_waiting(self) -> None:
        waiting, self._gathering = self._gathering, []
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for pending in waiting:
            if not pending.future.done():
                pending.future.set_exception(BatcherStopped("batcher stopped before this item ran"))

    async def _gather(self) -> list[_Pending[In, Out]]:
        """Wait for the first item, then up to max_wait for more, up to max_size."""
        batch = self._gathering = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        self._gathering = []
        return batch

    async def _loop(self) -> None:
        while True:
            batch = await self._gather()
            # Shield the batch: stop() cancels the loop, but a batch in flight must finish so its
            # callers are answered (the model call runs in a thread and can't be interrupted anyway).
            run = asyncio.ensure_future(self._run(batch))
            try:
                await asyncio.shield(run)
            except asyncio.CancelledError:
                await run
                raise

    async def _run(self, batch: list[_Pending[In, Out]]) -> None:
        live = [p for p in batch if not p.future.done()]  # a caller may have been cancelled meanwhile
        if not live:
            return
        self.batches_run += 1
        try:
            outputs = await self._run_batch([p.item for p in live])
            if len(outputs) != len(live):
                raise RuntimeError(f"run_batch returned {len(outputs)} outputs for {len(live)} items")
        except Exception as exc:  # the whole batch failed: tell its callers, keep the loop alive
            log.warning("batch of %d failed: %s", len(live), type(exc).__name__, exc_info=True)
            for p in live:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        for p, out in zip(live, outputs, strict=True):
            if p.future.done():
                continue
            if isinstance(out, BaseException):
                p.future.set_exception(out)
            else:
                p.future.set_result(out)


__all__ = ["BatcherStopped", "MicroBatcher", "RunBatch"]
