"""The worker's entry point: :class:`CaptionWorker` builds the three parts and runs their life cycle.

Life cycle (what ``captionbot worker`` / ``captionbot run`` do through
``captionbot_cli.runtime.Stack``): construct; ``await start()`` loads the model (the promoted one if
any), warms it up and starts batching; then the queues start delivering jobs to :meth:`handle`;
then ``await start_recovery()``. ``await stop()``: the batch in flight finishes, jobs still waiting
for a batch go back to the queue, the recovery sweeps and any background model load end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import torch
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.broker import Queues
from captionbot.jobs import CaptionJob
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import utcnow
from captioner.checkpoint import DEFAULT_CHECKPOINT
from captioner.inference import CaptionEngine
from captioner.ocr import TextReader
from captioner.worker.batch_loop import BatchLoop
from captioner.worker.models import LoadedModel, ModelManager
from captioner.worker.options import EngineLoader, WorkerOptions
from captioner.worker.recovery import StaleRecovery

log = logging.getLogger(__name__)


class CaptionWorker:
    """Consumes the captions queue. Construct, then ``await start()`` before ``queues.start()``.

    The parts: :attr:`models` (:class:`~captioner.worker.models.ModelManager`: what is served, hot
    swaps), :attr:`batch_loop` (:class:`~captioner.worker.batch_loop.BatchLoop`: jobs through
    batches into the database), :attr:`recovery` (:class:`~captioner.worker.recovery.StaleRecovery`).
    """

    def __init__(
        self,
        *,
        options: WorkerOptions,
        session_factory: async_sessionmaker[AsyncSession],
        image_store: ImageStore,
        queues: Queues,
        model_path: Path | None = None,
        device: str = "auto",
        engine_loader: EngineLoader | None = None,
        clock: Callable[[], datetime] = utcnow,
        int8_decoder: bool = True,
        torch_threads: int = 0,
    ) -> None:
        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.options = options
        self.queues = queues
        self.models = ModelManager(
            session_factory=session_factory,
            load_engine=engine_loader or (lambda p: CaptionEngine.load(p, device=device, int8_decoder=int8_decoder)),
            model_path=Path(model_path) if model_path else DEFAULT_CHECKPOINT,
            reload_check_s=options.reload_check_s,
        )
        self.batch_loop = BatchLoop(
            options=options,
            session_factory=session_factory,
            image_store=image_store,
            queues=queues,
            models=self.models,
            clock=clock,
        )
        self.recovery = StaleRecovery(options=options, session_factory=session_factory, queues=queues, clock=clock)
        queues.on_caption(self.handle)

    @property
    def model(self) -> LoadedModel | None:
        return self.models.current

    @property
    def model_version(self) -> str | None:
        return self.models.name

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the model (the promoted one if any), warm it up, start batching. Then start the
        queues, then :meth:`start_recovery`."""
        model = await self.models.start()
        if self.options.read_text:
            self.batch_loop.reader = await asyncio.to_thread(self._load_reader)
        log.info(
            "worker serving model %s (batch %d, wait %d ms, %s; reading text %s)",
            model.name,
            self.options.batch_size,
            self.options.batch_wait_ms,
            self.queues.describe(),
            "on" if self.batch_loop.reader is not None else "off",
        )
        self.batch_loop.start()

    def _load_reader(self) -> TextReader | None:
        """The OCR engine, or None (with one warning) when it can't run: captions go out without text."""
        try:
            return TextReader(threads=self.options.read_text_threads)
        except Exception as exc:  # not installed (OcrUnavailableError says what to do), or broken
            log.warning("reading text in photos is off: %s", exc)
            return None

    async def start_recovery(self) -> None:
        """Re-enqueue work left by dead processes now (memory://: all pending work), then every
        ``stale_after_s``. Call once the queues are started."""
        await self.recovery.start()

    async def stop(self) -> None:
        """Finish the batch in flight; release and put back the jobs still waiting for a batch."""
        await self.batch_loop.stop()
        await self.recovery.stop()
        await self.models.stop()

    # -- what the queues, tests and tools call ---------------------------------------------------

    async def handle(self, job: CaptionJob) -> None:
        """Process one caption job to completion or failure. Never raises for a job's own problems."""
        await self.batch_loop.handle(job)

    async def reload_if_promoted_changed(self, *, wait: bool = False, force_check: bool = False) -> bool:
        """See :meth:`ModelManager.reload_if_promoted_changed`: True when the serving model changed."""
        return await self.models.reload_if_promoted_changed(wait=wait, force_check=force_check)

    async def recover_stale(self, *, everything: bool = False) -> int:
        """Re-enqueue requests stuck pending for longer than ``stale_after_s`` (or all of them)."""
        return await self.recovery.recover_stale(everything=everything)
