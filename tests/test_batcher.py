"""MicroBatcher: size and time bounds, one call per batch, failures stay with their own callers."""

from __future__ import annotations

import asyncio

import pytest

from captioner.batcher import BatcherStopped, MicroBatcher

pytestmark = pytest.mark.timeout(20)


class Recorder:
    """A run_batch that records each call; optionally waits on a gate before answering."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.calls: list[list[int]] = []
        self.gate = gate
        self.started = asyncio.Event()

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.calls.append(list(items))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_batches_up_to_max_size_with_one_call_each():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_size=4, max_wait=5.0)  # long wait: only the size bound can flush
    batcher.start()
    try:
        results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(i) for i in range(8))), 5)
    finally:
        await batcher.stop()
    assert results == [i * 10 for i in range(8)]
    assert [len(c) for c in rec.calls] == [4, 4]
    assert sorted(i for c in rec.calls for i in c) == list(range(8))


async def test_flushes_a_partial_batch_after_max_wait():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_size=100, max_wait=0.05)
    batcher.start()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(i) for i in range(3))), 5)
    finally:
        await batcher.stop()
    assert results == [0, 10, 20]
    assert rec.calls == [[0, 1, 2]]
    assert loop.time() - t0 >= 0.04  # it did wait for company before running


async def test_items_arriving_during_a_batch_form_the_next_batch():
    gate = asyncio.Event()
    rec = Recorder(gate)
    batcher = MicroBatcher(rec, max_size=8, max_wait=0)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.wait_for(rec.started.wait(), 5)
        later = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4)]
        await asyncio.sleep(0)  # let them enqueue while batch 1 is still running
        gate.set()
        assert await asyncio.wait_for(first, 5) == 10
        assert await asyncio.wait_for(asyncio.gather(*later), 5) == [20, 30, 40]
    finally:
        await batcher.stop()
    assert rec.calls == [[1], [2, 3, 4]]


async def test_a_per_item_exception_fails_only_that_item():
    batcher = MicroBatcher(Recorder(), max_size=4, max_wait=1.0)
    batcher.start()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(batcher.submit(i) for i in (1, -1, 2, 3)), return_exceptions=True), 5
        )
    finally:
        await batcher.stop()
    assert results[0] == 10 and results[2] == 20 and results[3] == 30
    assert isinstance(results[1], ValueError)


async def test_a_raising_batch_fails_its_own_callers_only_and_the_loop_survives():
    calls: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        calls.append(items)
        if 666 in items:
            raise RuntimeError("engine exploded")
        return items

    batcher = MicroBatcher(run, max_size=2, max_wait=1.0)
    batcher.start()
    try:
        bad = await asyncio.wait_for(asyncio.gather(batcher.submit(666), batcher.submit(1), return_exceptions=True), 5)
        good = await asyncio.wait_for(asyncio.gather(batcher.submit(2), batcher.submit(3)), 5)
    finally:
        await batcher.stop()
    assert all(isinstance(r, RuntimeError) for r in bad)
    assert good == [2, 3]
    assert len(calls) == 2


async def test_wrong_output_count_fails_the_batch_not_the_loop():
    async def run(items: list[int]) -> list[int]:
        return items[:-1] if len(items) > 1 else items

    batcher = MicroBatcher(run, max_size=2, max_wait=1.0)
    batcher.start()
    try:
        bad = await asyncio.wait_for(asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True), 5)
        assert all(isinstance(r, RuntimeError) for r in bad)
        assert await asyncio.wait_for(batcher.submit(7), 5) == 7
    finally:
        await batcher.stop()


async def test_stop_finishes_the_running_batch_and_abandons_the_waiting_items():
    gate = asyncio.Event()
    rec = Recorder(gate)
    batcher = MicroBatcher(rec, max_size=1, max_wait=0)
    batcher.start()
    running = asyncio.ensure_future(batcher.submit(1))
    await asyncio.wait_for(rec.started.wait(), 5)
    waiting = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(batcher.stop())
    await asyncio.sleep(0)
    assert not running.done()  # stop waits for the batch in flight
    gate.set()
    await asyncio.wait_for(stopping, 5)
    assert running.result() == 10
    with pytest.raises(BatcherStopped):
        waiting.result()
    with pytest.raises(BatcherStopped):
        await batcher.submit(3)
    assert rec.calls == [[1]]
