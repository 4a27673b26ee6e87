"""The worker with the tiny model, on SQLite + memory:// and on PostgreSQL + Redis Streams.

submit -> claim -> micro-batch -> caption -> store -> delivery notice -> handler called once.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from captionbot.jobs import CaptionJob
from captionbot.service import Submitted
from captionbot.storage import jobs, model_versions, users
from captionbot.storage.models import Caption, CaptionRequest, ModelVersion, RequestStatus
from captioner.inference import CaptionEngine
from tests.tiny_model import (
    DeliveryRecorder,
    make_settings,
    make_tiny_checkpoint,
    open_pipeline,
    png_bytes,
    submit,
    until,
)

pytestmark = pytest.mark.timeout(60)


class SpyEngine:
    """Wraps a real engine: records batch sizes; raises for magenta photos (a "poison" image)."""

    def __init__(self, engine: CaptionEngine) -> None:
        self.engine = engine
        self.batches: list[int] = []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def caption(self, images, **kw):
        self.batches.append(len(images))
        if any(im.getpixel((0, 0)) == (255, 0, 255) for im in images):
            raise RuntimeError("poison photo")
        return self.engine.caption(images, **kw)


def spy_loader(spies: list[SpyEngine]):
    def load(path: Path) -> SpyEngine:
        spy = SpyEngine(CaptionEngine.load(path, device="cpu"))
        spies.append(spy)
        return spy

    return load


async def request_row(stack, request_id: str) -> CaptionRequest:
    async with stack.session_factory() as session:
        return await jobs.get_request_by_public_id(session, public_id=request_id)


async def is_delivered(stack, request_id: str) -> bool:
    return (await request_row(stack, request_id)).status == RequestStatus.DELIVERED


async def test_photo_is_captioned_and_delivered_once(backend, tmp_path):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        sub = await submit(stack, reply_context={"thread": 9})
        assert isinstance(sub, Submitted) and sub.queue_position >= 0
        await rec.wait_for(1)
        await asyncio.sleep(0.2)  # a duplicate, if any, would arrive now
        [d] = rec.deliveries
        assert rec.calls[sub.request_id] == 1
        assert d.request_id == sub.request_id and d.status == "done" and d.ok
        assert d.text and d.caption_id and 0 <= d.confidence <= 1
        assert d.model_version == "tiny-v1"
        assert d.platform_chat_id == "42" and d.platform_user_id == "7" and d.source_message_id == "100"
        assert d.reply_context == {"thread": 9}
        await until(lambda: is_delivered(stack, sub.request_id))
        row = await request_row(stack, sub.request_id)
        assert row.reply_message_id == "reply-1" and row.attempts == 1
        async with stack.session_factory() as session:
            caption = await session.scalar(select(Caption).where(Caption.request_id == row.id))
            version = await session.get(ModelVersion, caption.model_version_id)
        assert version.name == "tiny-v1"


async def test_concurrent_jobs_share_batches(backend, tmp_path):
    spies: list[SpyEngine] = []
    rec = DeliveryRecorder()
    settings = make_settings(tmp_path, backend, batch_size=4, batch_wait_ms=300, user_burst=20, user_max_pending=20)
    async with open_pipeline(settings, recorder=rec, engine_loader=spy_loader(spies)) as stack:
        spy = spies[-1]
        spy.batches.clear()  # forget the warm-up call
        colors = ["red", "green", "blue", "yellow", "white", "black", "orange", "purple"]
        subs = await asyncio.gather(*(submit(stack, png_bytes(c)) for c in colors))
        await rec.wait_for(len(colors))
        assert {d.request_id for d in rec.deliveries} == {s.request_id for s in subs}
        assert max(spy.batches) > 1, spy.batches  # micro-batching happened
        assert all(n <= 4 for n in spy.batches)
        assert sum(spy.batches) == len(colors)  # one engine call per batch, nothing captioned twice


async def test_poison_photo_fails_after_max_attempts_and_the_user_is_told(backend, tmp_path):
    spies: list[SpyEngine] = []
    rec = DeliveryRecorder()
    settings = make_settings(tmp_path, backend, max_attempts=2, batch_wait_ms=200)
    async with open_pipeline(settings, recorder=rec, engine_loader=spy_loader(spies)) as stack:
        bad, good = await asyncio.gather(
            submit(stack, png_bytes("magenta")), submit(stack, png_bytes("green"), user="8")
        )
        await rec.wait_for(2)
        by_id = {d.request_id: d for d in rec.deliveries}
        assert by_id[good.request_id].status == "done"  # shared a batch with the poison, still fine
        failed = by_id[bad.request_id]
        assert failed.status == "failed" and failed.failure_code == "caption_error"
        assert failed.failure_message and "try again" in failed.failure_message
        assert failed.text is None and failed.caption_id is None
        await until(lambda: is_delivered(stack, bad.request_id))
        assert (await request_row(stack, bad.request_id)).attempts == 2
        assert rec.calls[bad.request_id] == 1


async def test_undecodable_photo_fails_at_once_with_its_own_message(backend, tmp_path):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        # Bypass intake validation: a file that went bad in storage.
        data = png_bytes("red")[:60]
        sha = stack.image_store.put(data)
        async with stack.session_factory.begin() as session:
            user = await users.get_or_create_user(session, platform="telegram", platform_user_id="9")
            chat = await users.get_or_create_chat(session, platform="telegram", platform_chat_id="9", kind="private")
            image = await jobs.add_image(session, sha256=sha, size_bytes=len(data), width=1, height=1, mime="image/png")
            req = await jobs.create_request(
                session, platform="telegram", chat_id=chat.id, requester_id=user.id, image_id=image.id
            )
        await stack.queues.enqueue_caption(CaptionJob(request_id=req.public_id, image_sha256=sha))
        await rec.wait_for(1)
        [d] = rec.deliveries
        assert d.status == "failed" and d.failure_code == "bad_image"
        assert "damaged" in d.failure_message or "image" in d.failure_message
        assert (await request_row(stack, req.public_id)).attempts == 1  # no pointless retries


async def test_duplicate_job_messages_caption_once(backend, tmp_path):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        sub = await submit(stack, png_bytes("red"))
        job = CaptionJob(request_id=sub.request_id, image_sha256=hashlib.sha256(png_bytes("red")).hexdigest())
        await asyncio.gather(*(stack.queues.enqueue_caption(job) for _ in range(3)))
        await rec.wait_for(1)
        await until(lambda: _no_pending(stack))
        await asyncio.sleep(0.3)  # give stray duplicates time to (not) show up
        assert rec.calls[sub.request_id] == 1
        row = await request_row(stack, sub.request_id)
        async with stack.session_factory() as session:
            n = await session.scalar(select(func.count()).select_from(Caption).where(Caption.request_id == row.id))
        assert n == 1 and row.attempts == 1


async def _no_pending(stack) -> bool:
    async with stack.session_factory() as session:
        return await jobs.count_pending(session) == 0


async def test_hot_reload_switches_models_between_batches(backend, tmp_path):
    v1 = make_tiny_checkpoint(tmp_path / "v1.pt", version="tiny-v1", seed=0)
    v2 = make_tiny_checkpoint(tmp_path / "v2.pt", version="tiny-v2", seed=1)
    rec = DeliveryRecorder()
    settings = make_settings(tmp_path, backend, model_path=v1)
    async with open_pipeline(settings, recorder=rec) as stack:
        worker = stack.worker
        first = await submit(stack, png_bytes("red"))
        await rec.wait_for(1)
        async with stack.session_factory.begin() as session:
            version = await model_versions.register_model_version(session, name="tiny-v2", path=str(v2))
            await model_versions.promote_model_version(session, model_version_id=version.id)
        assert await worker.reload_if_promoted_changed(wait=True)
        assert worker.model_version == "tiny-v2"
        second = await submit(stack, png_bytes("blue"))
        await rec.wait_for(2)
        by_id = {d.request_id: d for d in rec.deliveries}
        assert by_id[first.request_id].model_version == "tiny-v1"
        assert by_id[second.request_id].model_version == "tiny-v2"
        async with stack.session_factory() as session:
            rows = await session.execute(
                select(CaptionRequest.public_id, ModelVersion.name)
                .join(Caption, Caption.request_id == CaptionRequest.id)
                .join(ModelVersion, ModelVersion.id == Caption.model_version_id)
            )
            names = {public_id: name for public_id, name in rows}
        assert names == {first.request_id: "tiny-v1", second.request_id: "tiny-v2"}


async def test_a_promoted_model_whose_file_changed_is_refused(backend, tmp_path):
    from captioner.checkpoint import file_sha256

    v1 = make_tiny_checkpoint(tmp_path / "v1.pt", version="tiny-v1", seed=0)
    v2 = make_tiny_checkpoint(tmp_path / "v2.pt", version="tiny-v2", seed=1)
    registered = file_sha256(v2)
    make_tiny_checkpoint(tmp_path / "v2.pt", version="tiny-v3", seed=2)  # the file is replaced after registering
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend, model_path=v1), recorder=rec) as stack:
        async with stack.session_factory.begin() as session:
            version = await model_versions.register_model_version(
                session, name="tiny-v2", path=str(v2), sha256=registered
            )
            await model_versions.promote_model_version(session, model_version_id=version.id)
        assert not await stack.worker.reload_if_promoted_changed(wait=True)
        assert stack.worker.model_version == "tiny-v1"  # keeps serving what it had
        await stack.worker.reload_if_promoted_changed(force_check=True)
        assert not stack.worker.models.loading, "a refused version is not loaded again and again"
        sub = await submit(stack, png_bytes("red"))
        await rec.wait_for(1)
        assert rec.deliveries[0].request_id == sub.request_id and rec.deliveries[0].model_version == "tiny-v1"


async def test_the_model_that_serves_is_recorded_as_promoted(backend, tmp_path):
    """With nothing promoted, the worker's own model answers every caption: the record says so."""
    async with open_pipeline(make_settings(tmp_path, backend), recorder=DeliveryRecorder()) as stack:
        async with stack.session_factory() as session:
            serving = await model_versions.current_model_version(session)
        assert serving is not None and serving.name == stack.worker.model_version
        assert serving.promoted_at is not None
    async with open_pipeline(make_settings(tmp_path, backend), recorder=DeliveryRecorder()) as stack:
        async with stack.session_factory() as session:
            again = await model_versions.current_model_version(session)
        assert again is not None and again.id == serving.id
        assert again.promoted_at == serving.promoted_at  # serving since the first start, not the last


