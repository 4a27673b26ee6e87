"""captionbot.storage.jobs: intake, the queue, and a request's way through complete | fail | requeue.

The claim itself (``claim_job``) and its races are in test_job_claims.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from captionbot.jobs import ErrorCode
from captionbot.storage import captions, deliveries, jobs, model_versions
from captionbot.storage.imagestore import sha256_hex
from captionbot.storage.models import Caption, CaptionRequest, Image, RequestStatus
from tests.storage.helpers import Factory, claim, count, request_row, seed


async def test_add_image_is_get_or_create(session_factory: Factory) -> None:
    sha = sha256_hex(b"x")
    async with session_factory.begin() as s:
        a = await jobs.add_image(s, sha256=sha, size_bytes=1, width=1, height=1, mime="image/png")
        b = await jobs.add_image(s, sha256=sha, size_bytes=1, width=1, height=1, mime="image/png")
        assert a.id == b.id
        assert await jobs.image_digests(s, image_ids=[a.id, 10_000]) == {a.id: sha}
        assert await jobs.image_digests(s, image_ids=[]) == {}
    assert await count(session_factory, Image) == 1


async def test_request_lifecycle_counts_and_positions(session_factory: Factory) -> None:
    first = await seed(session_factory)
    async with session_factory.begin() as s:
        req = await request_row(s, first.request_id)
        assert req is not None
        assert req.status == RequestStatus.QUEUED and req.attempts == 0
        assert req.source_message_id == "42" and req.reply_context == {"thread_id": 7}
        assert len(req.public_id) == 32
        assert (await jobs.get_request_by_public_id(s, public_id=req.public_id)).id == req.id  # type: ignore[union-attr]
        assert await jobs.get_request_by_public_id(s, public_id="0" * 32) is None
        second = await jobs.create_request(
            s, platform="telegram", chat_id=first.chat_id, requester_id=first.user_id, image_id=first.image_id
        )
        await jobs.set_status_message(s, request_id=second.id, status_message_id=99)
    async with session_factory.begin() as s:
        assert await jobs.count_pending(s) == 2
        assert await jobs.count_pending_for_user(s, user_id=first.user_id) == 2
        assert await jobs.queue_position(s, request_id=first.request_id) == 1
        assert await jobs.queue_position(s, request_id=second.id) == 2
        assert await claim(s, first)
        assert await jobs.queue_position(s, request_id=first.request_id) == 0  # running
        assert await jobs.queue_position(s, request_id=second.id) == 1
        await jobs.complete_request(s, request_id=first.request_id, text="a cat")
        assert await jobs.queue_position(s, request_id=first.request_id) is None
        assert await jobs.count_pending(s) == 1
        assert (await request_row(s, second.id)).status_message_id == "99"  # type: ignore[union-attr]


async def test_release_claim_gives_the_attempt_back(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    async with session_factory.begin() as s:
        assert (await claim(s, seeded)).attempts == 1  # type: ignore[union-attr]
        assert await jobs.release_claim(s, request_id=seeded.request_id)
        req = await request_row(s, seeded.request_id)
        assert req is not None and req.status == RequestStatus.QUEUED and req.attempts == 0
        assert not await jobs.release_claim(s, request_id=seeded.request_id)  # not running
        assert (await claim(s, seeded)).attempts == 1  # type: ignore[union-attr]


async def test_complete_is_idempotent(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    version_id = None
    async with session_factory.begin() as s:
        version_id = (await model_versions.register_model_version(s, name="v1", path="/m/v1.pt")).id
        assert await claim(s, seeded)
        first = await jobs.complete_request(
            s,
            request_id=seeded.request_id,
            text="a dog on a beach",
            confidence=0.8,
            model_version_id=version_id,
            decoding={"beam_size": 3, "max_len": 20},
            latency_ms=120,
        )
    async with session_factory.begin() as s:
        again = await jobs.complete_request(s, request_id=seeded.request_id, text="something else")
        assert again is not None and first is not None
        assert again.id == first.id and again.text == "a dog on a beach"
        assert again.decoding == {"beam_size": 3, "max_len": 20} and again.model_version_id == version_id
        req = await request_row(s, seeded.request_id)
        assert req.status == RequestStatus.DONE and req.finished_at is not None  # type: ignore[union-attr]
        assert (await captions.caption_for_request(s, request_id=seeded.request_id)).id == first.id  # type: ignore[union-attr]
        # A claim of a finished request loses: the redelivered job is dropped.
        assert await claim(s, seeded) is None
        # Unknown (e.g. forgotten) requests take no result.
        assert await jobs.complete_request(s, request_id=10_000, text="x") is None
    assert await count(session_factory, Caption) == 1


async def test_concurrent_completions_store_one_caption(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    async with session_factory.begin() as s:
        assert await claim(s, seeded)

    async def complete(text: str) -> int:
        async with session_factory.begin() as s:
            caption = await jobs.complete_request(s, request_id=seeded.request_id, text=text)
            assert caption is not None
            return caption.id

    ids = await asyncio.gather(complete("one"), complete("two"))
    assert ids[0] == ids[1]
    assert await count(session_factory, Caption) == 1


async def test_fail_retries_then_fails_after_max_attempts(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    rid = seeded.request_id
    for attempt in (1, 2):
        async with session_factory.begin() as s:
            assert (await claim(s, seeded)).attempts == attempt  # type: ignore[union-attr]
            assert (
                await jobs.fail_request(
                    s, request_id=rid, code=ErrorCode.CAPTION_ERROR, message=f"boom {attempt}", max_attempts=3
                )
                is True
            )
            req = await request_row(s, rid)
            assert req.status == RequestStatus.QUEUED and req.error == f"boom {attempt}"  # type: ignore[union-attr]
            assert req.error_code == ErrorCode.CAPTION_ERROR  # type: ignore[union-attr]
    async with session_factory.begin() as s:
        assert await claim(s, seeded)
        assert (
            await jobs.fail_request(s, request_id=rid, code=ErrorCode.CAPTION_ERROR, message="boom 3", max_attempts=3)
            is False
        )
        req = await request_row(s, rid)
        assert req.status == RequestStatus.FAILED and req.attempts == 3 and req.finished_at  # type: ignore[union-attr]
        assert await claim(s, seeded) is None
        assert (
            await jobs.fail_request(s, request_id=rid, code=ErrorCode.CAPTION_ERROR, message="again", max_attempts=3)
            is False
        )  # not running
        # The failure is a result the bot still has to deliver.
        assert [r.id for r in await deliveries.undelivered_results(s)] == [rid]


async def test_permanent_failure_skips_retries(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    async with session_factory.begin() as s:
        assert await claim(s, seeded)
        assert not await jobs.fail_request(
            s,
            request_id=seeded.request_id,
            code=ErrorCode.BAD_IMAGE,
            message="not an image",
            max_attempts=3,
            permanent=True,
        )
        req = await request_row(s, seeded.request_id)
        assert req.status == RequestStatus.FAILED and req.error_code == ErrorCode.BAD_IMAGE  # type: ignore[union-attr]


async def test_stale_requests_are_recovered(session_factory: Factory) -> None:
    crashed = await seed(session_factory, user="a")
    poison = await seed(session_factory, user="b", photo=b"poison")
    waiting = await seed(session_factory, user="c", photo=b"other")
    async with session_factory.begin() as s:
        assert await claim(s, crashed)
        assert await claim(s, poison)
        await s.execute(update(CaptionRequest).where(CaptionRequest.id == poison.request_id).values(attempts=3))
    later = datetime.now(UTC) + timedelta(minutes=1)
    async with session_factory.begin() as s:
        # Nothing is older than an hour ago: nothing is touched.
        assert (
            await jobs.requeue_stale_requests(s, older_than=datetime.now(UTC) - timedelta(hours=1), max_attempts=3)
            == []
        )
        statuses = [(await request_row(s, x.request_id)).status for x in (crashed, poison, waiting)]  # type: ignore[union-attr]
        assert statuses == [RequestStatus.RUNNING, RequestStatus.RUNNING, RequestStatus.QUEUED]
        requeued = await jobs.requeue_stale_requests(s, older_than=later, max_attempts=3)
        assert [r.id for r in requeued] == [crashed.request_id, waiting.request_id]
        assert all(r.status == RequestStatus.QUEUED for r in requeued)
        failed = await request_row(s, poison.request_id)
        assert failed.status == RequestStatus.FAILED and failed.error_code == ErrorCode.CAPTION_ERROR  # type: ignore[union-attr]
    async with session_factory.begin() as s:
        # Bumped: a second worker starting now finds nothing to re-enqueue.
        assert await jobs.requeue_stale_requests(s, older_than=requeued[0].updated_at, max_attempts=3) == []
        assert await claim(s, crashed)  # claimable again


async def test_timestamps_are_aware_utc(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    async with session_factory() as s:
        req = await request_row(s, seeded.request_id)
        assert req.created_at.tzinfo is not None and req.created_at.utcoffset() == timedelta(0)  # type: ignore[union-attr]
    naive = datetime.now()
    async with session_factory() as s:
        with pytest.raises(Exception, match="naive datetime"):
            await jobs.claim_job(s, public_id=seeded.public_id, stale_before=naive)
    async with session_factory() as s:
        with pytest.raises(Exception, match="naive datetime"):
            await jobs.requeue_stale_requests(s, older_than=naive, max_attempts=3)
    async with session_factory() as s:
        assert (await request_row(s, seeded.request_id)).status == RequestStatus.QUEUED  # type: ignore[union-attr]
