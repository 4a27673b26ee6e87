"""The batch loop: one caption job at a time in, one engine call per micro-batch, results out.

Per job (:meth:`BatchLoop.handle`, one taskiq task per message, many in flight at once):

1. **claim** the request in the database (``queued -> running``, attempts + 1). A request that is
   finished, or running elsewhere, is skipped: duplicate messages are harmless;
2. read the photo from the ImageStore and decode it (a bad or missing photo fails this job at once:
   retrying can't change the bytes);
3. **caption** it: the job joins the :class:`~captioner.batcher.MicroBatcher`, which makes ONE
   ``engine.caption`` call per batch, in a thread (``asyncio.to_thread``) so the event loop keeps
   taking jobs. If a batched call raises, its photos are retried one by one, so one poison photo
   fails only its own job. Before each batch the served model may be swapped (see
   :mod:`captioner.worker.models`);
4. **read** the text in it (captioner.ocr), only when the caption model's text probe (or, for
   models without one, the OCR's own detector) says there is text: the photo is decoded again at
   full size for that, in a thread, one photo at a time. A failure here costs the text, never the
   caption;
5. **complete** the request (idempotent: the first completion wins) with the model version that
   produced the caption, then send a delivery notice. A caption error goes back to ``queued`` until
   ``max_attempts``, then ``failed``, and the failure is delivered too (the user is told).

Stopping: the batch in flight finishes; jobs still waiting for a batch are released (``running ->
queued`` without spending an attempt) and put back on the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot import texts
from captionbot.broker import Queues, QueueUnavailableError
from captionbot.images import ImageError, load_image
from captionbot.jobs import CaptionJob, DeliveryNotice, ErrorCode
from captionbot.observability import METRICS
from captionbot.storage import jobs
from captionbot.storage.imagestore import ImageStore
from captioner.batcher import BatcherStopped, MicroBatcher
from captioner.inference import CaptionResult
from captioner.ocr import TextReader, photo_text, plan, read_photo_text
from captioner.worker.models import LoadedModel, ModelManager
from captioner.worker.options import WorkerOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Captioned:
    result: CaptionResult
    model: LoadedModel
    batch_ms: int
    photo_text: str | None = None  # the text read in the photo, one line per line (never logged)


def attention_record(result: CaptionResult) -> dict[str, Any] | None:
    """The caption's per-word attention as stored with it (the web page draws it): each word's map
    scaled to its own peak and kept as whole numbers 0..255, a few kilobytes per caption."""
    att = result.attention  # (words, side, side) or None
    if att is None or not result.tokens or att.shape[0] != len(result.tokens):
        return None
    flat = att.reshape(att.shape[0], -1)  # (words, side * side)
    peak = np.maximum(flat.max(axis=1, keepdims=True), 1e-8)
    maps = np.rint(flat / peak * 255).astype(int).tolist()
    return {"side": int(att.shape[-1]), "words": list(result.tokens), "maps": maps}


class BatchLoop:
    """Takes caption jobs through claim -> decode -> micro-batch -> store -> notify.

    :meth:`start` before the queues deliver jobs to :meth:`handle`; :meth:`stop` hands the jobs
    still waiting for a batch back to the queue.
    """

    def __init__(
        self,
        *,
        options: WorkerOptions,
        session_factory: async_sessionmaker[AsyncSession],
        image_store: ImageStore,
        queues: Queues,
        models: ModelManager,
        clock: Callable[[], datetime],
    ) -> None:
        self.options = options
        self.session_factory = session_factory
        self.image_store = image_store
        self.queues = queues
        self.models = models
        self.clock = clock
        self.batcher: MicroBatcher[PILImage.Image, Captioned] = MicroBatcher(
            self._run_batch, max_size=options.batch_size, max_wait=options.batch_wait_ms / 1000
        )
        # A batch's results arrive together: store them in one transaction instead of one each.
        self.completer: MicroBatcher[tuple[jobs.ClaimedJob, Captioned], bool] = MicroBatcher(
            self.store_results, max_size=4 * options.batch_size, max_wait=0
        )
        self._stopping = False
        # Jobs being worked on at once: the batch running plus the next one filling. Later jobs wait
        # here *unclaimed*, so the DB still says "queued" and queue positions stay truthful.
        self._slots = asyncio.Semaphore(max(2, 2 * options.batch_size))
        #: Set by the worker once loaded (None: reading text is off or unavailable).
        self.reader: TextReader | None = None
        self._reading = asyncio.Semaphore(1)  # one photo read at a time: it takes a core of its own

    def start(self) -> None:
        self._stopping = False
        self.batcher.start()
        self.completer.start()

    async def stop(self) -> None:
        """Finish the batch in flight; release and put back the jobs still waiting for a batch."""
        self._stopping = True
        await self.batcher.stop()
        await self.completer.stop()

    # -- one job ---------------------------------------------------------------------------------

    async def handle(self, job: CaptionJob) -> None:
        """Process one caption job to completion or failure. Never raises for a job's own problems."""
        async with self._slots:
            await self._handle(job)

    async def _handle(self, job: CaptionJob) -> None:
        if self._stopping:
            await self._put_back(job)
            return
        now = self.clock()
        async with self.session_factory.begin() as session:
            claimed = await jobs.claim_job(
                session, public_id=job.request_id, stale_before=now - timedelta(seconds=self.options.stale_after_s)
            )
        if claimed is None:
            log.debug("request %s already taken or finished; skipping", job.request_id)
            return
        METRICS.queue_wait.observe(max(0.0, (now - claimed.created_at).total_seconds()))
        if claimed.attempts > self.options.max_attempts:
            # Its earlier attempts died with their worker (e.g. this photo crashes the process).
            await self._fail(claimed, ErrorCode.CAPTION_ERROR, retry=False)
            return
        try:
            data = await self.image_store.aread(claimed.image_sha256)
            # Decoded and squashed to the model's input size here, in this job's own thread, so the
            # batch's model call doesn't resize photos one after another (and big JPEGs decode faster).
            model = self.models.current
            size = model.engine.cfg.image_size if model else None
            image = await asyncio.to_thread(
                load_image,
                data,
                max_bytes=self.options.max_image_bytes,
                max_pixels=self.options.max_pixels,
                squash_to=size,
            )
        except FileNotFoundError:
            await self._fail(claimed, ErrorCode.MISSING_IMAGE, retry=False)
            return
        except ImageError as exc:
            await self._fail(claimed, ErrorCode.BAD_IMAGE, exc.user_message, retry=False)
            return
        try:
            captioned = await self.batcher.submit(image)
        except BatcherStopped:
            async with self.session_factory.begin() as session:
                await jobs.release_claim(session, request_id=claimed.id)
            await self._put_back(job)
            return
        except Exception as exc:
            log.warning("captioning request %s failed: %s", claimed.public_id, type(exc).__name__, exc_info=True)
            await self._fail(claimed, ErrorCode.CAPTION_ERROR, retry=True, job=job)
            return
        text = await self._read_text(claimed, data, captioned)
        if text is not None:
            captioned = replace(captioned, photo_text=text)
        await self._complete(claimed, captioned)

    async def _read_text(self, claimed: jobs.ClaimedJob, data: bytes, captioned: Captioned) -> str | None:
        """The text in the photo, or None (none found, reading off, or it failed: the caption goes
        out without it). The text itself is never logged."""
        reader = self.reader
        if reader is None:
            return None
        result, engine = captioned.result, captioned.model.engine
        # The caption model's text probe: True, False, or None (no probe for this model, or a
        # "perhaps" score): then the OCR's detector looks at a small copy first.
        likely = plan(engine.text_verdict(result), check_all=self.options.read_text_check_all)
        if likely is False:
            return None
        t0 = time.perf_counter()
        try:
            async with self._reading:
                lines = await asyncio.to_thread(self._read, reader, data, likely)
        except Exception as exc:
            METRICS.failures.labels(kind="read_text_error").inc()
            log.warning(
                "reading the text in request %s failed (%s); answering without it",
                claimed.public_id,
                type(exc).__name__,
            )
            return None
        METRICS.text_reads.observe(time.perf_counter() - t0)
        text = photo_text(lines)
        if text is not None:
            METRICS.photos_with_text.inc()
        return text

    def _read(self, reader: TextReader, data: bytes, likely: bool | None) -> list:
        image = load_image(data, max_bytes=self.options.max_image_bytes, max_pixels=self.options.max_pixels)
        return read_photo_text(reader, image, likely=likely)

    async def _complete(self, claimed: jobs.ClaimedJob, captioned: Captioned) -> None:
        stored: bool | BaseException
        try:
            stored = await self.completer.submit((claimed, captioned))
        except BatcherStopped:  # stopping: store this one on its own rather than lose it
            [stored] = await self.store_results([(claimed, captioned)], together=False)
        if isinstance(stored, BaseException):
            raise stored
        if stored:
            METRICS.captions.inc()
        # Notify even when another worker completed it first: delivery is claimed in the DB, so a
        # duplicate notice is harmless, and a missing one would leave the user waiting.
        await self._notify(claimed.public_id)

    async def store_results(
        self, items: list[tuple[jobs.ClaimedJob, Captioned]], *, together: bool = True
    ) -> list[bool | BaseException]:
        """Store captions (True: this call stored it; False: the request no longer takes one). One
        transaction for all; if that fails, one each, so one bad row can't sink the others."""

        async def store(session: AsyncSession, claimed: jobs.ClaimedJob, captioned: Captioned) -> bool:
            result = captioned.result
            caption = await jobs.complete_request(
                session,
                request_id=claimed.id,
                text=result.text,
                confidence=float(result.confidence),
                model_version_id=captioned.model.version_id,
                decoding={"beam_size": self.options.beam_size, "max_len": captioned.model.engine.cfg.max_len},
                latency_ms=captioned.batch_ms,
                band=result.band,
                hint=result.hint,
                labels=result.labels or None,
                attention=attention_record(result),
                photo_text=captioned.photo_text,
            )
            return caption is not None

        if together and len(items) > 1:
            try:
                async with self.session_factory.begin() as session:
                    return [await store(session, claimed, captioned) for claimed, captioned in items]
            except Exception:
                log.warning("storing %d captions together failed; storing them one by one", len(items), exc_info=True)
        out: list[bool | BaseException] = []
        for claimed, captioned in items:
            try:
                async with self.session_factory.begin() as session:
                    out.append(await store(session, claimed, captioned))
            except Exception as exc:
                out.append(exc)
        return out

    async def _fail(
        self,
        claimed: jobs.ClaimedJob,
        code: ErrorCode,
        user_message: str | None = None,
        *,
        retry: bool,
        job: CaptionJob | None = None,
    ) -> None:
        """``user_message``: what to tell the person, when more precise than the code's usual text."""
        METRICS.failures.labels(kind=code.value).inc()
        async with self.session_factory.begin() as session:
            again = await jobs.fail_request(
                session,
                request_id=claimed.id,
                code=code,
                message=user_message or texts.failure(code),
                max_attempts=self.options.max_attempts,
                permanent=not retry,
            )
        if again and job is not None:
            log.info("request %s: attempt %d failed (%s); retrying", claimed.public_id, claimed.attempts, code)
            await self._put_back(job)
        else:
            # Failed for good (or finished elsewhere meanwhile): either way the bot side has something
            # to send, and its delivery claim makes a surplus notice harmless.
            log.info("request %s failed (%s) after %d attempt(s)", claimed.public_id, code, claimed.attempts)
            await self._notify(claimed.public_id)

    async def _notify(self, public_id: str) -> None:
        try:
            await self.queues.enqueue_delivery(DeliveryNotice(request_id=public_id))
        except QueueUnavailableError:
            # The result is safe in the DB; the bot side's sweep delivers it later.
            METRICS.failures.labels(kind="enqueue_error").inc()
            log.warning("could not send the delivery notice for %s; the bot's sweep will pick it up", public_id)

    async def _put_back(self, job: CaptionJob) -> None:
        """Queue the job again. memory:// while stopping: the queue dies with this process, so the
        next start's recovery does it instead."""
        if self._stopping and not self.queues.durable:
            return
        try:
            await self.queues.enqueue_caption(job, retry_for=3.0)
        except QueueUnavailableError:
            log.warning("could not re-enqueue %s; the recovery sweep will", job.request_id)

    # -- one batch -------------------------------------------------------------------------------

    async def _run_batch(self, images: list[PILImage.Image]) -> list[Captioned | BaseException]:
        await self.models.reload_if_promoted_changed()
        model = self.models.current
        assert model is not None, "start() loads the model"
        beam = self.options.beam_size
        t0 = time.perf_counter()
        try:
            results: list[CaptionResult | BaseException] = list(
                await asyncio.to_thread(model.engine.caption, images, beam_size=beam, with_attention=True)
            )
        except Exception:
            if len(images) == 1:
                raise
            log.warning("batch of %d failed; captioning its photos one by one", len(images), exc_info=True)
            results = []
            for image in images:
                try:
                    [one] = await asyncio.to_thread(model.engine.caption, [image], beam_size=beam, with_attention=True)
                    results.append(one)
                except Exception as exc:
                    results.append(exc)
        elapsed = time.perf_counter() - t0
        METRICS.batch_size.observe(len(images))
        METRICS.caption_latency.observe(elapsed)
        ms = int(elapsed * 1000)
        return [r if isinstance(r, BaseException) else Captioned(r, model, ms) for r in results]
