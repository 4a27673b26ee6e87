"""Recovery: putting work left behind by dead processes back on the queue.

At start and then every ``stale_after_s`` the worker re-enqueues requests stuck
``queued``/``running`` for longer than ``stale_after_s`` (memory:// at start: all of them, since the
in-process queue died with the last process). Every worker may do this; the conditional UPDATE in
:func:`~captionbot.storage.jobs.requeue_stale_requests` lets one of them win each row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.broker import Queues, QueueUnavailableError
from captionbot.jobs import CaptionJob
from captionbot.observability import one_line
from captionbot.storage import jobs
from captioner.worker.options import WorkerOptions

log = logging.getLogger(__name__)


class StaleRecovery:
    """Re-enqueues stale requests: once at :meth:`start`, then every ``stale_after_s`` until :meth:`stop`."""

    def __init__(
        self,
        *,
        options: WorkerOptions,
        session_factory: async_sessionmaker[AsyncSession],
        queues: Queues,
        clock: Callable[[], datetime],
    ) -> None:
        self.options = options
        self.session_factory = session_factory
        self.queues = queues
        self.clock = clock
        self._sweeps: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Re-enqueue work left by dead processes now (memory://: all pending work), then every
        ``stale_after_s``. Call once the queues are started."""
        await self.recover_stale(everything=not self.queues.durable)
        self._sweeps = asyncio.create_task(self._sweep_forever(), name="worker-recovery")

    async def stop(self) -> None:
        task, self._sweeps = self._sweeps, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def recover_stale(self, *, everything: bool = False) -> int:
        """Re-enqueue requests stuck pending for longer than ``stale_after_s`` (or all of them)."""
        now = self.clock()
        cutoff = now + timedelta(seconds=1) if everything else now - timedelta(seconds=self.options.stale_after_s)
        async with self.session_factory.begin() as session:
            stale = await jobs.requeue_stale_requests(
                session, older_than=cutoff, max_attempts=self.options.max_attempts
            )
            digests = await jobs.image_digests(session, image_ids=(r.image_id for r in stale))
        rows = [(r.public_id, digests[r.image_id]) for r in stale]
        for public_id, sha in rows:
            try:
                await self.queues.enqueue_caption(CaptionJob(request_id=public_id, image_sha256=sha), retry_for=3.0)
            except QueueUnavailableError:
                log.warning("recovery could not re-enqueue %s; next sweep will", public_id)
        if rows:
            log.info("re-enqueued %d stale request(s)", len(rows))
        return len(rows)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.stale_after_s)
            try:
                await self.recover_stale()
            except Exception as exc:
                log.warning(
                    "stale-request sweep failed (%s); next try in %.0f s", one_line(exc), self.options.stale_after_s
                )
                log.debug("stale-request sweep failure", exc_info=True)
