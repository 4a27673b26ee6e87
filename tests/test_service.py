"""CaptionService, the adapters' API: backpressure, exactly-once delivery, feedback and privacy.

Runs on SQLite + memory:// and on PostgreSQL + Redis Streams, with the tiny model.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from captionbot.service import (
    InvalidFeedbackError,
    Rejected,
    RejectReason,
    Submitted,
    UnknownCaptionError,
)
from captionbot.storage import captions, deliveries, jobs
from captionbot.storage.models import RequestStatus
from tests.gated_engine import BatchGate
from tests.tiny_model import (
    DeliveryRecorder,
    make_banded_checkpoint,
    make_settings,
    open_pipeline,
    png_bytes,
    submit,
    until,
)

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@asynccontextmanager
async def gated_pipeline(tmp_path, settings, rec):
    """A pipeline whose worker holds its first batch until the gate opens (requests stay pending)."""
    gate = BatchGate()
    async with open_pipeline(settings, recorder=rec, gate=gate) as stack:
        yield stack, gate


async def status_of(stack, request_id: str) -> RequestStatus:
    async with stack.session_factory() as session:
        return (await jobs.get_request_by_public_id(session, public_id=request_id)).status


async def test_rate_limit_rejects_with_retry_after_then_recovers(backend, tmp_path):
    clock = FakeClock()
    settings = make_settings(tmp_path, backend, user_burst=2, user_rate_per_minute=6)
    async with open_pipeline(settings, recorder=DeliveryRecorder(), service_options={"clock": clock}) as stack:
        assert isinstance(await submit(stack), Submitted)
        assert isinstance(await submit(stack), Submitted)
        third = await submit(stack)
        assert isinstance(third, Rejected) and not third.ok
        assert third.reason == RejectReason.RATE_LIMITED == "rate_limited"
        assert third.retry_after == 10  # one token per 10 s
        assert "try again in 10 s" in third.message
        other_user = await submit(stack, user="99")
        assert isinstance(other_user, Submitted)  # buckets are per user
        clock.t += 10
        assert isinstance(await submit(stack), Submitted)
        # Bots reserve the token before downloading; a failed download gives it back.
        clock.t += 10
        assert stack.service.reserve(platform="telegram", platform_user_id="7") is None
        assert stack.service.reserve(platform="telegram", platform_user_id="7").retry_after == 10
        stack.service.unreserve(platform="telegram", platform_user_id="7")
        assert stack.service.reserve(platform="telegram", platform_user_id="7") is None
        assert isinstance(
            await stack.service.submit(
                platform="telegram",
                platform_chat_id="42",
                chat_kind="private",
                platform_user_id="7",
                display_name=None,
                image_bytes=png_bytes(),
                source_message_id=None,
                reserved=True,
            ),
            Submitted,
        ), "a reserved photo is not charged twice"


async def test_pending_caps_reject_with_retry_after(backend, tmp_path):
    settings = make_settings(
        tmp_path, backend, user_max_pending=2, queue_max_pending=3, batch_size=1, batch_wait_ms=0, user_burst=10
    )
    rec = DeliveryRecorder()
    async with gated_pipeline(tmp_path, settings, rec) as (stack, gate):
        a1, a2 = await submit(stack, png_bytes("red")), await submit(stack, png_bytes("blue"))
        assert isinstance(a1, Submitted) and isinstance(a2, Submitted)
        a3 = await submit(stack, png_bytes("green"))
        assert isinstance(a3, Rejected) and a3.reason == "too_many_pending"
        assert a3.retry_after and a3.retry_after >= 5 and f"{a3.retry_after} s" in a3.message
        b1 = await submit(stack, png_bytes("white"), user="8")
        assert isinstance(b1, Submitted)
        c1 = await submit(stack, png_bytes("black"), user="9")
        assert isinstance(c1, Rejected) and c1.reason == RejectReason.QUEUE_FULL
        assert c1.message == f"I'm busy right now \N{EM DASH} please try again in {c1.retry_after} s."
        # The worker works on 2 at once (batch + next); the third is still waiting in line.
        positions = sorted([await stack.service.queue_position(s.request_id) for s in (a1, a2, b1)])
        assert positions == [0, 0, 1]
        gate.open()
        await rec.wait_for(3)
        assert await stack.service.queue_position(a1.request_id) is None
        assert isinstance(await submit(stack, png_bytes("black"), user="9"), Submitted)  # room again


async def test_bad_image_is_rejected_with_the_image_message(backend, tmp_path):
    async with open_pipeline(make_settings(tmp_path, backend), recorder=DeliveryRecorder()) as stack:
        out = await submit(stack, b"this is not a photo at all")
        assert isinstance(out, Rejected) and out.reason == RejectReason.BAD_IMAGE and out.retry_after is None
        assert out.message  # the image module's user-facing text


async def test_status_message_feedback_stats_and_forget(backend, tmp_path):
    rec = DeliveryRecorder()
    settings = make_settings(tmp_path, backend)
    async with gated_pipeline(tmp_path, settings, rec) as (stack, gate):
        service = stack.service
        sub = await submit(stack)
        assert await service.set_status_message(sub.request_id, 555)
        assert not await service.set_status_message("0" * 32, 1)
        gate.open()
        await rec.wait_for(1)
        [d] = rec.deliveries
        assert d.status_message_id == "555"
        await until(lambda: _delivered(stack, sub.request_id))

        state = await service.rate(caption_id=d.caption_id, platform="telegram", platform_user_id="7", rating=1)
        assert (state.rating, state.ratings, state.score) == (1, 1, 1)
        state = await service.rate(caption_id=d.caption_id, platform="telegram", platform_user_id="8", rating=-1)
        assert (state.rating, state.ratings, state.score) == (-1, 2, 0)
        state = await service.rate(caption_id=d.caption_id, platform="telegram", platform_user_id="7", rating=-1)
        assert (state.ratings, state.score) == (2, -2)  # re-rating replaces, never adds
        state = await service.correct(
            caption_id=d.caption_id, platform="telegram", platform_user_id="7", text="  a red  square "
        )
        assert state.correction == "a red square" and state.rating == -1
        with pytest.raises(InvalidFeedbackError):
            await service.rate(caption_id=d.caption_id, platform="telegram", platform_user_id="7", rating=0)
        with pytest.raises(InvalidFeedbackError):
            await service.correct(caption_id=d.caption_id, platform="telegram", platform_user_id="7", text="  ")
        with pytest.raises(UnknownCaptionError):
            await service.rate(caption_id=987654, platform="telegram", platform_user_id="7", rating=1)

        stats = await service.stats(platform="telegram", platform_user_id="7")
        assert (stats.requests, stats.captions, stats.pending, stats.ratings, stats.corrections) == (1, 1, 0, 1, 1)
        assert await service.set_opt_out(platform="telegram", platform_user_id="7", opt_out=True) is True
        assert (await service.stats(platform="telegram", platform_user_id="7")).opted_out
        assert "/forget" in service.privacy_text() and "/optout" in service.privacy_text()

        sha = next(iter(stack.image_store))
        report = await service.forget(platform="telegram", platform_user_id="7")
        assert report.found and report.requests == 1 and report.captions == 1 and report.images == 1
        assert not stack.image_store.exists(sha)
        assert (await service.stats(platform="telegram", platform_user_id="7")).requests == 0
        assert not (await service.forget(platform="telegram", platform_user_id="nobody")).found


async def _delivered(stack, request_id: str) -> bool:
    return await status_of(stack, request_id) == RequestStatus.DELIVERED


async def test_concurrent_deliveries_call_the_handler_once(backend, tmp_path):
    rec = DeliveryRecorder()
    async with gated_pipeline(tmp_path, make_settings(tmp_path, backend), rec) as (stack, gate):
        refused = asyncio.Event()

        async def refuse(_delivery):  # hold the live delivery back
            refused.set()
            raise ConnectionError("not now")

        stack.service.register_delivery_handler("telegram", refuse)
        sub = await submit(stack)
        gate.open()
        await until(lambda: _is(stack, sub.request_id, RequestStatus.DONE))
        # The live attempt must have failed and given its claim back before the race starts,
        # or all five calls would (rightly) see a claim held and send nothing.
        await asyncio.wait_for(refused.wait(), 30)
        await until(lambda: _claim_free(stack, sub.request_id))
        stack.service.register_delivery_handler("telegram", rec)
        sent = await asyncio.gather(*(stack.service.deliver(sub.request_id) for _ in range(5)))
        assert sum(sent) == 1 and rec.calls[sub.request_id] == 1
        assert await stack.service.redeliver_pending() == 0


async def _claim_free(stack, request_id: str) -> bool:
    async with stack.session_factory() as session:
        return (await jobs.get_request_by_public_id(session, public_id=request_id)).delivered_at is None


async def _is(stack, request_id: str, status: RequestStatus) -> bool:
    return await status_of(stack, request_id) == status


async def test_failed_handler_is_retried_and_then_delivered_once(backend, tmp_path):
    rec = DeliveryRecorder(fail_times=1)
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        sub = await submit(stack)
        await until(lambda: _has_call(rec, sub.request_id))
        await until(lambda: _is(stack, sub.request_id, RequestStatus.DONE))  # claim released
        assert rec.deliveries == []
        assert await stack.service.redeliver_pending() == 1  # what the periodic sweep does
        assert rec.calls[sub.request_id] == 2 and len(rec.deliveries) == 1
        assert await stack.service.redeliver_pending() == 0


async def test_a_reply_that_always_fails_is_given_up_after_the_attempt_limit(backend, tmp_path):
    rec = DeliveryRecorder(fail_times=1000)
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        sub = await submit(stack)
        await until(lambda: _has_call(rec, sub.request_id))
        await until(lambda: _is(stack, sub.request_id, RequestStatus.DONE))
        for _ in range(deliveries.DEFAULT_DELIVERY_ATTEMPTS + 3):  # sweeps, more than the limit
            await stack.service.redeliver_pending()
        assert rec.calls[sub.request_id] == deliveries.DEFAULT_DELIVERY_ATTEMPTS
        async with stack.session_factory() as session:
            assert await deliveries.undelivered_results(session) == [], "the sweep no longer picks it up"


async def _has_call(rec: DeliveryRecorder, request_id: str) -> bool:
    return rec.calls[request_id] > 0


async def test_results_finished_while_the_bot_was_down_are_delivered_on_start(backend, tmp_path):
    settings = make_settings(tmp_path, backend)
    async with open_pipeline(settings, recorder=None) as stack:  # no handler: nobody to send to
        subs = [await submit(stack, png_bytes(c)) for c in ("red", "green")]
        for s in subs:
            await until(lambda s=s: _is(stack, s.request_id, RequestStatus.DONE))
    rec = DeliveryRecorder()
    async with open_pipeline(settings, recorder=rec) as stack:  # "the bot restarted"
        await rec.wait_for(2)
        assert {d.request_id for d in rec.deliveries} == {s.request_id for s in subs}
        assert all(rec.calls[s.request_id] == 1 for s in subs)


async def test_band_hint_and_labels_go_from_the_worker_through_storage_to_the_delivery(backend, tmp_path):
    rec = DeliveryRecorder()
    settings = make_settings(tmp_path, backend, model_path=make_banded_checkpoint("unsure"))
    async with open_pipeline(settings, recorder=rec) as stack:
        sub = await submit(stack)
        await rec.wait_for(1)
        [delivery] = rec.by_request(sub.request_id)
        assert (delivery.status, delivery.band, delivery.hint) == ("done", "unsure", "a cat")
        async with stack.session_factory() as session:
            caption = await captions.caption_for_request(
                session, request_id=(await jobs.get_request_by_public_id(session, public_id=sub.request_id)).id
            )
        assert caption is not None and caption.id == delivery.caption_id
        assert (caption.band, caption.hint) == ("unsure", "a cat")
        assert caption.labels and caption.labels[0]["word"] == "cat"
        assert set(caption.labels[0]) == {"label", "word", "p"}


def test_the_all_in_one_process_leaves_a_core_to_the_bots_and_database(monkeypatch):
    from captionbot_cli.runtime import model_threads

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert model_threads(0, "all") == 7 and model_threads(0, "worker") == 0  # 0: torch's default
    assert model_threads(3, "all") == 3 and model_threads(3, "worker") == 3  # a setting always wins
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert model_threads(0, "all") == 0
