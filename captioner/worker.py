"""The caption worker: claims jobs, captions them in micro-batches, stores results, notifies the bot.

Per job (:meth:`CaptionWorker.handle`, one taskiq task per message, many in flight at once):

1. **claim** the request in the database (``queued -> running``, attempts + 1). A request that is
   finished, or running elsewhere, is skipped: duplicate messages are harmless;
2. read the photo from the ImageStore and decode it (a bad or missing photo fails this job at once:
   retrying can't change the bytes);
3. **caption** it: the job joins the :class:`~captioner.batcher.MicroBatcher`, which makes ONE
   ``engine.caption`` call per batch, in a thread (``asyncio.to_thread``) so the event loop keeps
   taking jobs. If a batched call raises, its photos are retried one by one, so one poison photo
   fails only its own job;
4. **complete** the request (idempotent: the first completion wins) with the model version that
   produced the caption, then send a delivery notice. A caption error goes back to ``queued`` until
   ``max_attempts``, then ``failed``, and the failure is delivered too (the user is told).

Between batches the worker checks (every ``reload_check_s``) which ModelVersion is promoted in the
database; when it changes, the new checkpoint is loaded in a thread while the old engine keeps
serving, and swapped in before the next batch - no job is dropped.

Recovery: at start and then every ``stale_after_s`` the worker re-enqueues requests stuck
``queued``/``running`` for longer than ``stale_after_s`` (memory:// at start: all of them, since the
in-process queue died with the last process). Every worker may do this; the conditional UPDATE in
:func:`~captionbot.storage.requests.requeue_stale` lets one of them win each row.

Stopping: the batch in flight finishes; jobs still waiting for a batch are released (``running ->
queued`` without spending an attempt) and put back on the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import torch
from PIL import Image as PILImage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot import texts
from captionbot.broker import Queues, QueueUnavailableError
from captionbot.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageError, load_image
from captionbot.jobs import CaptionJob, DeliveryNotice, ErrorCode
from captionbot.observability import METRICS
from captionbot.storage import queries as q
from captionbot.storage import requests as rq
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import utcnow
from captioner.batcher import BatcherStopped, MicroBatcher
from captioner.checkpoint import DEFAULT_CHECKPOINT, file_sha256
from captioner.inference import CaptionEngine, CaptionResult

log = logging.getLogger(__name__)

EngineLoader = Callable[[Path], CaptionEngine]


@dataclass
class WorkerOptions:
    batch_size: int = 16
    batch_wait_ms: int = 50
    beam_size: int = 3
    max_attempts: int = 3
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: A running request untouched this long belongs to a dead worker (= the broker's reclaim time).
    stale_after_s: float = 60.0
    #: How often (at most) to look for a newly promoted model, between batches.
    reload_check_s: float = 5.0
    #: TEST ONLY: inside each batch, touch ``<gate>.waiting`` and wait until ``gate`` exists. Lets
    #: the fault tests kill a worker exactly mid-batch.
    batch_gate: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any, queues: Queues, **overrides: Any) -> WorkerOptions:
        values = {
            "batch_size": settings.batch_size,
            "batch_wait_ms": settings.batch_wait_ms,
            "beam_size": settings.beam_size,
            "max_attempts": settings.max_attempts,
            "max_image_bytes": settings.max_image_bytes,
            "max_pixels": settings.max_pixels,
            "stale_after_s": queues.reclaim_after_s,
        }
        values.update(overrides)
        return cls(**values)


class ModelFileChangedError(RuntimeError):
    """A promoted model's file is not the file that was registered."""


@dataclass(frozen=True)
class LoadedModel:
    engine: CaptionEngine
    version_id: int  # ModelVersion.id: every caption records it
    name: str


@dataclass(frozen=True)
class Captioned:
    result: CaptionResult
    model: LoadedModel
    batch_ms: int


