"""After a restart (new process state, same database) buttons and prompts sent before still work,
and results that finished while the bot was down are delivered."""

from __future__ import annotations

import pytest

from captionbot import texts
from tests.gated_engine import BatchGate
from tests.telegram.conftest import bot_stack, buttons, caption_id_of, requests, wait_answer, wait_caption
from tests.telegram.fake_api import png
from tests.tiny_model import until

pytestmark = pytest.mark.timeout(90)


async def test_buttons_and_prompts_from_before_a_restart_still_work(fake, settings):
    ann, bob = fake.user(7, "Ann"), fake.user(8, "Bob")
    chat = fake.private_chat(ann)
    group = fake.group_chat()
    async with bot_stack(settings, via_runtime=True) as _first:
        caption = await wait_caption(fake, fake.send(chat, ann, photo=png()))
        cid = caption_id_of(caption)
        fake.press(caption, f"c1:{cid}", ann)
        prompt = await fake.wait_reply(chat["id"], caption["message_id"], having="Send me a better caption")
        ask = fake.send(group, bob, text="/forget@CaptionTestBot")
        confirm = await fake.wait_reply(group["id"], ask["message_id"], having="can't be undone")

    async with bot_stack(settings, via_runtime=True) as second:  # a new process: nothing in memory
        rated = await wait_answer(fake, fake.press(caption, f"r1:{cid}:1", ann))
        assert rated["text"] == "Thanks! You rated it good."
        await fake.wait_for(lambda: buttons(fake.messages[chat["id"]][caption["message_id"]])[0][0].endswith("✓"))

        answer = fake.send(chat, ann, text="A small red square", reply_to=prompt)
        await fake.wait_reply(chat["id"], answer["message_id"], having='I saved: "A small red square"')
        stats = await second.service.stats(platform="telegram", platform_user_id=7)
        assert (stats.ratings, stats.corrections) == (1, 1)

        denied = await wait_answer(fake, fake.press(confirm, "f1:8:y", ann))
        assert denied["show_alert"] is True
        await wait_answer(fake, fake.press(confirm, "f1:8:y", bob))
        await fake.wait_for(
            lambda: fake.messages[group["id"]][confirm["message_id"]]["text"] == "I had nothing stored about you."
        )
        assert not fake.unanswered_callbacks()


async def test_results_finished_while_the_bot_was_down_are_sent_on_start(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    gate = BatchGate()
    async with bot_stack(settings, gate=gate) as first:
        photo = fake.send(chat, ann, photo=png())
        await until(lambda: _requests_exist(first))  # queued, held at the gate
        # Stop the adapter first, then let the worker finish: nobody is there to send the reply.
        await first.adapters.pop("telegram").stop()
        gate.open()

        async def finished() -> bool:
            return await first.service.queue_position((await _only_request(first)).public_id) is None

        await until(finished)
    [placeholder] = fake.replies_to(chat["id"], photo["message_id"])  # posted when the photo was taken
    assert placeholder["text"] == texts.DESCRIBING and not buttons(placeholder)
    async with bot_stack(settings) as _second:
        answer = await wait_caption(fake, photo)
    assert answer["message_id"] == placeholder["message_id"]  # the answer is an edit of it
    assert len(fake.replies_to(chat["id"], photo["message_id"])) == 1


async def _requests_exist(stack) -> bool:
    return bool(await requests(stack))


async def _only_request(stack):
    [request] = await requests(stack)
    return request
