"""When a learning round is due, and the loop that starts one when it is (`captionbot learner`, and
`captionbot run` with CAPTIONBOT_LEARN_IN_RUN).

No torch here: the round itself is passed in (``training.learning.round.run_round``), so the loop is
tested with a stand-in and a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from captionbot.service.learning_results import RoundBusyError

if TYPE_CHECKING:
    from captionbot.service.learning import LearningService
    from captionbot.service.learning_results import RoundRecord
    from captionbot.settings import Settings

log = logging.getLogger(__name__)

#: ``run_round(settings, service, *, progress, holder) -> RoundOutcome``: a coroutine function (it puts
#: its heavy part in a thread itself), or a blocking function, which is then run in a thread.
RunRound = Callable[..., Any]
#: ``pause(seconds)``: wait between checks; returns early when the loop is asked to stop.
Pause = Callable[[float], Awaitable[None]]


def round_due(
    settings: Settings, *, new_items: int, last: RoundRecord | None, now: datetime, tried: int = 0
) -> str | None:
    """Why a round should start now, or None.

    ``new_items`` counts usable feedback newer than the last promoted round. ``tried`` of them were
    already seen by a later round that did not promote: they count again only by time, so a rejected
    or failed round is not repeated at once on the same feedback.
    """
    if new_items <= 0:
        return None
    tried = max(tried, items_tried(last))
    every = settings.learn_every_items
    if every and new_items - tried >= every:
        if tried and last is not None:
            return f"{new_items - tried} new feedback items since round {last.number} (every {every})"
        return f"{new_items} new feedback items (every {every})"
    hours = settings.learn_every_hours
    if not hours:
        return None
    if last is None:
        return f"no round yet and {new_items} new items"
    elapsed = (now - (last.finished_at or last.started_at)).total_seconds() / 3600
    if elapsed < hours:
        return None
    return f"{elapsed:.0f} h since round {last.number} and {new_items} new items"


def items_tried(last: RoundRecord | None) -> int:
    """How many new items ``last`` saw, when it ended without a promotion (they are still new)."""
    if last is None or last.status in ("promoted", "running"):
        return 0
    seen = (last.counts or {}).get("new items")
    return seen if isinstance(seen, int) else 0


async def call_round(run_round: RunRound, settings: Settings, service: LearningService, **options: Any) -> Any:
    """``run_round(settings, service, **options)`` without blocking the event loop."""
    if inspect.iscoroutinefunction(run_round):
        return await run_round(settings, service, **options)
    return await asyncio.to_thread(run_round, settings, service, **options)


def default_holder() -> str:
    """Who holds a round's lease: this host and process (shown when another round is refused)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


@dataclass
class _Tried:
    """The last round this loop saw end without a promotion, and how many new items it had (a failed
    round records no counts, so this loop remembers)."""

    number: int = 0
    items: int = 0

    def of(self, last: RoundRecord | None) -> int:
        return self.items if last is not None and last.number == self.number else 0


async def learner_loop(
    settings: Settings,
    service: LearningService,
    *,
    run_round: RunRound,
    stop: asyncio.Event,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    pause: Pause | None = None,
    holder: str | None = None,
) -> bool:
    """Check every ``settings.learn_check_s`` and run a round when one is due, until ``stop`` is set.

    A failing check or round is logged in one line and the loop goes on. When ``stop`` comes during a
    round, the round is cancelled and marked failed. Returns True when that round was a blocking
    function, whose thread cannot be stopped and may still run (the caller may rather exit).
    """
    holder = holder or default_holder()
    pause = pause or _pause_until(stop)
    tried = _Tried()
    busy_seen: tuple[str, datetime] | None = None
    while not stop.is_set():
        try:
            new_items = await service.new_feedback_count()
            last = await service.last_round()
        except Exception as exc:  # the database may be away for a moment; the next check tries again
            log.warning("learning: could not check for new feedback (%s: %s)", type(exc).__name__, exc)
        else:
            reason = round_due(settings, new_items=new_items, last=last, now=now(), tried=tried.of(last))
            if reason is not None:
                if busy_seen is None:
                    log.info("learning round starting: %s", reason)
                task = asyncio.ensure_future(call_round(run_round, settings, service, progress=False, holder=holder))
                if not await _finished_before(task, stop):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                    await _fail_own_round(service, holder, "the learner was stopped during the round")
                    log.warning("learning: stopped during a round; it is marked failed")
                    return not inspect.iscoroutinefunction(run_round)
                busy_seen = await _outcome(task, service, holder, new_items, tried, busy_seen)
        if not stop.is_set():
            await pause(settings.learn_check_s)
    return False


async def _finished_before(task: asyncio.Future[Any], stop: asyncio.Event) -> bool:
    """Wait for ``task`` or ``stop``, whichever comes first; True when the task finished."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    return task.done()


async def _outcome(
    task: asyncio.Future[Any],
    service: LearningService,
    holder: str,
    new_items: int,
    tried: _Tried,
    busy_seen: tuple[str, datetime] | None,
) -> tuple[str, datetime] | None:
    """Log how the round ended (one line) and remember what a round that did not promote saw."""
    try:
        outcome = task.result()
    except RoundBusyError as exc:
        if busy_seen != (exc.holder, exc.started_at):  # once per round held elsewhere, not every check
            log.info("learning: another round is running since %s on %s; waiting", exc.started_at, exc.holder)
        return exc.holder, exc.started_at
    except Exception as exc:
        log.error("learning round failed (%s: %s); the next check tries again", type(exc).__name__, exc)
        await _fail_own_round(service, holder, f"{type(exc).__name__}: {exc}")
        last = await _quietly(service.last_round())
        if last is not None:
            tried.number, tried.items = last.number, new_items
        return None
    record = outcome.record
    log.info("learning round %d %s: %s", record.number, record.status, record.decision)
    if not outcome.promoted:
        tried.number, tried.items = record.number, new_items
    return None


async def _fail_own_round(service: LearningService, holder: str, reason: str) -> None:
    """Free the lease at once when this loop's round is still marked running (no wait for it to expire)."""
    last = await _quietly(service.last_round())
    if last is not None and last.status == "running" and last.holder == holder:
        await _quietly(service.fail_round(last.id, reason=reason))


async def _quietly(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except Exception as exc:
        log.warning("learning: %s: %s", type(exc).__name__, exc)
        return None


def _pause_until(stop: asyncio.Event) -> Pause:
    async def pause(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    return pause


__all__ = ["Pause", "RunRound", "call_round", "default_holder", "items_tried", "learner_loop", "round_due"]
