"""Better captions: after "Better caption", the presser's next text in that chat (reply or not);
a reply to the caption message at any time; edits, cancel, expiry, restarts and old prompts."""

from __future__ import annotations

from typing import Any

import pytest

from captionbot import texts
from tests.telegram.conftest import (
    bot_stack,
    buttons,
    caption_id_of,
    telegram_settings,
    wait_answer,
    wait_caption,
    wait_next,
)
from tests.telegram.fake_api import png
from tests.tiny_model import until

pytestmark = pytest.mark.timeout(90)

ASK = "Send me a better caption"


async def corrections_of(stack: Any, user_id: int) -> list[str]:
    """The corrections stored for a Telegram user, oldest caption first."""
    from sqlalchemy import select

    from captionbot.storage.models import Feedback, User

    async with stack.session_factory() as session:
        rows = await session.scalars(
            select(Feedback.correction)
            .join(User, User.id == Feedback.user_id)
            .where(User.platform_user_id == str(user_id), Feedback.correction.is_not(None))
            .order_by(Feedback.caption_id)
        )
        return [c for c in rows if c is not None]


async def caption_and_prompt(fake, chat, user) -> tuple[dict[str, Any], dict[str, Any]]:
    """A photo's caption, and the prompt after pressing its "Better caption" (answered)."""
    caption = await wait_caption(fake, fake.send(chat, user, photo=png()))
    query = fake.press(caption, f"c1:{caption_id_of(caption)}", user)
    prompt = await fake.wait_reply(chat["id"], caption["message_id"], having=ASK if chat["type"] == "private" else ",")
    await wait_answer(fake, query)
    return caption, prompt


