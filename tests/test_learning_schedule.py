"""When a learning round is due, and the learner loop that starts one: on a real LearningService
(SQLite, feedback seeded through the storage functions) with stand-in rounds. Time is a fake clock
moved by an injected pause; nothing here sleeps to wait for something to happen."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.service import LearningService
from captionbot.service.learning_results import RoundRecord
from captionbot.settings import Settings
from captionbot.storage import captions, jobs, users
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import utcnow
from training.learning.schedule import learner_loop, round_due

Factory = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _settings(tmp_path: Path, **values: Any) -> Settings:
    values = {"learn_every_items": 200, "learn_every_hours": 24.0, "learn_check_s": 60.0} | values
    return Settings(_env_file=None, data_dir=tmp_path, **values)


def _record(number: int = 7, status: str = "promoted", *, ended: datetime = T0, **counts: Any) -> RoundRecord:
    return RoundRecord(
        id=number, number=number, status=status, holder="host:1", started_at=ended - timedelta(hours=1),
        finished_at=None if status == "running" else ended, base_model=None, candidate=None,
        counts=counts, metrics={}, decision="",
    )  # fmt: skip


# --- round_due ------------------------------------------------------------------------------------


def test_due_by_count(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert round_due(s, new_items=212, last=_record(), now=T0) == "212 new feedback items (every 200)"
    assert round_due(s, new_items=199, last=_record(), now=T0 + timedelta(hours=1)) is None
    off = _settings(tmp_path, learn_every_items=0, learn_every_hours=0)
    assert round_due(off, new_items=10_000, last=_record(), now=T0 + timedelta(days=30)) is None


def test_due_by_time_only_with_new_items(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    later = T0 + timedelta(hours=24)
    assert round_due(s, new_items=12, last=_record(7), now=later) == "24 h since round 7 and 12 new items"
    assert round_due(s, new_items=12, last=_record(7), now=later - timedelta(minutes=1)) is None
    assert round_due(s, new_items=0, last=_record(7), now=later + timedelta(days=9)) is None
    assert round_due(s, new_items=3, last=None, now=T0) == "no round yet and 3 new items"
    assert round_due(_settings(tmp_path, learn_every_hours=0), new_items=3, last=None, now=T0) is None
    # A round still running (elsewhere, or dead) counts from its start; the lease decides the rest.
    assert round_due(s, new_items=5, last=_record(8, "running"), now=later + timedelta(hours=1))


def test_never_due_with_nothing_new(tmp_path: Path) -> None:
    s = _settings(tmp_path, learn_every_items=1, learn_every_hours=0.01)
    for last in (None, _record(), _record(status="rejected")):
        assert round_due(s, new_items=0, last=last, now=T0 + timedelta(days=1)) is None


def test_a_round_that_did_not_promote_is_not_repeated_on_the_same_items(tmp_path: Path) -> None:
    """Its items stay "new" (newer than the last promoted round): only more of them, or time, count."""
    s = _settings(tmp_path)
    rejected = _record(7, "rejected", **{"new items": 212})
    soon = T0 + timedelta(hours=1)
    assert round_due(s, new_items=212, last=rejected, now=soon) is None
    assert round_due(s, new_items=411, last=rejected, now=soon) is None
    assert round_due(s, new_items=412, last=rejected, now=soon) == "200 new feedback items since round 7 (every 200)"
    assert round_due(s, new_items=212, last=rejected, now=T0 + timedelta(hours=24)) == (
        "24 h since round 7 and 212 new items"
    )
    failed = _record(7, "failed")  # no counts: the loop passes what it saw
    assert round_due(s, new_items=212, last=failed, now=soon, tried=212) is None
    assert round_due(s, new_items=212, last=_record(7, "promoted", **{"new items": 212}), now=soon)


# --- the loop -------------------------------------------------------------------------------------


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite: the loop only reads counts and rounds, which the service tests run on PostgreSQL."""
    return f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"


