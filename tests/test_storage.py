"""Storage: query functions on SQLite and PostgreSQL, the image store, and the storage settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.jobs import ErrorCode
from captionbot.settings import Settings
from captionbot.storage import queries as q
from captionbot.storage.imagestore import ImageStore, InvalidDigestError, sha256_hex
from captionbot.storage.models import (
    Caption,
    CaptionRequest,
    ChatKind,
    Feedback,
    Image,
    ModelStatus,
    ModelVersion,
    Platform,
    RequestStatus,
    User,
)

Factory = async_sessionmaker[AsyncSession]


@dataclass
class Seeded:
    user_id: int
    chat_id: int
    image_id: int
    sha256: str
    request_id: int


async def _seed(
    factory: Factory,
    store: ImageStore | None = None,
    *,
    user: str = "u1",
    photo: bytes = b"photo-1",
    platform: Platform = Platform.TELEGRAM,
) -> Seeded:
    """A user in a chat who sent one photo: a queued request."""
    sha = store.put(photo) if store else sha256_hex(photo)
    async with factory.begin() as s:
        u = await q.get_or_create_user(s, platform=platform, platform_user_id=user, display_name=user)
        chat = await q.get_or_create_chat(s, platform=platform, platform_chat_id="chat-1", kind=ChatKind.GROUP)
        image = await q.add_image(s, sha256=sha, size_bytes=len(photo), width=4, height=3, mime="image/jpeg")
        req = await q.create_request(
            s,
            platform=platform,
            chat_id=chat.id,
            requester_id=u.id,
            image_id=image.id,
            source_message_id=42,
            reply_context={"thread_id": 7},
        )
        return Seeded(u.id, chat.id, image.id, sha, req.id)


async def _captioned(factory: Factory, store: ImageStore | None = None, **kw: object) -> tuple[Seeded, int]:
    """A seeded request that went through claim and complete; returns its caption id."""
    seeded = await _seed(factory, store, **kw)  # type: ignore[arg-type]
    async with factory.begin() as s:
        assert await q.claim_request(s, request_id=seeded.request_id)
        caption = await q.complete_request(s, request_id=seeded.request_id, text=f"a photo by {seeded.user_id}")
        assert caption is not None
        return seeded, caption.id


async def _count(factory: Factory, model: type) -> int:
    async with factory() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


# --- users, chats, images, requests -------------------------------------------------------------


async def test_get_or_create_user_and_chat_are_idempotent(session_factory: Factory) -> None:
    async with session_factory.begin() as s:
        a = await q.get_or_create_user(s, platform="telegram", platform_user_id=123, display_name="Ann")
        b = await q.get_or_create_user(s, platform=Platform.TELEGRAM, platform_user_id="123")
        other = await q.get_or_create_user(s, platform=Platform.DISCORD, platform_user_id="123")
        assert a.id == b.id != other.id
        assert b.display_name == "Ann"  # None leaves the name alone
        renamed = await q.get_or_create_user(s, platform="telegram", platform_user_id="123", display_name="Anna")
        assert renamed.id == a.id and renamed.display_name == "Anna"
        c1 = await q.get_or_create_chat(s, platform="discord", platform_chat_id=9, kind="guild")
        c2 = await q.get_or_create_chat(s, platform="discord", platform_chat_id="9", kind=ChatKind.DM)
        assert c1.id == c2.id and c2.kind == ChatKind.GUILD and c2.autocaption is False
        await q.set_chat_autocaption(s, chat_id=c1.id, enabled=True)
        assert a.created_at.tzinfo is not None
    async with session_factory() as s:
        assert (await q.get_user(s, platform="telegram", platform_user_id=123)).display_name == "Anna"  # type: ignore[union-attr]
        assert await q.get_user(s, platform="telegram", platform_user_id=999) is None
    assert await _count(session_factory, User) == 2


async def test_concurrent_get_or_create_user_makes_one_row(session_factory: Factory) -> None:
    async def create() -> int:
        async with session_factory.begin() as s:
            return (await q.get_or_create_user(s, platform="discord", platform_user_id="55")).id

    ids = await asyncio.gather(create(), create(), create())
    assert len(set(ids)) == 1
    assert await _count(session_factory, User) == 1


async def test_add_image_is_get_or_create(session_factory: Factory) -> None:
    sha = sha256_hex(b"x")
    async with session_factory.begin() as s:
        a = await q.add_image(s, sha256=sha, size_bytes=1, width=1, height=1, mime="image/png")
        b = await q.add_image(s, sha256=sha, size_bytes=1, width=1, height=1, mime="image/png")
        assert a.id == b.id
    assert await _count(session_factory, Image) == 1


async def test_request_lifecycle_counts_and_positions(session_factory: Factory) -> None:
    first = await _seed(session_factory)
    async with session_factory.begin() as s:
        req = await q.get_request(s, request_id=first.request_id)
        assert req is not None
        assert req.status == RequestStatus.QUEUED and req.attempts == 0
        assert req.source_message_id == "42" and req.reply_context == {"thread_id": 7}
        assert len(req.public_id) == 32
        assert (await q.get_request_by_public_id(s, public_id=req.public_id)).id == req.id  # type: ignore[union-attr]
        second = await q.create_request(
            s, platform="telegram", chat_id=first.chat_id, requester_id=first.user_id, image_id=first.image_id
        )
        await q.set_status_message(s, request_id=second.id, status_message_id=99)
    async with session_factory.begin() as s:
        assert await q.count_pending(s) == 2
        assert await q.count_pending_for_user(s, user_id=first.user_id) == 2
        assert await q.queue_position(s, request_id=first.request_id) == 1
        assert await q.queue_position(s, request_id=second.id) == 2
        await q.claim_request(s, request_id=first.request_id)
        assert await q.queue_position(s, request_id=first.request_id) == 0  # running
        assert await q.queue_position(s, request_id=second.id) == 1
        await q.complete_request(s, request_id=first.request_id, text="a cat")
        assert await q.queue_position(s, request_id=first.request_id) is None
        assert await q.count_pending(s) == 1
        assert (await q.get_request(s, request_id=second.id)).status_message_id == "99"  # type: ignore[union-attr]


async def test_claim_is_exclusive_across_sessions(session_factory: Factory) -> None:
    seeded = await _seed(session_factory)
    async with session_factory() as s1, session_factory() as s2:
        won = await q.claim_request(s1, request_id=seeded.request_id)  # holds the row lock, uncommitted

        async def second_claim() -> CaptionRequest | None:
            result = await q.claim_request(s2, request_id=seeded.request_id)  # waits for s1
            await s2.commit()
            return result

        loser = asyncio.create_task(second_claim())
        await s1.commit()
        assert won is not None and won.status == RequestStatus.RUNNING and won.attempts == 1
        assert won.started_at is not None
        assert await loser is None
    async with session_factory() as s:
        req = await q.get_request(s, request_id=seeded.request_id)
        assert req.status == RequestStatus.RUNNING and req.attempts == 1  # type: ignore[union-attr]


async def test_concurrent_claims_have_one_winner(session_factory: Factory) -> None:
    seeded = await _seed(session_factory)

    async def claim() -> bool:
        async with session_factory.begin() as s:
            return await q.claim_request(s, request_id=seeded.request_id) is not None

    assert sorted(await asyncio.gather(*(claim() for _ in range(4)))) == [False, False, False, True]


async def test_a_captions_band_hint_and_labels_are_stored(session_factory: Factory) -> None:
    seeded = await _seed(session_factory)
    labels = [{"label": "tabby", "word": "cat", "p": 0.71}, {"label": "Egyptian cat", "word": "cat", "p": 0.1}]
    async with session_factory.begin() as s:
        await q.claim_request(s, request_id=seeded.request_id)
        await q.complete_request(
            s,
            request_id=seeded.request_id,
            text="a dog in the water",
            confidence=0.2,
            band="unsure",
            hint="a cat",
            labels=labels,
        )
    async with session_factory() as s:
        caption = await q.caption_for_request(s, request_id=seeded.request_id)
        assert caption is not None
        assert (caption.band, caption.hint, caption.labels) == ("unsure", "a cat", labels)


async def test_complete_is_idempotent(session_factory: Factory) -> None:
    seeded = await _seed(session_factory)
    version_id = None
    async with session_factory.begin() as s:
        version_id = (await q.register_model_version(s, name="v1", path="/m/v1.pt")).id
        await q.claim_request(s, request_id=seeded.request_id)
        first = await q.complete_request(
            s,
            request_id=seeded.request_id,
            text="a dog on a beach",
            confidence=0.8,
            model_version_id=version_id,
            decoding={"beam_size": 3, "max_len": 20},
            latency_ms=120,
        )
    async with session_factory.begin() as s:
        again = await q.complete_request(s, request_id=seeded.request_id, text="something else")
        assert again is not None and first is not None
        assert again.id == first.id and again.text == "a dog on a beach"
        assert again.decoding == {"beam_size": 3, "max_len": 20} and again.model_version_id == version_id
        req = await q.get_request(s, request_id=seeded.request_id)
        assert req.status == RequestStatus.DONE and req.finished_at is not None  # type: ignore[union-attr]
        assert (await q.caption_for_request(s, request_id=seeded.request_id)).id == first.id  # type: ignore[union-attr]
        # A claim of a finished request loses: the redelivered job is dropped.
        assert await q.claim_request(s, request_id=seeded.request_id) is None
        # Unknown (e.g. forgotten) requests take no result.
        assert await q.complete_request(s, request_id=10_000, text="x") is None
    assert await _count(session_factory, Caption) == 1


async def test_concurrent_completions_store_one_caption(session_factory: Factory) -> None:
    seeded = await _seed(session_factory)
    async with session_factory.begin() as s:
        await q.claim_request(s, request_id=seeded.request_id)

    async def complete(text: str) -> int:
        async with session_factory.begin() as s:
            caption = await q.complete_request(s, request_id=seeded.request_id, text=text)
            assert caption is not None
            return caption.id

    ids = await asyncio.gather(complete("one"), complete("two"))
    assert ids[0] == ids[1]
    assert await _count(session_factory, Caption) == 1


async def test_fail_retries_then_fails_after_max_attempts(session_factory: Factory) -> None:
    seeded = await _seed(session_factory)
    rid = seeded.request_id
    for attempt in (1, 2):
        async with session_factory.begin() as s:
            assert (await q.claim_request(s, request_id=rid)).attempts == attempt  # type: ignore[union-attr]
            assert (
                await q.fail_request(
                    s, request_id=rid, code=ErrorCode.CAPTION_ERROR, message=f"boom {attempt}", max_attempts=3
                )
                is True
            )
            req = await q.get_request(s, request_id=rid)
            assert req.status == RequestStatus.QUEUED and req.error == f"boom {attempt}"  # type: ignore[union-attr]
    async with session_factory.begin() as s:
        assert await q.claim_request(s, request_id=rid)
        assert (
            await q.fail_request(s, request_id=rid, code=ErrorCode.CAPTION_ERROR, message="boom 3", max_attempts=3)
            is False
        )
        req = await q.get_request(s, request_id=rid)
        assert req.status == RequestStatus.FAILED and req.attempts == 3 and req.finished_at  # type: ignore[union-attr]
        assert await q.claim_request(s, request_id=rid) is None
        assert (
            await q.fail_request(s, request_id=rid, code=ErrorCode.CAPTION_ERROR, message="again", max_attempts=3)
            is False
        )  # not running
        # The failure is a result the bot still has to deliver.
        assert [r.id for r in await q.undelivered_results(s)] == [rid]


async def test_permanent_failure_skips_retries(session_factory: Factory) -> None:
    seeded = await _seed(session_factory)
    async with session_factory.begin() as s:
        await q.claim_request(s, request_id=seeded.request_id)
        assert not await q.fail_request(
            s,
            request_id=seeded.request_id,
            code=ErrorCode.BAD_IMAGE,
            message="not an image",
            max_attempts=3,
            permanent=True,
        )
        assert (await q.get_request(s, request_id=seeded.request_id)).status == RequestStatus.FAILED  # type: ignore[union-attr]


async def test_delivery_is_marked_once_and_leaves_the_undelivered_list(session_factory: Factory) -> None:
    seeded, _ = await _captioned(session_factory)
    pending = await _seed(session_factory, user="u2")
    async with session_factory.begin() as s:
        assert await q.mark_delivered(s, request_id=pending.request_id) is False  # no result yet
        results = await q.undelivered_results(s, platform="telegram")
        assert [r.id for r in results] == [seeded.request_id]
        assert results[0].caption is not None and results[0].chat.platform_chat_id == "chat-1"
        assert await q.undelivered_results(s, platform="discord") == []
        assert await q.mark_delivered(s, request_id=seeded.request_id, reply_message_id=1001) is True
        assert await q.mark_delivered(s, request_id=seeded.request_id, reply_message_id=1002) is False
        req = await q.get_request(s, request_id=seeded.request_id)
        assert req.status == RequestStatus.DELIVERED and req.reply_message_id == "1001"  # type: ignore[union-attr]
        assert req.delivered_at is not None  # type: ignore[union-attr]
        assert await q.undelivered_results(s) == []


async def test_delivery_claim_lets_one_sender_reply(session_factory: Factory) -> None:
    seeded, caption_id = await _captioned(session_factory)
    rid = seeded.request_id

    async def claim(lease: timedelta = q.DEFAULT_DELIVERY_LEASE) -> CaptionRequest | None:
        async with session_factory.begin() as s:
            return await q.claim_delivery(s, request_id=rid, lease=lease)

    claims = await asyncio.gather(claim(), claim(), claim())
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert winners[0].caption is not None and winners[0].caption.id == caption_id
    assert winners[0].chat.platform_chat_id == "chat-1"
    async with session_factory() as s:
        assert await q.undelivered_results(s) == []  # being sent: not offered for a resend
        assert [r.id for r in await q.undelivered_results(s, lease=timedelta(0))] == [rid]
    assert await claim(lease=timedelta(0)) is not None  # an expired lease (sender died) is taken over
    async with session_factory.begin() as s:
        await q.release_delivery(s, request_id=rid)  # sending failed: retry at once
    assert await claim() is not None
    async with session_factory.begin() as s:
        assert await q.mark_delivered(s, request_id=rid, reply_message_id=5)
    assert await claim(lease=timedelta(0)) is None


async def test_late_caption_does_not_replace_a_failure_being_delivered(session_factory: Factory) -> None:
    seeded = await _seed(session_factory)
    rid = seeded.request_id
    async with session_factory.begin() as s:
        await q.claim_request(s, request_id=rid)
        await q.fail_request(s, request_id=rid, code=ErrorCode.CAPTION_ERROR, message="timeout", max_attempts=1)
        assert await q.claim_delivery(s, request_id=rid)
        assert await q.complete_request(s, request_id=rid, text="too late") is None
        assert (await q.get_request(s, request_id=rid)).status == RequestStatus.FAILED  # type: ignore[union-attr]
        await q.release_delivery(s, request_id=rid)
        # Nobody is delivering the failure any more: the caption wins after all.
        assert (await q.complete_request(s, request_id=rid, text="a cat")).text == "a cat"  # type: ignore[union-attr]


async def test_stale_requests_are_recovered(session_factory: Factory) -> None:
    crashed = await _seed(session_factory, user="a")
    poison = await _seed(session_factory, user="b", photo=b"poison")
    waiting = await _seed(session_factory, user="c", photo=b"other")
    async with session_factory.begin() as s:
        await q.claim_request(s, request_id=crashed.request_id)
        await q.claim_request(s, request_id=poison.request_id)
        await s.execute(update(CaptionRequest).where(CaptionRequest.id == poison.request_id).values(attempts=3))
    later = datetime.now(UTC) + timedelta(minutes=1)
    async with session_factory.begin() as s:
        assert await q.stale_requests(s, older_than=datetime.now(UTC) - timedelta(hours=1)) == []
        stale = await q.stale_requests(s, older_than=later)
        assert [r.id for r in stale] == [crashed.request_id, poison.request_id, waiting.request_id]
        requeued = await q.requeue_stale_requests(s, older_than=later, max_attempts=3)
        assert [r.id for r in requeued] == [crashed.request_id, waiting.request_id]
        assert all(r.status == RequestStatus.QUEUED for r in requeued)
        assert (await q.get_request(s, request_id=poison.request_id)).status == RequestStatus.FAILED  # type: ignore[union-attr]
    async with session_factory.begin() as s:
        # Bumped: a second worker starting now finds nothing to re-enqueue.
        assert await q.requeue_stale_requests(s, older_than=requeued[0].updated_at, max_attempts=3) == []
        assert await q.claim_request(s, request_id=crashed.request_id)  # claimable again


async def test_timestamps_are_aware_utc(session_factory: Factory) -> None:
    seeded = await _seed(session_factory)
    async with session_factory() as s:
        req = await q.get_request(s, request_id=seeded.request_id)
        assert req.created_at.tzinfo is not None and req.created_at.utcoffset() == timedelta(0)  # type: ignore[union-attr]
        with pytest.raises(Exception, match="naive datetime"):
            await q.stale_requests(s, older_than=datetime.now())


# --- feedback ----------------------------------------------------------------------------------


async def test_feedback_is_one_per_user_per_caption_and_changeable(session_factory: Factory) -> None:
    seeded, caption_id = await _captioned(session_factory)
    async with session_factory.begin() as s:
        other = await q.get_or_create_user(s, platform="telegram", platform_user_id="other")
        fb = await q.set_feedback(s, caption_id=caption_id, user_id=seeded.user_id, rating=1)
        assert (fb.rating, fb.correction) == (1, None)
        fb2 = await q.set_feedback(s, caption_id=caption_id, user_id=seeded.user_id, correction="  a red cat ")
        assert fb2.id == fb.id and (fb2.rating, fb2.correction) == (1, "a red cat")  # rating kept
        fb3 = await q.set_feedback(s, caption_id=caption_id, user_id=seeded.user_id, rating=-1)
        assert fb3.id == fb.id and (fb3.rating, fb3.correction) == (-1, "a red cat")
        assert fb3.updated_at >= fb3.created_at
        await q.set_feedback(s, caption_id=caption_id, user_id=other.id, rating=1)
        with pytest.raises(ValueError):
            await q.set_feedback(s, caption_id=caption_id, user_id=other.id)
    async with session_factory.begin() as s:
        cleared = await q.set_feedback(s, caption_id=caption_id, user_id=seeded.user_id, correction="", rating=None)
        assert (cleared.rating, cleared.correction) == (None, None)
        got = await q.get_feedback(s, caption_id=caption_id, user_id=seeded.user_id)
        assert got is not None and got.id == fb.id
        assert await q.get_feedback(s, caption_id=caption_id, user_id=10_000) is None
    assert await _count(session_factory, Feedback) == 2


async def test_feedback_unique_constraint_holds_in_the_database(session_factory: Factory) -> None:
    seeded, caption_id = await _captioned(session_factory)
    with pytest.raises(IntegrityError):
        async with session_factory.begin() as s:
            s.add_all(
                [
                    Feedback(caption_id=caption_id, user_id=seeded.user_id, rating=1),
                    Feedback(caption_id=caption_id, user_id=seeded.user_id, rating=-1),
                ]
            )


async def test_user_and_global_stats(session_factory: Factory) -> None:
    seeded, caption_id = await _captioned(session_factory)
    async with session_factory.begin() as s:
        await q.set_feedback(s, caption_id=caption_id, user_id=seeded.user_id, rating=1, correction="a cat")
        stats = await q.user_stats(s, user_id=seeded.user_id)
        assert stats == q.UserStats(
            requests=1, captions=1, ratings_given=1, average_rating_given=1.0, corrections_given=1
        )
        empty = await q.user_stats(s, user_id=10_000)
        assert empty.requests == 0 and empty.average_rating_given is None
        overall = await q.global_stats(s)
        assert overall.users == 1 and overall.requests == 1 and overall.captions == 1
        assert overall.requests_by_status == {"done": 1}
        assert overall.ratings == 1 and overall.average_rating == 1.0 and overall.corrections == 1
        assert overall.promoted_model is None


# --- forgetting a user -------------------------------------------------------------------------


async def test_forget_user_removes_rows_and_files_but_keeps_shared_photos(
    session_factory: Factory, image_store: ImageStore
) -> None:
    alice, alice_caption = await _captioned(session_factory, image_store, user="alice", photo=b"alice only")
    alice_shared, _ = await _captioned(session_factory, image_store, user="alice", photo=b"shared")
    bob, bob_caption = await _captioned(session_factory, image_store, user="bob", photo=b"shared")
    assert alice_shared.sha256 == bob.sha256 and alice_shared.image_id == bob.image_id
    async with session_factory.begin() as s:
        await q.set_feedback(s, caption_id=bob_caption, user_id=alice.user_id, rating=1)  # alice rates bob
        await q.set_feedback(s, caption_id=alice_caption, user_id=bob.user_id, rating=-1)  # bob rates alice
        await q.set_feedback(s, caption_id=bob_caption, user_id=bob.user_id, rating=1)

    async with session_factory.begin() as s:
        report = await q.forget_user(s, user_id=alice.user_id, image_store=image_store)
        assert image_store.exists(alice.sha256)  # files go only once the deletion is committed
    assert report == q.ForgetReport(
        requests=2, captions=2, feedback=2, images=1, image_files=[alice.sha256], user_deleted=True
    )
    assert not image_store.exists(alice.sha256)
    assert image_store.exists(bob.sha256)

    async with session_factory() as s:
        assert await s.get(User, alice.user_id) is None
        assert await s.scalar(select(func.count()).where(CaptionRequest.requester_id == alice.user_id)) == 0
        assert await s.scalar(select(Image.id).where(Image.sha256 == alice.sha256)) is None
        assert await s.scalar(select(Image.id).where(Image.sha256 == bob.sha256)) == bob.image_id
        remaining = (await s.scalars(select(Feedback))).all()
        assert [(f.caption_id, f.user_id) for f in remaining] == [(bob_caption, bob.user_id)]
        bob_request = await q.get_request(s, request_id=bob.request_id)
        assert bob_request is not None and bob_request.status == RequestStatus.DONE
        assert await q.caption_for_request(s, request_id=bob.request_id) is not None


async def test_forget_user_keeps_an_opted_out_user_row_and_rollback_keeps_files(
    session_factory: Factory, image_store: ImageStore
) -> None:
    seeded, _ = await _captioned(session_factory, image_store, user="carol", photo=b"carol")
    async with session_factory.begin() as s:
        assert await q.set_training_opt_out(s, user_id=seeded.user_id, opt_out=True)

    with pytest.raises(RuntimeError, match="changed my mind"):
        async with session_factory.begin() as s:
            await q.forget_user(s, user_id=seeded.user_id, image_store=image_store)
            raise RuntimeError("changed my mind")
    assert image_store.exists(seeded.sha256)
    assert await _count(session_factory, CaptionRequest) == 1

    async with session_factory.begin() as s:
        report = await q.forget_user(s, user_id=seeded.user_id, image_store=image_store)
    assert report.user_deleted is False and report.requests == 1
    assert not image_store.exists(seeded.sha256)
    async with session_factory() as s:
        user = await s.get(User, seeded.user_id)
        assert user is not None and user.training_opt_out and user.display_name is None
        assert await q.forget_user(s, user_id=10_000, image_store=image_store) == q.ForgetReport()


# --- training data -----------------------------------------------------------------------------


async def test_training_examples_honour_opt_out(session_factory: Factory, image_store: ImageStore) -> None:
    a, a_caption = await _captioned(session_factory, image_store, user="a", photo=b"a")
    b, b_caption = await _captioned(session_factory, image_store, user="b", photo=b"b")
    c, c_caption = await _captioned(session_factory, image_store, user="c", photo=b"c")
    async with session_factory.begin() as s:
        rater = await q.get_or_create_user(s, platform="telegram", platform_user_id="rater")
        await q.set_feedback(s, caption_id=a_caption, user_id=a.user_id, rating=1)  # good as is
        await q.set_feedback(s, caption_id=b_caption, user_id=b.user_id, rating=-1, correction="a blue bike")
        await q.set_feedback(s, caption_id=c_caption, user_id=c.user_id, rating=-1)  # bad, no fix: unused
        await q.set_feedback(s, caption_id=c_caption, user_id=rater.id, rating=1)

    async with session_factory() as s:
        examples = await q.training_examples(s)
        got = {(e.image_sha256, e.text, e.source) for e in examples}
        assert got == {
            (a.sha256, f"a photo by {a.user_id}", "rating"),
            (b.sha256, "a blue bike", "correction"),
            (c.sha256, f"a photo by {c.user_id}", "rating"),
        }
        assert len(await q.training_examples(s, min_rating=None)) == 4
        assert len(await q.training_examples(s, limit=1)) == 1

    async with session_factory.begin() as s:
        await q.set_training_opt_out(s, user_id=b.user_id, opt_out=True)  # b's photo and fix: out
        await q.set_training_opt_out(s, user_id=rater.id, opt_out=True)  # the rater's vote: out
    async with session_factory() as s:
        got = {(e.image_sha256, e.source) for e in await q.training_examples(s)}
        assert got == {(a.sha256, "rating")}


async def test_retention_purges_delivered_photos_not_needed_for_training(
    session_factory: Factory, image_store: ImageStore
) -> None:
    kept, kept_caption = await _captioned(session_factory, image_store, user="k", photo=b"rated")
    gone, _ = await _captioned(session_factory, image_store, user="g", photo=b"unrated")
    busy = await _seed(session_factory, image_store, user="q", photo=b"queued")
    async with session_factory.begin() as s:
        await q.set_feedback(s, caption_id=kept_caption, user_id=kept.user_id, rating=1)
        for seeded in (kept, gone):
            await q.mark_delivered(s, request_id=seeded.request_id)
    yesterday, tomorrow = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
    async with session_factory.begin() as s:
        assert await q.purge_expired_images(s, older_than=yesterday, image_store=image_store) == []
        assert await q.purge_expired_images(s, older_than=tomorrow, image_store=image_store) == [gone.sha256]
    assert not image_store.exists(gone.sha256)
    assert image_store.exists(kept.sha256) and image_store.exists(busy.sha256)
    async with session_factory.begin() as s:
        assert await q.purge_expired_images(s, older_than=tomorrow, image_store=image_store) == []  # once
        # The same photo uploaded again is present again.
        image_store.put(b"unrated")
        image = await q.add_image(s, sha256=gone.sha256, size_bytes=7, width=4, height=3, mime="image/jpeg")
        assert image.id == gone.image_id and image.purged_at is None


# --- model versions ----------------------------------------------------------------------------


async def test_promotion_leaves_exactly_one_promoted(session_factory: Factory) -> None:
    async with session_factory.begin() as s:
        v1 = await q.register_model_version(s, name="v1", path="/m/v1.pt", sha256="1" * 64, metrics={"cider": 0.5})
        v2 = await q.register_model_version(s, name="v2", path="/m/v2.pt", metrics={"cider": 0.6})
        assert v1.status == ModelStatus.CANDIDATE and await q.current_model_version(s) is None
        again = await q.register_model_version(s, name="v1", path="/m/v1.pt", metrics={"cider": 0.55})
        assert again.id == v1.id and again.metrics == {"cider": 0.55}
        with pytest.raises(ValueError):
            await q.register_model_version(s, name="v1", path="/m/other.pt", sha256="2" * 64)
        await q.promote_model_version(s, model_version_id=v1.id)
        assert (await q.current_model_version(s)).id == v1.id  # type: ignore[union-attr]
    for _ in range(2):  # promoting the promoted one again changes nothing
        async with session_factory.begin() as s:
            await q.promote_model_version(s, model_version_id=v2.id)
    async with session_factory() as s:
        statuses = {name: status for name, status in await s.execute(select(ModelVersion.name, ModelVersion.status))}
        assert statuses == {"v1": ModelStatus.RETIRED, "v2": ModelStatus.PROMOTED}
        current = await q.current_model_version(s)
        assert current is not None and current.id == v2.id and current.promoted_at is not None
        assert (await q.get_model_version(s, name="v1")).id == v1.id  # type: ignore[union-attr]
        with pytest.raises(LookupError):
            await q.promote_model_version(s, model_version_id=10_000)
    # The database itself refuses a second promoted version.
    with pytest.raises(IntegrityError):
        async with session_factory.begin() as s:
            await s.execute(update(ModelVersion).where(ModelVersion.id == v1.id).values(status=ModelStatus.PROMOTED))


# --- image store -------------------------------------------------------------------------------


def test_image_store_is_content_addressed_and_atomic(image_store: ImageStore) -> None:
    data = b"\xff\xd8 not really a jpeg"
    digest = image_store.put(data)
    assert digest == sha256_hex(data)
    path = image_store.path(digest)
    assert path == image_store.root / digest[:2] / digest[2:4] / digest
    assert image_store.put(data) == digest  # idempotent
    assert image_store.read(digest) == data and image_store.exists(digest)
    assert list(image_store) == [digest]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
    assert image_store.delete(digest) is True and image_store.delete(digest) is False
    assert not image_store.exists(digest)
    with pytest.raises(FileNotFoundError):
        image_store.read(digest)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 64 + "/x", "", "g" * 64])
def test_image_store_rejects_anything_but_a_digest(image_store: ImageStore, bad: str) -> None:
    with pytest.raises(InvalidDigestError):
        image_store.path(bad)


async def test_image_store_async_helpers(image_store: ImageStore) -> None:
    digest = await image_store.aput(b"abc")
    assert await image_store.aread(digest) == b"abc"
    assert await image_store.adelete(digest)


# --- storage settings --------------------------------------------------------------------------


def test_settings_derive_storage_paths_and_read_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("CAPTIONBOT_DATABASE_URL", "CAPTIONBOT_IMAGE_STORE_DIR", "CAPTIONBOT_TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAPTIONBOT_DATA_DIR", "/srv/cb")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:tg-hunter2")
    monkeypatch.setenv("CAPTIONBOT_DISCORD_BOT_TOKEN", "dc-hunter2")
    monkeypatch.setenv("CAPTIONBOT_DISCORD_GUILD_IDS", "1, 2")
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:////srv/cb/captionbot.db"
    assert str(settings.image_store_dir) == "/srv/cb/images"
    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == "123:tg-hunter2"
    assert settings.discord_bot_token.get_secret_value() == "dc-hunter2"  # type: ignore[union-attr]
    assert settings.discord_guild_ids == [1, 2]
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)

    monkeypatch.setenv("CAPTIONBOT_DATABASE_URL", "postgresql://bot:pw@db/captionbot")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://bot:pw@db/captionbot"
    assert "pw" not in repr(settings)

    rows = {row.name: row for row in Settings.describe()}
    assert rows["telegram_bot_token"].env_var == "TELEGRAM_BOT_TOKEN or CAPTIONBOT_TELEGRAM_BOT_TOKEN"
    assert rows["database_url"].default == "sqlite+aiosqlite:///{data_dir}/captionbot.db"
    assert rows["batch_size"].env_var == "CAPTIONBOT_BATCH_SIZE" and rows["batch_size"].default == "16"
    assert all(row.description for row in rows.values())