async def test_an_ordinary_message_after_better_caption_is_the_correction(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        caption, prompt = await caption_and_prompt(fake, chat, ann)
        quoted = prompt["text"].removeprefix('The caption was: "').split('"')[0]
        assert prompt["text"].startswith('The caption was: "') and caption["text"].startswith(quoted)
        assert "Caption no." not in prompt["text"]

        text = fake.send(chat, ann, text="A red square")  # not a reply: the reply box was closed
        thanks = await fake.wait_reply(chat["id"], text["message_id"])
        assert thanks["text"] == 'Thank you! I saved: "A red square".'
        assert await corrections_of(stack, 7) == ["A red square"]

        later = fake.send(chat, ann, text="hello")  # the wait is over: an ordinary message again
        await wait_next(fake, later, having=texts.TELEGRAM_SEND_A_PHOTO)


async def test_a_reply_to_the_prompt_is_the_correction_and_an_edit_replaces_it(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        _caption, prompt = await caption_and_prompt(fake, chat, ann)
        answer = fake.send(chat, ann, text="A red sqare", reply_to=prompt)
        await fake.wait_reply(chat["id"], answer["message_id"], having='"A red sqare"')

        fake.inject({"edited_message": {**answer, "text": "A red square", "edit_date": answer["date"] + 1}})
        await fake.wait_reply(chat["id"], answer["message_id"], having='I saved: "A red square".')
        assert await corrections_of(stack, 7) == ["A red square"]


async def test_a_reply_to_the_caption_is_a_correction_at_any_time(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        caption = await wait_caption(fake, fake.send(chat, ann, photo=png()))
        first = fake.send(chat, ann, text="A blue square", reply_to=caption)  # no button pressed
        await fake.wait_reply(chat["id"], first["message_id"], having='I saved: "A blue square".')
        second = fake.send(chat, ann, text="A red square", reply_to=caption)  # a second one replaces it
        await fake.wait_reply(chat["id"], second["message_id"], having='I saved: "A red square".')
        assert await corrections_of(stack, 7) == ["A red square"]

        fake.inject({"edited_message": {**second, "text": "A red square on white", "edit_date": second["date"] + 1}})
        await fake.wait_reply(chat["id"], second["message_id"], having='"A red square on white"')
        assert await corrections_of(stack, 7) == ["A red square on white"]


async def test_a_reply_to_an_old_format_prompt_is_still_taken(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        caption = await wait_caption(fake, fake.send(chat, ann, photo=png()))
        cid = caption_id_of(caption)
        old = {  # what the bot sent before corrections were awaited in the database
            "message_id": 9000,
            "date": caption["date"],
            "chat": chat,
            "from": fake.bot_user,
            "text": f"Please send me a better caption as a reply to this message. (Caption no. {cid})",
        }
        fake.messages[chat["id"]][9000] = old
        answer = fake.send(chat, ann, text="Two red squares", reply_to=old)
        await fake.wait_reply(chat["id"], answer["message_id"], having='I saved: "Two red squares".')
        assert await corrections_of(stack, 7) == ["Two red squares"]


async def test_in_a_group_only_the_presser_is_heard(fake, settings):
    ann, bob = fake.user(7, "Ann"), fake.user(8, "Bob")
    group = fake.group_chat()
    async with bot_stack(settings) as stack:
        photo = fake.send(group, ann, photo=png(), caption="/caption@CaptionTestBot")
        caption = await wait_caption(fake, photo)
        query = fake.press(caption, f"c1:{caption_id_of(caption)}", ann)
        prompt = await fake.wait_reply(group["id"], caption["message_id"], having="Ann, ")
        await wait_answer(fake, query)
        assert "Caption no." not in prompt["text"] and "cancel" in prompt["text"]

        other = fake.send(group, bob, text="A dog", reply_to=prompt)  # Bob didn't press: not his
        mine = fake.send(group, ann, text="A red square", reply_to=prompt)
        await fake.wait_reply(group["id"], mine["message_id"], having='I saved: "A red square".')
        assert await corrections_of(stack, 7) == ["A red square"]
        assert await corrections_of(stack, 8) == []
        assert not fake.replies_to(group["id"], other["message_id"])


async def test_a_second_press_reuses_the_prompt(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        caption, prompt = await caption_and_prompt(fake, chat, ann)
        again = await wait_answer(fake, fake.press(caption, f"c1:{caption_id_of(caption)}", ann))
        assert again["text"] == texts.CORRECTION_ALREADY_ASKED
        assert len([c for c in fake.calls_of("sendMessage") if ASK in c.params.get("text", "")]) == 1
        text = fake.send(chat, ann, text="A red square")
        await fake.wait_reply(chat["id"], text["message_id"], having='I saved: "A red square".')
        assert await corrections_of(stack, 7) == ["A red square"]
        assert prompt["message_id"] < text["message_id"]


async def test_cancel_by_text_and_by_button(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        caption, prompt = await caption_and_prompt(fake, chat, ann)
        typed = fake.send(chat, ann, text="Cancel")
        assert (await fake.wait_reply(chat["id"], typed["message_id"]))["text"] == texts.CORRECTION_CANCELLED
        after = fake.send(chat, ann, text="A red square")
        await wait_next(fake, after, having=texts.TELEGRAM_SEND_A_PHOTO)

        query = fake.press(caption, f"c1:{caption_id_of(caption)}", ann)
        prompt = await fake.wait_reply(chat["id"], caption["message_id"], having=ASK)  # a new press window
        await wait_answer(fake, query)
        [(label, data)] = buttons(prompt)
        assert label == texts.CORRECTION_CANCEL
        assert (await wait_answer(fake, fake.press(prompt, data, ann)))["text"] == texts.CORRECTION_CANCELLED
        await fake.wait_for(
            lambda: fake.messages[chat["id"]][prompt["message_id"]]["text"] == texts.CORRECTION_CANCELLED
        )
        assert not buttons(fake.messages[chat["id"]][prompt["message_id"]])
        after = fake.send(chat, ann, text="A red square")
        await wait_next(fake, after, having=texts.TELEGRAM_SEND_A_PHOTO)
        assert await corrections_of(stack, 7) == []
        assert not fake.unanswered_callbacks()


async def test_the_wait_survives_a_restart(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings, via_runtime=True):
        await caption_and_prompt(fake, chat, ann)
    async with bot_stack(settings, via_runtime=True) as second:  # nothing in memory
        text = fake.send(chat, ann, text="A small red square")
        await fake.wait_reply(chat["id"], text["message_id"], having='I saved: "A small red square".')
        assert await corrections_of(second, 7) == ["A small red square"]


async def test_a_text_after_the_wait_ran_out_is_answered_clearly(fake, backend, tmp_path):
    from sqlalchemy import select

    from captionbot.storage.models import PendingCorrection

    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(telegram_settings(tmp_path, backend, fake, correction_wait_s=0.2)) as stack:
        await caption_and_prompt(fake, chat, ann)

        async def expired() -> bool:
            async with stack.session_factory() as session:
                [pending] = list(await session.scalars(select(PendingCorrection)))
            return pending.expires_at <= stack.service.now()

        await until(expired)
        late = fake.send(chat, ann, text="A red square")
        said = (await fake.wait_reply(chat["id"], late["message_id"]))["text"]
        assert said == texts.correction_expired(0.2) and "Press Better caption again" in said
        assert await corrections_of(stack, 7) == []