async def _rated_photos(factory: Factory, store: ImageStore, n: int, *, first: int = 0) -> None:
    """``n`` captioned photos, each rated +1 by its sender (usable, new feedback)."""
    for i in range(first, first + n):
        data = f"photo {i}".encode()
        sha = store.put(data)
        async with factory.begin() as s:
            user = await users.get_or_create_user(s, platform="telegram", platform_user_id=f"tg-{i}")
            chat = await users.get_or_create_chat(s, platform="telegram", platform_chat_id=f"c{i}", kind="private")
            image = await jobs.add_image(s, sha256=sha, size_bytes=len(data), width=4, height=3, mime="image/png")
            request = await jobs.create_request(
                s, platform="telegram", chat_id=chat.id, requester_id=user.id, image_id=image.id
            )
            assert await jobs.claim_job(s, public_id=request.public_id, stale_before=utcnow() - timedelta(days=1))
            caption = await jobs.complete_request(s, request_id=request.id, text=f"a photo number {i}")
            assert caption is not None
            await captions.set_feedback(s, caption_id=caption.id, user_id=user.id, rating=1)


@dataclass
class Outcome:
    record: RoundRecord
    report: str
    promoted: bool


class Clock:
    """Fake time for the loop and the service; ``pause`` moves it instead of sleeping, then runs the
    test's next step ("tick": nothing; none left: stop the loop)."""

    def __init__(self, stop: asyncio.Event, steps: list[Any]) -> None:
        self.t, self.stop, self.steps, self.pauses = utcnow(), stop, list(steps), 0

    def now(self) -> datetime:
        return self.t

    async def pause(self, seconds: float) -> None:
        self.pauses += 1
        self.t += timedelta(seconds=seconds)
        step = self.steps.pop(0) if self.steps else None
        if step is None:
            self.stop.set()
        elif step != "tick":
            await step()


async def _reject(service: LearningService, holder: str | None) -> Outcome:
    lease = await service.begin_round(holder=holder or "test")
    new = await service.new_feedback_count()
    record = await service.finish_round(
        lease.round_id, counts={"new items": new}, metrics={}, decision="rejected: no better", candidate=None,
        promote=False,
    )  # fmt: skip
    return Outcome(record, "report", promoted=False)


async def test_runs_a_round_when_due_and_waits_for_more_items_after_a_rejection(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, learn_every_items=3, learn_every_hours=0)
    service = LearningService(settings, session_factory, image_store)
    await _rated_photos(session_factory, image_store, 3)
    calls: list[dict[str, Any]] = []

    async def run_round(s: Settings, svc: LearningService, **options: Any) -> Outcome:
        calls.append(options)
        return await _reject(svc, options["holder"])

    async def more_feedback() -> None:
        await _rated_photos(session_factory, image_store, 3, first=100)

    stop = asyncio.Event()
    clock = Clock(stop, ["tick", "tick", more_feedback, "tick"])
    caplog.set_level(logging.INFO, logger="training.learning.schedule")
    assert (
        await learner_loop(settings, service, run_round=run_round, stop=stop, now=clock.now, pause=clock.pause) is False
    )

    assert len(calls) == 2, "one round at the start, none on the same items, one after 3 more"
    assert calls[0] == {"progress": False, "holder": calls[0]["holder"]} and ":" in calls[0]["holder"]
    assert [r.status for r in await service.rounds()] == ["rejected", "rejected"]
    assert clock.pauses == 5
    started = [r.getMessage() for r in caplog.records if "starting" in r.getMessage()]
    assert started == ["learning round starting: 3 new feedback items (every 3)"] + [
        "learning round starting: 3 new feedback items since round 1 (every 3)"
    ]


