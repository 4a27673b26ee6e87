"""Corrections in progress: "Better caption" makes the person's next text in that chat the
correction, stored in the database (it survives a restart) and expiring after a setting's time.

Runs on SQLite + memory:// and on PostgreSQL + Redis Streams, with the tiny model.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from captionbot.service import InvalidFeedbackError, UnknownCaptionError
from tests.tiny_model import DeliveryRecorder, make_settings, open_pipeline, submit

pytestmark = pytest.mark.timeout(60)

WHO = {"platform": "telegram", "platform_chat_id": "42", "platform_user_id": "7"}


async def a_caption(stack, rec: DeliveryRecorder) -> int:
    sub = await submit(stack)
    await rec.wait_for(1)
    [delivery] = rec.by_request(sub.request_id)
    return delivery.caption_id


async def test_the_next_text_is_the_correction_and_a_second_press_reuses_the_prompt(backend, tmp_path):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        caption_id = await a_caption(stack, rec)
        ask = await stack.service.ask_for_correction(caption_id=caption_id, **WHO)
        assert ask.prompt_message_id is None and ask.caption_text  # post a prompt, quoting the caption
        await stack.service.set_correction_prompt(message_id=900, **WHO)
        again = await stack.service.ask_for_correction(caption_id=caption_id, **WHO)
        assert again.prompt_message_id == "900"  # one prompt per press window
        assert await stack.service.take_correction(text="someone else", **{**WHO, "platform_user_id": "8"}) is None
        taken = await stack.service.take_correction(text="  a red   square ", **WHO)
        assert taken is not None and not taken.expired and taken.saved_text == "a red square"
        assert taken.state is not None and taken.state.correction == "a red square"
        assert await stack.service.take_correction(text="hello", **WHO) is None  # not waiting any more


async def test_waiting_survives_a_restart_and_expires(backend, tmp_path):
    rec = DeliveryRecorder()
    settings = make_settings(tmp_path, backend, correction_wait_s=60)
    async with open_pipeline(settings, recorder=rec) as stack:
        caption_id = await a_caption(stack, rec)
        await stack.service.ask_for_correction(caption_id=caption_id, **WHO)
    async with open_pipeline(settings, recorder=DeliveryRecorder()) as stack:  # a new process
        taken = await stack.service.take_correction(text="a small red square", **WHO)
        assert taken is not None and taken.saved_text == "a small red square"
        await stack.service.ask_for_correction(caption_id=caption_id, **WHO)
        later = stack.service.now() + timedelta(seconds=61)
        stack.service.now = lambda: later
        expired = await stack.service.take_correction(text="too late", **WHO)
        assert expired is not None and expired.expired and expired.saved_text is None
        assert await stack.service.take_correction(text="again", **WHO) is None
        stats = await stack.service.stats(platform="telegram", platform_user_id="7")
        assert stats.corrections == 1  # the late text was not stored
        # Long after the wait ran out, a text is a new conversation, not a late correction.
        await stack.service.ask_for_correction(caption_id=caption_id, **WHO)
        much_later = later + timedelta(seconds=121)
        stack.service.now = lambda: much_later
        assert await stack.service.take_correction(text="hello again", **WHO) is None


async def test_cancel_bad_text_forget_and_gone_captions(backend, tmp_path):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        caption_id = await a_caption(stack, rec)
        await stack.service.ask_for_correction(caption_id=caption_id, **WHO)
        with pytest.raises(InvalidFeedbackError):
            await stack.service.take_correction(text="   ", **WHO)
        assert await stack.service.cancel_correction(**WHO)  # still waiting after the bad text
        assert not await stack.service.cancel_correction(**WHO)
        await stack.service.ask_for_correction(caption_id=caption_id, **WHO)
        await stack.service.forget(platform="telegram", platform_user_id="7")  # the wait goes with the rest
        assert await stack.service.take_correction(text="a square", **WHO) is None
        with pytest.raises(UnknownCaptionError):
            await stack.service.ask_for_correction(caption_id=caption_id, **WHO)


async def test_a_double_tap_posts_one_prompt(backend, tmp_path):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        caption_id = await a_caption(stack, rec)
        taps = await asyncio.gather(*(stack.service.ask_for_correction(caption_id=caption_id, **WHO) for _ in range(3)))
        assert sorted(t.asked_before for t in taps) == [False, True, True]  # one of them posts the prompt
        # The prompt never got recorded (posting failed): a press after the posting window may try again.
        later = stack.service.now() + timedelta(seconds=31)
        stack.service.now = lambda: later
        retry = await stack.service.ask_for_correction(caption_id=caption_id, **WHO)
        assert not retry.asked_before
