"""captionbot.storage.users: users and chats, per-user stats, opting out and forgetting a user."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from captionbot.jobs import ErrorCode
from captionbot.storage import captions, deliveries, jobs, model_versions, users
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import CaptionRequest, ChatKind, Feedback, Image, Platform, RequestStatus, User
from tests.storage.helpers import Factory, captioned, claim, count, request_row, seed


async def test_get_or_create_user_and_chat_are_idempotent(session_factory: Factory) -> None:
    async with session_factory.begin() as s:
        a = await users.get_or_create_user(s, platform="telegram", platform_user_id=123, display_name="Ann")
        b = await users.get_or_create_user(s, platform=Platform.TELEGRAM, platform_user_id="123")
        other = await users.get_or_create_user(s, platform=Platform.DISCORD, platform_user_id="123")
        assert a.id == b.id != other.id
        assert b.display_name == "Ann"  # None leaves the name alone
        renamed = await users.get_or_create_user(s, platform="telegram", platform_user_id="123", display_name="Anna")
        assert renamed.id == a.id and renamed.display_name == "Anna"
        c1 = await users.get_or_create_chat(s, platform="discord", platform_chat_id=9, kind="guild")
        c2 = await users.get_or_create_chat(s, platform="discord", platform_chat_id="9", kind=ChatKind.DM)
        assert c1.id == c2.id and c2.kind == ChatKind.GUILD and c2.autocaption is False
        assert not await users.chat_autocaption(s, platform="discord", platform_chat_id=9)
        await users.set_chat_autocaption(s, chat_id=c1.id, enabled=True)
        assert a.created_at.tzinfo is not None
    async with session_factory() as s:
        assert (await users.get_user(s, platform="telegram", platform_user_id=123)).display_name == "Anna"  # type: ignore[union-attr]
        assert await users.get_user(s, platform="telegram", platform_user_id=999) is None
        assert await users.chat_autocaption(s, platform="discord", platform_chat_id="9")
        assert not await users.chat_autocaption(s, platform="discord", platform_chat_id="10")  # unknown chat
    assert await count(session_factory, User) == 2


async def test_concurrent_get_or_create_user_makes_one_row(session_factory: Factory) -> None:
    async def create() -> int:
        async with session_factory.begin() as s:
            return (await users.get_or_create_user(s, platform="discord", platform_user_id="55")).id

    ids = await asyncio.gather(create(), create(), create())
    assert len(set(ids)) == 1
    assert await count(session_factory, User) == 1


# --- stats -------------------------------------------------------------------------------------


async def test_user_stats_and_totals(session_factory: Factory) -> None:
    seeded, caption_id = await captioned(session_factory)
    async with session_factory.begin() as s:
        await captions.set_feedback(s, caption_id=caption_id, user_id=seeded.user_id, rating=1, correction="a cat")
        stats = await users.user_stats(s, user_id=seeded.user_id)
        assert stats == users.UserStats(requests=1, captions=1, ratings=1, corrections=1)
        empty = await users.user_stats(s, user_id=10_000)
        assert empty == users.UserStats() and empty.requests == 0
        # What the removed global_stats summed up, through the functions that remain.
        assert await s.scalar(select(func.count()).select_from(User)) == 1
        assert (await request_row(s, seeded.request_id)).status == RequestStatus.DONE  # type: ignore[union-attr]
        assert await jobs.count_pending(s) == 0
        assert await captions.count_captions(s) == 1
        assert await captions.feedback_totals(s, caption_id=caption_id) == (1, 1)  # one rating, averaging +1
        assert await model_versions.current_model_version(s) is None
        assert await model_versions.serving_model_name(s) is None


async def test_user_stats_count_pending_and_failed_requests_and_the_opt_out(session_factory: Factory) -> None:
    done, _ = await captioned(session_factory, photo=b"done")
    queued = await seed(session_factory, photo=b"queued")
    broken = await seed(session_factory, photo=b"broken")
    assert done.user_id == queued.user_id == broken.user_id
    async with session_factory.begin() as s:
        assert await claim(s, broken)
        assert not await jobs.fail_request(
            s, request_id=broken.request_id, code=ErrorCode.BAD_IMAGE, message="no", max_attempts=3, permanent=True
        )
        assert await users.set_training_opt_out(s, user_id=done.user_id, opt_out=True)
    expected = users.UserStats(requests=3, captions=1, pending=1, failed=1, opted_out=True)
    async with session_factory.begin() as s:
        assert await users.user_stats(s, user_id=done.user_id) == expected
        for delivered in (done, broken):  # delivering a result changes none of the counts
            assert await deliveries.mark_delivered(s, request_id=delivered.request_id)
        assert await users.user_stats(s, user_id=done.user_id) == expected
        assert await users.set_training_opt_out(s, user_id=done.user_id, opt_out=False)
        assert not await users.set_training_opt_out(s, user_id=10_000, opt_out=True)  # no such user
        assert (await users.user_stats(s, user_id=queued.user_id)).opted_out is False


# --- forgetting a user -------------------------------------------------------------------------


async def test_forget_user_removes_rows_and_files_but_keeps_shared_photos(
    session_factory: Factory, image_store: ImageStore
) -> None:
    alice, alice_caption = await captioned(session_factory, image_store, user="alice", photo=b"alice only")
    alice_shared, _ = await captioned(session_factory, image_store, user="alice", photo=b"shared")
    bob, bob_caption = await captioned(session_factory, image_store, user="bob", photo=b"shared")
    assert alice_shared.sha256 == bob.sha256 and alice_shared.image_id == bob.image_id
    async with session_factory.begin() as s:
        await captions.set_feedback(s, caption_id=bob_caption, user_id=alice.user_id, rating=1)  # alice rates bob
        await captions.set_feedback(s, caption_id=alice_caption, user_id=bob.user_id, rating=-1)  # bob rates alice
        await captions.set_feedback(s, caption_id=bob_caption, user_id=bob.user_id, rating=1)

    async with session_factory.begin() as s:
        report = await users.forget_user(s, user_id=alice.user_id, image_store=image_store)
        assert image_store.exists(alice.sha256)  # files go only once the deletion is committed
    assert report == users.ForgetReport(
        requests=2, captions=2, feedback=2, images=1, image_files=[alice.sha256], user_deleted=True
    )
    assert report.found
    assert not image_store.exists(alice.sha256)
    assert image_store.exists(bob.sha256)

    async with session_factory() as s:
        assert await s.get(User, alice.user_id) is None
        assert await s.scalar(select(func.count()).where(CaptionRequest.requester_id == alice.user_id)) == 0
        assert await s.scalar(select(Image.id).where(Image.sha256 == alice.sha256)) is None
        assert await s.scalar(select(Image.id).where(Image.sha256 == bob.sha256)) == bob.image_id
        remaining = (await s.scalars(select(Feedback))).all()
        assert [(f.caption_id, f.user_id) for f in remaining] == [(bob_caption, bob.user_id)]
        bob_request = await request_row(s, bob.request_id)
        assert bob_request is not None and bob_request.status == RequestStatus.DONE
        assert await captions.caption_for_request(s, request_id=bob.request_id) is not None


async def test_forget_user_keeps_an_opted_out_user_row_and_rollback_keeps_files(
    session_factory: Factory, image_store: ImageStore
) -> None:
    seeded, _ = await captioned(session_factory, image_store, user="carol", photo=b"carol")
    async with session_factory.begin() as s:
        assert await users.set_training_opt_out(s, user_id=seeded.user_id, opt_out=True)

    with pytest.raises(RuntimeError, match="changed my mind"):
        async with session_factory.begin() as s:
            await users.forget_user(s, user_id=seeded.user_id, image_store=image_store)
            raise RuntimeError("changed my mind")
    assert image_store.exists(seeded.sha256)
    assert await count(session_factory, CaptionRequest) == 1

    async with session_factory.begin() as s:
        report = await users.forget_user(s, user_id=seeded.user_id, image_store=image_store)
    assert report.found and report.user_deleted is False and report.requests == 1
    assert not image_store.exists(seeded.sha256)
    async with session_factory() as s:
        user = await s.get(User, seeded.user_id)
        assert user is not None and user.training_opt_out and user.display_name is None
        # Nothing stored about an unknown id: an empty report that says so.
        assert await users.forget_user(s, user_id=10_000, image_store=image_store) == users.ForgetReport(found=False)