async def test_a_failing_round_is_logged_and_the_loop_goes_on(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, learn_every_items=2, learn_every_hours=1, learn_check_s=600)
    stop = asyncio.Event()
    clock = Clock(stop, ["tick"] * 6)  # 6 pauses of 10 min: 1 h
    service = LearningService(settings, session_factory, image_store, now=clock.now)
    await _rated_photos(session_factory, image_store, 2)
    calls = 0

    async def run_round(s: Settings, svc: LearningService, **options: Any) -> Outcome:
        nonlocal calls
        calls += 1
        if calls == 1:
            await svc.begin_round(holder=options["holder"])  # holds the lease, then breaks
            raise RuntimeError("replay data not found")
        return await _reject(svc, options["holder"])

    caplog.set_level(logging.INFO, logger="training.learning.schedule")
    await learner_loop(settings, service, run_round=run_round, stop=stop, now=clock.now, pause=clock.pause)

    first, second = (await service.rounds())[::-1]
    assert first.status == "failed", "the lease was given up at once, not after learn_lease_s"
    assert second.status == "rejected" and calls == 2, "retried by time (1 h), not at the next check"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "learning round failed (RuntimeError: replay data not found); the next check tries again"
    ]
    assert all(r.exc_info is None for r in caplog.records), "no traceback noise"


async def test_another_learners_round_is_waited_for_quietly(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, learn_every_items=1)
    service = LearningService(settings, session_factory, image_store)
    await _rated_photos(session_factory, image_store, 1)
    await service.begin_round(holder="other-host:42")

    async def run_round(s: Settings, svc: LearningService, **options: Any) -> Outcome:
        return await _reject(svc, options["holder"])

    stop = asyncio.Event()
    clock = Clock(stop, ["tick", "tick", "tick"])
    caplog.set_level(logging.INFO, logger="training.learning.schedule")
    await learner_loop(settings, service, run_round=run_round, stop=stop, now=clock.now, pause=clock.pause)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("other-host:42" in m for m in messages) == 1, messages
    assert sum("starting" in m for m in messages) == 1, "one line, not one per check"
    last = await service.last_round()
    assert last is not None and last.status == "running" and last.holder == "other-host:42"


async def test_stop_while_waiting_returns_at_once(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, learn_check_s=3600)
    service = LearningService(settings, session_factory, image_store)
    checked = asyncio.Event()

    def now() -> datetime:
        checked.set()
        return T0

    stop = asyncio.Event()
    loop = asyncio.create_task(learner_loop(settings, service, run_round=pytest.fail, stop=stop, now=now))
    await asyncio.wait_for(checked.wait(), 10)
    stop.set()
    assert await asyncio.wait_for(loop, 10) is False  # not an hour


async def test_stop_during_a_round_cancels_it_and_frees_the_lease(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, learn_every_items=1)
    service = LearningService(settings, session_factory, image_store)
    await _rated_photos(session_factory, image_store, 1)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def run_round(s: Settings, svc: LearningService, **options: Any) -> Outcome:
        await svc.begin_round(holder=options["holder"])
        started.set()
        try:
            await asyncio.Event().wait()  # a long round
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("not reached")

    stop = asyncio.Event()
    loop = asyncio.create_task(learner_loop(settings, service, run_round=run_round, stop=stop))
    await asyncio.wait_for(started.wait(), 10)
    stop.set()
    assert await asyncio.wait_for(loop, 10) is False
    assert cancelled.is_set()
    last = await service.last_round()
    assert last is not None and last.status == "failed" and "stopped" in last.decision


async def test_a_blocking_round_runs_in_a_thread(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    """The event loop stays free while it runs; stopped mid-round, the loop says the thread may still run."""
    settings = _settings(tmp_path, learn_every_items=1)
    service = LearningService(settings, session_factory, image_store)
    await _rated_photos(session_factory, image_store, 1)
    running, release = threading.Event(), threading.Event()
    threads: list[str] = []

    def run_round(s: Settings, svc: LearningService, **options: Any) -> Outcome:
        threads.append(threading.current_thread().name)
        running.set()
        assert release.wait(30)
        raise RuntimeError("released")

    stop = asyncio.Event()
    loop = asyncio.create_task(learner_loop(settings, service, run_round=run_round, stop=stop))
    assert await asyncio.to_thread(running.wait, 10)
    stop.set()  # the event loop answers while the round blocks its thread
    try:
        assert await asyncio.wait_for(loop, 10) is True
    finally:
        release.set()
    assert threads and threads[0] != threading.main_thread().name
