"""ResultWaiters: a page waiting for its answer wakes when the answer is delivered, also when the
delivery came between the page's last look and the start of its wait."""

from __future__ import annotations

import asyncio

from bot.web.context import ResultWaiters


async def test_a_wait_ends_when_its_request_is_woken() -> None:
    waiters = ResultWaiters()
    waiting = asyncio.create_task(waiters.wait("r1", 60))
    await asyncio.sleep(0)  # let the task start waiting (a scheduling step, not a timed wait)
    assert not waiting.done()
    waiters.wake("r1")
    await asyncio.wait_for(waiting, 5)


async def test_a_wake_before_the_wait_is_not_lost() -> None:
    waiters = ResultWaiters()
    waiters.wake("r2")
    await asyncio.wait_for(waiters.wait("r2", 60), 5)  # returns at once instead of sleeping 60 s


async def test_only_the_latest_wakes_are_remembered() -> None:
    waiters = ResultWaiters(remember=2)
    for rid in ("a", "b", "c"):
        waiters.wake(rid)
    await asyncio.wait_for(waiters.wait("c", 60), 5)
    forgotten = asyncio.create_task(waiters.wait("a", 60))
    await asyncio.sleep(0)
    assert not forgotten.done()  # "a" was pushed out: it waits for a new wake
    waiters.wake("a")
    await asyncio.wait_for(forgotten, 5)
