"""LearningService on SQLite and PostgreSQL: the round lease, finishing a round atomically, the
feedback a round may use, reviews, rollback and the per-version report."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.service import (
    CandidateModel,
    LearningService,
    LeaseLostError,
    NothingToRollBackError,
    RoundBusyError,
    RoundLease,
)
from captionbot.settings import Settings
from captionbot.storage import learning
from captionbot.storage.db import create_engine, make_session_factory
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import utcnow
from tests.learning_seed import feedback, forget, mark_purged, opt_out, person, photo, version

Factory = async_sessionmaker[AsyncSession]
LEASE_S = 60


class Clock:
    """The service's ``now``: real time plus an offset a test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


def _service(factory: Factory, store: ImageStore, tmp_path: Path, clock: Clock | None = None) -> LearningService:
    settings = Settings(_env_file=None, data_dir=tmp_path, learn_lease_s=LEASE_S)
    return LearningService(settings, factory, store, now=clock or Clock())


def _absolute_file_bytes(path: str) -> bytes:
    assert Path(path).is_absolute()
    return Path(path).read_bytes()


def _candidate(name: str) -> CandidateModel:
    return CandidateModel(name=name, path=f"/models/{name}.pt", sha256=name * 4, metrics={"cider": 0.5})


async def test_one_round_at_a_time_and_a_silent_one_is_taken_over(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    clock = Clock()
    service = _service(session_factory, image_store, tmp_path, clock)
    first = await service.begin_round(holder="box-1")
    assert (first.number, first.base_model, first.fixed_photos) == (1, None, [])
    with pytest.raises(RoundBusyError) as busy:
        await service.begin_round(holder="box-2")
    assert busy.value.holder == "box-1" and busy.value.started_at == first.started_at

    clock.offset = timedelta(seconds=LEASE_S - 5)
    await service.heartbeat(first.round_id)  # alive: the lease runs from here
    clock.offset = timedelta(seconds=2 * LEASE_S - 10)
    with pytest.raises(RoundBusyError):
        await service.begin_round(holder="box-2")

    clock.offset = timedelta(seconds=2 * LEASE_S)  # silent for longer than the lease
    second = await service.begin_round(holder="box-2")
    assert second.number == 2
    old = (await service.rounds())[1]
    assert old.status == "abandoned" and old.decision.startswith("abandoned: no heartbeat since")
    with pytest.raises(LeaseLostError):
        await service.heartbeat(first.round_id)
    with pytest.raises(LeaseLostError):  # the late finisher registers nothing
        await service.finish_round(
            first.round_id, counts={}, metrics={}, decision="late", candidate=_candidate("late"), promote=True
        )
    with pytest.raises(LeaseLostError):
        await service.record_fixed_photos(first.round_id, ["a"])
    assert await service.model_versions() == [] and await service.promoted_model() is None
    await service.fail_round(first.round_id, reason="too late")  # no-op: it is not running
    assert (await service.rounds())[1].status == "abandoned"
    await service.fail_round(second.round_id, reason="out of memory")
    last = await service.last_round()
    assert last is not None and (last.status, last.decision, last.holder) == ("failed", "out of memory", "box-2")
    assert last.finished_at is not None


async def test_two_machines_begin_at_once_one_wins(
    migrated_db_url: str, image_store: ImageStore, tmp_path: Path
) -> None:
    engines = [create_engine(migrated_db_url), create_engine(migrated_db_url)]
    try:
        services = [_service(make_session_factory(e), image_store, tmp_path) for e in engines]
        for attempt in range(3):
            results = await asyncio.gather(
                *(s.begin_round(holder=f"box-{i}") for i, s in enumerate(services)), return_exceptions=True
            )
            won = [r for r in results if isinstance(r, RoundLease)]
            lost = [r for r in results if isinstance(r, RoundBusyError)]
            assert (len(won), len(lost)) == (1, 1), results
            assert won[0].number == attempt + 1
            await services[0].fail_round(won[0].round_id, reason="next attempt")
    finally:
        for e in engines:
            await e.dispose()


async def test_losing_the_race_to_insert_is_busy_too(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another machine inserts its round between our check and our insert: the index says no."""
    service = _service(session_factory, image_store, tmp_path)
    await service.begin_round(holder="box-1")
    real = learning.running_round
    calls = 0

    async def blind_first(session: AsyncSession) -> object:
        nonlocal calls
        calls += 1
        return None if calls == 1 else await real(session)

    monkeypatch.setattr(learning, "running_round", blind_first)
    with pytest.raises(RoundBusyError) as busy:
        await service.begin_round(holder="box-2")
    assert busy.value.holder == "box-1" and calls == 2


async def test_finish_round_registers_and_promotes_together(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    service = _service(session_factory, image_store, tmp_path)
    await version(session_factory, "base", promote=True)
    lease = await service.begin_round(holder="box-1")
    assert lease.base_model is not None and lease.base_model.name == "base"
    await service.record_fixed_photos(lease.round_id, ["a" * 64, "b" * 64])
    record = await service.finish_round(
        lease.round_id,
        counts={"corrections": 3},
        metrics={"cider": 0.61},
        decision="promoted: CIDEr-D 0.61 >= 0.60",
        candidate=_candidate("r1"),
        promote=True,
    )
    assert (record.status, record.base_model, record.candidate) == ("promoted", "base", "r1")
    assert (record.counts, record.metrics, record.decision) == (
        {"corrections": 3},
        {"cider": 0.61},
        "promoted: CIDEr-D 0.61 >= 0.60",
    )
    promoted = await service.promoted_model()
    assert promoted is not None and (promoted.name, promoted.path) == ("r1", "/models/r1.pt")
    with pytest.raises(LeaseLostError):  # finished: the lease is gone
        await service.heartbeat(lease.round_id)

    lease2 = await service.begin_round(holder="box-1")
    assert lease2.fixed_photos == ["a" * 64, "b" * 64]  # the frozen set of the first round
    assert lease2.base_model is not None and lease2.base_model.name == "r1"
    rejected = await service.finish_round(
        lease2.round_id, counts={}, metrics={}, decision="rejected", candidate=_candidate("r2"), promote=False
    )
    assert (rejected.status, rejected.candidate) == ("rejected", "r2")
    assert (await service.promoted_model()).name == "r1"  # type: ignore[union-attr]
    rows = {v.name: v for v in await service.model_versions()}
    assert [v for v in rows] == ["base", "r1", "r2"]
    assert (rows["base"].status, rows["base"].round_number) == ("retired", None)
    assert (rows["r1"].status, rows["r1"].round_number, rows["r1"].round_status) == ("promoted", 1, "promoted")
    assert (rows["r2"].status, rows["r2"].round_decision, rows["r2"].metrics) == (
        "candidate",
        "rejected",
        {"cider": 0.5},
    )
    assert [r.number for r in await service.rounds()] == [2, 1]
    assert [r.number for r in await service.rounds(limit=1)] == [2]

    lease3 = await service.begin_round(holder="box-1")
    no_candidate = await service.finish_round(
        lease3.round_id, counts={"usable": 0}, metrics={}, decision="nothing to learn", candidate=None, promote=False
    )
    assert (no_candidate.status, no_candidate.candidate) == ("rejected", None)


async def test_usable_feedback_leaves_out_who_and_what_it_must(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    service = _service(session_factory, image_store, tmp_path)
    v1 = await version(session_factory, "v1", promote=True)
    _, a = await photo(session_factory, image_store, requester="ann", name="a", caption="a dog", model_version_id=v1)
    sha_b, b = await photo(session_factory, image_store, requester="ann", name="b")
    _, c = await photo(session_factory, image_store, requester="carol", name="c")  # carol opts out
    _, d = await photo(session_factory, image_store, requester="erin", name="d")  # erin is forgotten
    sha_e, e = await photo(session_factory, image_store, requester="ann", name="e")  # purged
    sha_f, f = await photo(session_factory, image_store, requester="ann", name="f")  # file missing
    ann_a = await feedback(session_factory, a, "ann", rating=-1)
    bob_a = await feedback(session_factory, a, "bob", rating=1, correction="a brown dog")
    ann_b = await feedback(session_factory, b, "ann", correction="a cat")
    await feedback(session_factory, a, "dave", correction="dave's words")  # dave opts out
    await feedback(session_factory, a, "erin", rating=1)
    await feedback(session_factory, a, "fay", rating=None)  # nothing given
    for caption in (c, d, e, f):
        await feedback(session_factory, caption, "bob", rating=1)
    await opt_out(session_factory, "carol")
    await opt_out(session_factory, "dave")
    await forget(session_factory, image_store, "erin")
    await mark_purged(session_factory, image_store, sha_e)
    image_store.delete(sha_f)

    items = await service.usable_feedback()
    assert [i.feedback_id for i in items] == [ann_a, bob_a, ann_b]
    bob = items[1]
    assert bob.person == await person(session_factory, "bob")
    assert (bob.caption_id, bob.caption_text, bob.model_version) == (a, "a dog", "v1")
    assert (bob.rating, bob.correction, bob.review, bob.new) == (1, "a brown dog", None, True)
    assert items[2].image_sha256 == sha_b and items[2].model_version is None
    assert _absolute_file_bytes(items[2].image_path) == b"photo b"
    assert await service.new_feedback_count() == 3


async def test_new_means_after_the_last_promoted_round(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    service = _service(session_factory, image_store, tmp_path)
    _, a = await photo(session_factory, image_store, requester="ann", name="a")
    old = await feedback(session_factory, a, "ann", rating=1)
    lease = await service.begin_round(holder="box-1")
    await service.finish_round(
        lease.round_id, counts={}, metrics={}, decision="ok", candidate=_candidate("r1"), promote=True
    )
    fresh = await feedback(session_factory, a, "bob", correction="a dog")
    lease = await service.begin_round(holder="box-1")  # a rejected round moves nothing
    await service.finish_round(lease.round_id, counts={}, metrics={}, decision="no", candidate=None, promote=False)
    assert {i.feedback_id: i.new for i in await service.usable_feedback()} == {old: False, fresh: True}
    assert await service.new_feedback_count() == 1
    await feedback(session_factory, a, "ann", rating=-1)  # changed: new again
    assert await service.new_feedback_count() == 2


async def test_review_corrections(session_factory: Factory, image_store: ImageStore, tmp_path: Path) -> None:
    service = _service(session_factory, image_store, tmp_path)
    sha, a = await photo(session_factory, image_store, requester="ann", name="a", caption="a dog")
    _, b = await photo(session_factory, image_store, requester="ann", name="b")
    good = await feedback(session_factory, a, "bob", correction="a brown dog")
    bad = await feedback(session_factory, b, "cy", correction="spam spam")
    rating = await feedback(session_factory, a, "ann", rating=1)
    waiting = await service.corrections_to_review()
    assert [(w.feedback_id, w.correction, w.caption_text, w.image_sha256) for w in waiting][:1] == [
        (good, "a brown dog", "a dog", sha)
    ]
    assert [w.feedback_id for w in waiting] == [good, bad]
    assert [w.feedback_id for w in await service.corrections_to_review(limit=1)] == [good]
    assert await service.review([good, rating], approve=True) == 1
    assert await service.review([bad], approve=False) == 1
    assert await service.corrections_to_review() == []
    reviews = {i.feedback_id: i.review for i in await service.usable_feedback()}
    assert reviews == {good: "approved", bad: "rejected", rating: None}
    await feedback(session_factory, b, "cy", correction="a red bus")  # new text: judged again
    assert [w.feedback_id for w in await service.corrections_to_review()] == [bad]


async def test_rollback(session_factory: Factory, image_store: ImageStore, tmp_path: Path) -> None:
    service = _service(session_factory, image_store, tmp_path)
    with pytest.raises(NothingToRollBackError):
        await service.rollback()
    await version(session_factory, "v1", promote=True)
    with pytest.raises(NothingToRollBackError):
        await service.rollback()
    await version(session_factory, "never-promoted")
    await version(session_factory, "v2", promote=True)
    await version(session_factory, "v3", promote=True)
    was, now = await service.rollback()
    assert (was.name, now.name) == ("v3", "v2")
    assert (await service.promoted_model()).name == "v2"  # type: ignore[union-attr]
    statuses = {v.name: v.status for v in await service.model_versions()}
    # v3 leaves the line of served versions, so a second rollback steps further back, not to v3.
    assert statuses == {"v1": "retired", "never-promoted": "candidate", "v2": "promoted", "v3": "candidate"}
    was, now = await service.rollback()
    assert (was.name, now.name) == ("v2", "v1")
    with pytest.raises(NothingToRollBackError):
        await service.rollback()


async def test_model_report(session_factory: Factory, image_store: ImageStore, tmp_path: Path) -> None:
    service = _service(session_factory, image_store, tmp_path)
    v1 = await version(session_factory, "v1", promote=True)
    await version(session_factory, "v2")
    _, a = await photo(session_factory, image_store, requester="ann", name="a", model_version_id=v1)
    _, b = await photo(session_factory, image_store, requester="ann", name="b", model_version_id=v1)
    await photo(session_factory, image_store, requester="ann", name="c", model_version_id=v1)
    await photo(session_factory, image_store, requester="ann", name="d")  # no registered version
    await feedback(session_factory, a, "ann", rating=1)  # +1
    await feedback(session_factory, a, "bob", rating=5)  # +1
    await feedback(session_factory, b, "ann", rating=-1, correction="a cat")  # -1
    await feedback(session_factory, b, "bob", rating=2)  # -0.5
    await feedback(session_factory, b, "cy", correction="a small cat")  # not rated
    report = await service.model_report()
    assert [u.name for u in report] == ["v1", "v2"]
    one, two = report
    assert (one.status, one.captions, one.rated, one.corrections) == ("promoted", 3, 4, 2)
    assert one.mean_rating == pytest.approx(0.125) and one.correction_rate == pytest.approx(2 / 3)
    assert one.promoted_at is not None
    assert (two.status, two.captions, two.rated, two.mean_rating, two.corrections, two.correction_rate) == (
        "candidate",
        0,
        0,
        None,
        0,
        None,
    )
