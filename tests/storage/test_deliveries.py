"""captionbot.storage.deliveries: which results wait to be sent, and claim -> send -> mark delivered."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from captionbot.jobs import ErrorCode
from captionbot.storage import deliveries, jobs
from captionbot.storage.models import CaptionRequest, RequestStatus
from tests.storage.helpers import Factory, captioned, claim, request_row, seed


async def test_delivery_is_marked_once_and_leaves_the_undelivered_list(session_factory: Factory) -> None:
    seeded, _ = await captioned(session_factory)
    pending = await seed(session_factory, user="u2")
    async with session_factory.begin() as s:
        assert await deliveries.mark_delivered(s, request_id=pending.request_id) is False  # no result yet
        results = await deliveries.undelivered_results(s, platform="telegram")
        assert [r.id for r in results] == [seeded.request_id]
        assert results[0].caption is not None and results[0].chat.platform_chat_id == "chat-1"
        assert await deliveries.undelivered_results(s, platform="discord") == []
        assert await deliveries.mark_delivered(s, request_id=seeded.request_id, reply_message_id=1001) is True
        assert await deliveries.mark_delivered(s, request_id=seeded.request_id, reply_message_id=1002) is False
        req = await request_row(s, seeded.request_id)
        assert req is not None and req.status == RequestStatus.DELIVERED and req.reply_message_id == "1001"
        assert req.delivered_at is not None
        assert await deliveries.undelivered_results(s) == []


async def test_delivery_claim_lets_one_sender_reply(session_factory: Factory) -> None:
    seeded, caption_id = await captioned(session_factory)
    rid = seeded.request_id

    async def claim_delivery(lease: timedelta = deliveries.DEFAULT_DELIVERY_LEASE) -> CaptionRequest | None:
        async with session_factory.begin() as s:
            return await deliveries.claim_delivery(s, request_id=rid, lease=lease)

    claims = await asyncio.gather(claim_delivery(), claim_delivery(), claim_delivery())
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert winners[0].caption is not None and winners[0].caption.id == caption_id
    assert winners[0].chat.platform_chat_id == "chat-1"
    async with session_factory() as s:
        assert await deliveries.undelivered_results(s) == []  # being sent: not offered for a resend
        assert [r.id for r in await deliveries.undelivered_results(s, lease=timedelta(0))] == [rid]
    assert await claim_delivery(lease=timedelta(0)) is not None  # an expired lease (sender died) is taken over
    async with session_factory.begin() as s:
        await deliveries.release_delivery(s, request_id=rid)  # sending failed: retry at once
    assert await claim_delivery() is not None
    async with session_factory.begin() as s:
        assert await deliveries.mark_delivered(s, request_id=rid, reply_message_id=5)
    assert await claim_delivery(lease=timedelta(0)) is None


async def test_late_caption_does_not_replace_a_failure_being_delivered(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    rid = seeded.request_id
    async with session_factory.begin() as s:
        assert await claim(s, seeded)
        await jobs.fail_request(s, request_id=rid, code=ErrorCode.CAPTION_ERROR, message="timeout", max_attempts=1)
        assert await deliveries.claim_delivery(s, request_id=rid)
        assert await jobs.complete_request(s, request_id=rid, text="too late") is None
        assert (await request_row(s, rid)).status == RequestStatus.FAILED  # type: ignore[union-attr]
        await deliveries.release_delivery(s, request_id=rid)
        # Nobody is delivering the failure any more: the caption wins after all.
        assert (await jobs.complete_request(s, request_id=rid, text="a cat")).text == "a cat"  # type: ignore[union-attr]
