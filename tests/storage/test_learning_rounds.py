"""Learning rounds and reviews in storage, on SQLite and PostgreSQL: one running round (the
database's partial unique index), conditional ends, the fixed set, and corrections' reviews."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.storage import learning
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.learning_models import LearningRound, RoundStatus
from captionbot.storage.models import Feedback, utcnow
from tests.learning_seed import feedback, mark_purged, opt_out, photo

Factory = async_sessionmaker[AsyncSession]


async def _start(factory: Factory, holder: str = "box-1") -> LearningRound:
    async with factory.begin() as s:
        return await learning.start_round(s, holder=holder, now=utcnow(), base_model_version_id=None)


async def test_only_one_round_runs_at_a_time(session_factory: Factory) -> None:
    first = await _start(session_factory)
    assert (first.number, first.status) == (1, RoundStatus.RUNNING)
    with pytest.raises(IntegrityError):
        await _start(session_factory, "box-2")
    async with session_factory.begin() as s:
        assert await learning.end_round(s, round_id=first.id, status=RoundStatus.FAILED, now=utcnow(), decision="x")
        assert not await learning.end_round(  # ended once: never twice
            s, round_id=first.id, status=RoundStatus.PROMOTED, now=utcnow(), decision="y"
        )
    second = await _start(session_factory, "box-2")  # finished rounds don't count
    assert second.number == 2
    async with session_factory() as s:
        assert (await learning.running_round(s)) is not None
        assert (await learning.get_round(s, round_id=first.id)).decision == "x"  # type: ignore[union-attr]


async def test_abandon_only_a_round_still_silent(session_factory: Factory) -> None:
    row = await _start(session_factory)
    silent_since = row.heartbeat_at
    async with session_factory.begin() as s:
        assert await learning.touch_round(s, round_id=row.id, now=silent_since + timedelta(seconds=5))
    async with session_factory.begin() as s:  # it sent a heartbeat since we looked: not abandoned
        assert not await learning.abandon_round(
            s, round_id=row.id, heartbeat_at=silent_since, decision="abandoned", now=utcnow()
        )
    async with session_factory.begin() as s:
        assert await learning.abandon_round(
            s, round_id=row.id, heartbeat_at=silent_since + timedelta(seconds=5), decision="abandoned", now=utcnow()
        )
    async with session_factory.begin() as s:
        assert not await learning.touch_round(s, round_id=row.id, now=utcnow())
        assert not await learning.set_round_inputs(s, round_id=row.id, inputs={"fixed_photos": ["a"]})
        got = await learning.get_round(s, round_id=row.id)
        assert got is not None and got.status == RoundStatus.ABANDONED and got.finished_at is not None


async def test_the_first_recorded_fixed_set_stays(session_factory: Factory) -> None:
    async with session_factory() as s:
        assert await learning.fixed_photos(s) == []
    first = await _start(session_factory)
    async with session_factory.begin() as s:
        assert await learning.set_round_inputs(s, round_id=first.id, inputs={"fixed_photos": ["a", "b"]})
        await learning.end_round(s, round_id=first.id, status=RoundStatus.REJECTED, now=utcnow(), decision="")
    second = await _start(session_factory)
    async with session_factory.begin() as s:
        await learning.set_round_inputs(s, round_id=second.id, inputs={"fixed_photos": ["c"]})
        assert await learning.fixed_photos(s) == ["a", "b"]


async def test_changing_a_correction_clears_its_review(session_factory: Factory, image_store: ImageStore) -> None:
    _, caption = await photo(session_factory, image_store, requester="ann", name="p1")
    fid = await feedback(session_factory, caption, "bob", correction="a dog")
    _, other = await photo(session_factory, image_store, requester="ann", name="p2")
    rating_only = await feedback(session_factory, other, "bob", rating=1)
    async with session_factory.begin() as s:
        before = await s.get(Feedback, fid)
        assert before is not None
        updated_at = before.updated_at
        assert await learning.set_review(s, feedback_ids=[fid, rating_only], review="approved") == 1
        with pytest.raises(ValueError):
            await learning.set_review(s, feedback_ids=[fid], review="maybe")

    async def state() -> tuple[str | None, object]:
        async with session_factory() as s:
            row = await s.get(Feedback, fid, populate_existing=True)
            assert row is not None
            return row.review, row.updated_at

    assert await state() == ("approved", updated_at)  # a verdict is not new feedback
    await feedback(session_factory, caption, "bob", rating=-1)  # the rating alone: the verdict stands
    await feedback(session_factory, caption, "bob", correction="  a dog ")  # same text once stripped
    assert (await state())[0] == "approved"
    await feedback(session_factory, caption, "bob", correction="a brown dog")
    assert (await state())[0] is None
    async with session_factory() as s:
        assert (await s.get(Feedback, rating_only)).review is None  # type: ignore[union-attr]


async def test_feedback_rows_leave_out_opt_outs_and_purged_photos(
    session_factory: Factory, image_store: ImageStore
) -> None:
    _, kept = await photo(session_factory, image_store, requester="ann", name="kept")
    sha_gone, gone = await photo(session_factory, image_store, requester="ann", name="gone")
    _, carols = await photo(session_factory, image_store, requester="carol", name="carol")
    keep_id = await feedback(session_factory, kept, "ann", rating=-1)
    await feedback(session_factory, kept, "dave", correction="dave's words")
    await feedback(session_factory, kept, "erin", rating=None)  # neither rating nor correction
    await feedback(session_factory, gone, "ann", rating=1)
    await feedback(session_factory, carols, "ann", rating=1)
    await opt_out(session_factory, "carol")
    await opt_out(session_factory, "dave")
    await mark_purged(session_factory, image_store, sha_gone)
    async with session_factory() as s:
        rows = await learning.feedback_rows(s)
    assert [row.id for row in rows] == [keep_id]
    assert rows[0].rating == -1 and rows[0].model_version is None and rows[0].review is None