async def test_a_worker_restart_recovers_requests_left_queued(backend, tmp_path):
    """Requests stored while no worker consumed them (e.g. the memory queue died with its process)
    are found and captioned by the next worker's start-up recovery."""
    rec = DeliveryRecorder()
    settings = make_settings(tmp_path, backend)
    async with open_pipeline(settings, recorder=rec) as stack:
        await stack.queues.stop_consuming()  # nobody takes jobs now (memory: they are dropped)
        await stack.worker.stop()
        stack.worker = None
        sub = await submit(stack)
        assert (await request_row(stack, sub.request_id)).status == RequestStatus.QUEUED
    async with open_pipeline(settings, recorder=rec, worker_overrides={"stale_after_s": 0.5}) as stack2:
        await rec.wait_for(1, within=20)
        assert rec.calls[sub.request_id] == 1
        await until(lambda: is_delivered(stack2, sub.request_id))


async def test_a_batch_of_captions_is_stored_together_and_a_bad_one_fails_alone(backend, tmp_path):
    from captioner.inference import CaptionResult
    from captioner.worker import Captioned

    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        worker = stack.worker
        subs = [await submit(stack, png_bytes(c)) for c in ("red", "green", "blue")]
        await rec.wait_for(3)
        async with stack.session_factory.begin() as session:  # three requests running again, results to store
            rows = [await jobs.get_request_by_public_id(session, public_id=s.request_id) for s in subs]
            for row in rows:
                row.status, row.delivered_at = RequestStatus.RUNNING, None
                await session.execute(Caption.__table__.delete().where(Caption.request_id == row.id))
        from captionbot.storage.jobs import ClaimedJob

        claimed = [ClaimedJob(r.id, r.public_id, "0" * 64, 1, r.created_at) for r in rows]

        def result(text):
            return Captioned(CaptionResult(text, ["x"], [0.0], 0.5), worker.model, 5)

        commits = []
        from sqlalchemy import event

        sync_engine = stack.session_factory.kw["bind"].sync_engine

        def on_commit(conn) -> None:
            commits.append(1)

        event.listen(sync_engine, "commit", on_commit)
        try:
            batch = [result("one"), result("two"), result("three")]
            stored = await worker.batch_loop.store_results(list(zip(claimed, batch, strict=True)))
            assert stored == [True, True, True] and len(commits) == 1, "three captions, one transaction"
            for row in rows:  # make them take a result again
                async with stack.session_factory.begin() as session:
                    r = await session.get(CaptionRequest, row.id)
                    r.status = RequestStatus.RUNNING
                    await session.execute(Caption.__table__.delete().where(Caption.request_id == row.id))
            batch = [result("ok"), result(None), result("fine")]  # no text: the database refuses that row
            out = await worker.batch_loop.store_results(list(zip(claimed, batch, strict=True)))
        finally:
            event.remove(sync_engine, "commit", on_commit)
        assert out[0] is True and out[2] is True and isinstance(out[1], Exception)
        async with stack.session_factory() as session:
            texts = {c.request_id: c.text for c in (await session.scalars(select(Caption))).all()}
        assert texts == {rows[0].id: "ok", rows[2].id: "fine"}
