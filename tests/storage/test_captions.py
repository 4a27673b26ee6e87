"""captionbot.storage.captions: stored captions, feedback (one per user per caption) and training pairs."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from captionbot.storage import captions, jobs, users
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import Feedback
from tests.storage.helpers import Factory, captioned, claim, count, seed


async def test_a_captions_band_hint_and_labels_are_stored(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    labels = [{"label": "tabby", "word": "cat", "p": 0.71}, {"label": "Egyptian cat", "word": "cat", "p": 0.1}]
    async with session_factory.begin() as s:
        assert await claim(s, seeded)
        await jobs.complete_request(
            s,
            request_id=seeded.request_id,
            text="a dog in the water",
            confidence=0.2,
            band="unsure",
            hint="a cat",
            labels=labels,
        )
    async with session_factory() as s:
        caption = await captions.caption_for_request(s, request_id=seeded.request_id)
        assert caption is not None
        assert (caption.band, caption.hint, caption.labels) == ("unsure", "a cat", labels)


async def _feedback_of(s: AsyncSession, caption_id: int, user_id: int) -> Feedback | None:
    return await s.scalar(select(Feedback).where(Feedback.caption_id == caption_id, Feedback.user_id == user_id))


async def test_feedback_is_one_per_user_per_caption_and_changeable(session_factory: Factory) -> None:
    seeded, caption_id = await captioned(session_factory)
    async with session_factory.begin() as s:
        other = await users.get_or_create_user(s, platform="telegram", platform_user_id="other")
        fb = await captions.set_feedback(s, caption_id=caption_id, user_id=seeded.user_id, rating=1)
        assert (fb.rating, fb.correction) == (1, None)
        fb2 = await captions.set_feedback(s, caption_id=caption_id, user_id=seeded.user_id, correction="  a red cat ")
        assert fb2.id == fb.id and (fb2.rating, fb2.correction) == (1, "a red cat")  # rating kept
        fb3 = await captions.set_feedback(s, caption_id=caption_id, user_id=seeded.user_id, rating=-1)
        assert fb3.id == fb.id and (fb3.rating, fb3.correction) == (-1, "a red cat")
        assert fb3.updated_at >= fb3.created_at
        await captions.set_feedback(s, caption_id=caption_id, user_id=other.id, rating=1)
        with pytest.raises(ValueError):
            await captions.set_feedback(s, caption_id=caption_id, user_id=other.id)
        assert await captions.feedback_totals(s, caption_id=caption_id) == (2, 0)  # -1 and +1
    async with session_factory.begin() as s:
        cleared = await captions.set_feedback(
            s, caption_id=caption_id, user_id=seeded.user_id, correction="", rating=None
        )
        assert (cleared.rating, cleared.correction) == (None, None)
        got = await _feedback_of(s, caption_id, seeded.user_id)
        assert got is not None and got.id == fb.id
        assert await _feedback_of(s, caption_id, 10_000) is None
        assert await captions.feedback_totals(s, caption_id=caption_id) == (1, 1)  # a cleared rating counts no more
    assert await count(session_factory, Feedback) == 2


async def test_feedback_unique_constraint_holds_in_the_database(session_factory: Factory) -> None:
    seeded, caption_id = await captioned(session_factory)
    with pytest.raises(IntegrityError):
        async with session_factory.begin() as s:
            s.add_all(
                [
                    Feedback(caption_id=caption_id, user_id=seeded.user_id, rating=1),
                    Feedback(caption_id=caption_id, user_id=seeded.user_id, rating=-1),
                ]
            )


async def test_training_examples_honour_opt_out(session_factory: Factory, image_store: ImageStore) -> None:
    a, a_caption = await captioned(session_factory, image_store, user="a", photo=b"a")
    b, b_caption = await captioned(session_factory, image_store, user="b", photo=b"b")
    c, c_caption = await captioned(session_factory, image_store, user="c", photo=b"c")
    async with session_factory.begin() as s:
        rater = await users.get_or_create_user(s, platform="telegram", platform_user_id="rater")
        await captions.set_feedback(s, caption_id=a_caption, user_id=a.user_id, rating=1)  # good as is
        await captions.set_feedback(s, caption_id=b_caption, user_id=b.user_id, rating=-1, correction="a blue bike")
        await captions.set_feedback(s, caption_id=c_caption, user_id=c.user_id, rating=-1)  # bad, no fix: unused
        await captions.set_feedback(s, caption_id=c_caption, user_id=rater.id, rating=1)

    async with session_factory() as s:
        examples = await captions.training_examples(s)
        got = {(e.image_sha256, e.text, e.source) for e in examples}
        assert got == {
            (a.sha256, f"a photo by {a.user_id}", "rating"),
            (b.sha256, "a blue bike", "correction"),
            (c.sha256, f"a photo by {c.user_id}", "rating"),
        }
        assert len(await captions.training_examples(s, min_rating=None)) == 4
        assert len(await captions.training_examples(s, limit=1)) == 1

    async with session_factory.begin() as s:
        await users.set_training_opt_out(s, user_id=b.user_id, opt_out=True)  # b's photo and fix: out
        await users.set_training_opt_out(s, user_id=rater.id, opt_out=True)  # the rater's vote: out
    async with session_factory() as s:
        left = {(e.image_sha256, e.source) for e in await captions.training_examples(s)}
        assert left == {(a.sha256, "rating")}