class CaptionWorker:
    """Consumes the captions queue. Construct, then ``await start()`` before ``queues.start()``."""

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
        self.session_factory = session_factory
        self.image_store = image_store
        self.queues = queues
        self.model_path = Path(model_path) if model_path else DEFAULT_CHECKPOINT
        self._load_engine: EngineLoader = engine_loader or (
            lambda p: CaptionEngine.load(p, device=device, int8_decoder=int8_decoder)
        )
        self.clock = clock
        self.batcher: MicroBatcher[PILImage.Image, Captioned] = MicroBatcher(
            self._run_batch, max_size=options.batch_size, max_wait=options.batch_wait_ms / 1000
        )
        # A batch's results arrive together: store them in one transaction instead of one each.
        self.completer: MicroBatcher[tuple[rq.ClaimedJob, Captioned], bool] = MicroBatcher(
            self._store_results, max_size=4 * options.batch_size, max_wait=0
        )
        self.model: LoadedModel | None = None
        self._pending_load: asyncio.Task[LoadedModel] | None = None
        self._last_reload_check = 0.0
        self._failed_version_id: int | None = None
        self._pending_version_id: int | None = None
        self._stopping = False
        self._background: list[asyncio.Task[Any]] = []
        # Jobs being worked on at once: the batch running plus the next one filling. Later jobs wait
        # here *unclaimed*, so the DB still says "queued" and queue positions stay truthful.
        self._slots = asyncio.Semaphore(max(2, 2 * options.batch_size))
        queues.on_caption(self.handle)

    @property
    def model_version(self) -> str | None:
        return self.model.name if self.model else None

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the model (the promoted one if any), warm it up, start batching. Then start the
        queues, then :meth:`start_recovery`."""
        self.model = await self._initial_model()
        await asyncio.to_thread(self.model.engine.caption, [PILImage.new("RGB", (32, 32))], beam_size=1)
        log.info(
            "worker serving model %s (batch %d, wait %d ms, %s)",
            self.model.name,
            self.options.batch_size,
            self.options.batch_wait_ms,
            self.queues.describe(),
        )
        self._stopping = False
        self.batcher.start()
        self.completer.start()

    async def start_recovery(self) -> None:
        """Re-enqueue work left by dead processes now (memory://: all pending work), then every
        ``stale_after_s``. Call once the queues are started."""
        await self.recover_stale(everything=not self.queues.durable)
        self._background.append(asyncio.create_task(self._recovery_loop(), name="worker-recovery"))

    async def stop(self) -> None:
        """Finish the batch in flight; release and put back the jobs still waiting for a batch."""
        self._stopping = True
        await self.batcher.stop()
        await self.completer.stop()
        tasks = [*self._background, *([self._pending_load] if self._pending_load else [])]
        self._background, self._pending_load = [], None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

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
            claimed = await rq.claim_job(
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
            size = self.model.engine.cfg.image_size if self.model else None
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
                await rq.release_claim(session, request_id=claimed.id)
            await self._put_back(job)
            return
        except Exception as exc:
            log.warning("captioning request %s failed: %s", claimed.public_id, type(exc).__name__, exc_info=True)
            await self._fail(claimed, ErrorCode.CAPTION_ERROR, retry=True, job=job)
            return
        await self._complete(claimed, captioned)

    async def _complete(self, claimed: rq.ClaimedJob, captioned: Captioned) -> None:
        try:
            stored = await self.completer.submit((claimed, captioned))
        except BatcherStopped:  # stopping: store this one on its own rather than lose it
            [stored] = await self._store_results([(claimed, captioned)], together=False)
        if isinstance(stored, BaseException):
            raise stored
        if stored:
            METRICS.captions.inc()
        # Notify even when another worker completed it first: delivery is claimed in the DB, so a
        # duplicate notice is harmless, and a missing one would leave the user waiting.
        await self._notify(claimed.public_id)

    async def _store_results(
        self, items: list[tuple[rq.ClaimedJob, Captioned]], *, together: bool = True
    ) -> list[bool | BaseException]:
        """Store captions (True: this call stored it; False: the request no longer takes one). One
        transaction for all; if that fails, one each, so one bad row can't sink the others."""

        async def store(session: AsyncSession, claimed: rq.ClaimedJob, captioned: Captioned) -> bool:
            result = captioned.result
            caption = await q.complete_request(
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
        claimed: rq.ClaimedJob,
        code: ErrorCode,
        user_message: str | None = None,
        *,
        retry: bool,
        job: CaptionJob | None = None,
    ) -> None:
        """``user_message``: what to tell the person, when more precise than the code's usual text."""
        METRICS.failures.labels(kind=code.value).inc()
        async with self.session_factory.begin() as session:
            again = await q.fail_request(
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
        await self.reload_if_promoted_changed()
        model = self.model
        assert model is not None, "start() loads the model"
        if self.options.batch_gate is not None:
            await self._wait_at_gate(self.options.batch_gate)
        beam = self.options.beam_size
        t0 = time.perf_counter()
        try:
            results: list[CaptionResult | BaseException] = list(
                await asyncio.to_thread(model.engine.caption, images, beam_size=beam)
            )
        except Exception:
            if len(images) == 1:
                raise
            log.warning("batch of %d failed; captioning its photos one by one", len(images), exc_info=True)
            results = []
            for image in images:
                try:
                    [one] = await asyncio.to_thread(model.engine.caption, [image], beam_size=beam)
                    results.append(one)
                except Exception as exc:
                    results.append(exc)
        elapsed = time.perf_counter() - t0
        METRICS.batch_size.observe(len(images))
        METRICS.caption_latency.observe(elapsed)
        ms = int(elapsed * 1000)
        return [r if isinstance(r, BaseException) else Captioned(r, model, ms) for r in results]

    @staticmethod
    async def _wait_at_gate(gate: Path) -> None:
        """TEST ONLY (see WorkerOptions.batch_gate)."""

        def wait() -> None:
            if gate.exists():
                return
            gate.with_name(gate.name + ".waiting").touch()
            while not gate.exists():  # another process opens the gate: a file is all we share
                time.sleep(0.05)

        await asyncio.to_thread(wait)

    # -- models ----------------------------------------------------------------------------------

    async def _initial_model(self) -> LoadedModel:
        async with self.session_factory() as session:
            promoted = await q.current_model_version(session)
        if promoted is not None:
            try:
                return await self._load(promoted.id, promoted.name, Path(promoted.path), promoted.sha256)
            except Exception:
                log.exception(
                    "promoted model %s (%s) failed to load; using %s", promoted.name, promoted.path, self.model_path
                )
                self._failed_version_id = promoted.id
        engine = await asyncio.to_thread(self._load_engine, self.model_path)
        sha = await asyncio.to_thread(file_sha256, self.model_path)
        async with self.session_factory.begin() as session:
            version = await q.get_model_version(session, name=engine.version)
            if version is None or version.sha256 in (None, sha):
                version = await q.register_model_version(
                    session, name=engine.version, path=str(self.model_path), sha256=sha
                )
            else:  # same name, another file: keep both apart (captions must name what made them)
                version = await q.register_model_version(
                    session, name=f"{engine.version}-{sha[:12]}", path=str(self.model_path), sha256=sha
                )
        return LoadedModel(engine, version.id, version.name)

    async def _load(self, version_id: int, name: str, path: Path, sha256: str | None = None) -> LoadedModel:
        """Load a registered version; a file whose sha256 differs from the registered one (replaced or
        corrupted since it was promoted) is refused, so captions never name a model that didn't write them."""
        if sha256:
            actual = await asyncio.to_thread(file_sha256, path)
            if actual != sha256:
                raise ModelFileChangedError(
                    f"{path} has sha256 {actual[:12]}…, but {name} was registered as {sha256[:12]}…"
                )
        engine = await asyncio.to_thread(self._load_engine, path)
        return LoadedModel(engine, version_id, name)

    async def reload_if_promoted_changed(self, *, wait: bool = False, force_check: bool = False) -> bool:
        """Called before each batch: swap in a finished background load; start one (at most every
        ``reload_check_s``) when the promoted version changed. ``wait=True`` (tests, tools) checks
        now and waits for the load. Returns True when the serving model changed."""
        swapped = self._swap_if_loaded()
        now = time.monotonic()
        due = force_check or wait or now - self._last_reload_check >= self.options.reload_check_s
        if self._pending_load is None and due:
            self._last_reload_check = now
            try:
                async with self.session_factory() as session:
                    promoted = await q.current_model_version(session)
            except Exception:
                log.warning("could not check the promoted model", exc_info=True)
                promoted = None
            current = self.model.version_id if self.model else None
            if promoted is not None and promoted.id not in (current, self._failed_version_id):
                log.info("model %s was promoted; loading it in the background", promoted.name)
                self._pending_version_id = promoted.id
                self._pending_load = asyncio.create_task(
                    self._load(promoted.id, promoted.name, Path(promoted.path), promoted.sha256)
                )
        if wait and self._pending_load is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pending_load)
            swapped = self._swap_if_loaded() or swapped
        return swapped

    def _swap_if_loaded(self) -> bool:
        task = self._pending_load
        if task is None or not task.done():
            return False
        self._pending_load = None
        try:
            loaded = task.result()
        except Exception as exc:
            log.error(
                "loading the promoted model failed (%s: %s); keeping %s", type(exc).__name__, exc, self.model_version
            )
            self._failed_version_id = self._pending_version_id  # not again until another is promoted
            return False
        old, self.model = self.model_version, loaded
        METRICS.model_reloads.inc()
        log.info("now serving model %s (was %s)", loaded.name, old)
        return True

    # -- recovery --------------------------------------------------------------------------------

    async def recover_stale(self, *, everything: bool = False) -> int:
        """Re-enqueue requests stuck pending for longer than ``stale_after_s`` (or all of them)."""
        now = self.clock()
        cutoff = now + timedelta(seconds=1) if everything else now - timedelta(seconds=self.options.stale_after_s)
        async with self.session_factory.begin() as session:
            stale = await q.requeue_stale_requests(session, older_than=cutoff, max_attempts=self.options.max_attempts)
            digests = await rq.image_digests(session, image_ids=(r.image_id for r in stale))
        rows = [(r.public_id, digests[r.image_id]) for r in stale]
        for public_id, sha in rows:
            try:
                await self.queues.enqueue_caption(CaptionJob(request_id=public_id, image_sha256=sha), retry_for=3.0)
            except QueueUnavailableError:
                log.warning("recovery could not re-enqueue %s; next sweep will", public_id)
        if rows:
            log.info("re-enqueued %d stale request(s)", len(rows))
        return len(rows)

    async def _recovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.stale_after_s)
            try:
                await self.recover_stale()
            except Exception:
                log.warning("stale-request sweep failed", exc_info=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m captioner.worker``: the worker alone, configured like ``captionbot worker``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m captioner.worker", description=main.__doc__)
    parser.add_argument("--batch-gate", type=Path, default=None, help=argparse.SUPPRESS)  # tests only
    args = parser.parse_args(argv)

    from captionbot.settings import Settings
    from captionbot_cli.runtime import run_worker_blocking

    raise SystemExit(run_worker_blocking(Settings(), batch_gate=args.batch_gate))


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["Captioned", "CaptionWorker", "LoadedModel", "WorkerOptions", "main"]
