"""Rating buttons and "Better caption" corrections, in private chats and groups."""

from __future__ import annotations

import pytest

from captionbot import texts
from tests.telegram.conftest import bot_stack, buttons, caption_id_of, wait_answer, wait_caption
from tests.telegram.fake_api import png

pytestmark = pytest.mark.timeout(60)

UP, DOWN = "\N{THUMBS UP SIGN} Good", "\N{THUMBS DOWN SIGN} Wrong"


def labels(fake, message) -> list[str]:
    current = fake.messages[message["chat"]["id"]][message["message_id"]]
    return [label for label, _ in buttons(current)][:2]


async def test_rating_is_one_per_user_changeable_and_shown_on_the_buttons(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        reply = await wait_caption(fake, fake.send(chat, ann, photo=png()))
        cid = caption_id_of(reply)

        q1 = fake.press(reply, f"r1:{cid}:1", ann)
        assert (await wait_answer(fake, q1))["text"] == "Thanks! You rated it good."
        await fake.wait_for(lambda: labels(fake, reply) == [f"{UP} ✓", DOWN])

        q2 = fake.press(reply, f"r1:{cid}:-1", ann)  # changed her mind
        assert (await wait_answer(fake, q2))["text"] == "Thanks! You rated it wrong."
        await fake.wait_for(lambda: labels(fake, reply) == [UP, f"{DOWN} ✓"])

        q3 = fake.press(reply, f"r1:{cid}:-1", ann)  # same again: answered, buttons unchanged
        await wait_answer(fake, q3)
        stats = await stack.service.stats(platform="telegram", platform_user_id=7)
        assert stats.ratings == 1  # one rating per user per caption
        assert not fake.unanswered_callbacks()


async def test_group_buttons_count_everyones_ratings(fake, settings):
    ann, bob, cy = fake.user(7, "Ann"), fake.user(8, "Bob"), fake.user(9, "Cy")
    group = fake.group_chat()
    async with bot_stack(settings) as _stack:
        photo = fake.send(group, ann, photo=png(), caption="/caption@CaptionTestBot")
        reply = await wait_caption(fake, photo)
        cid = caption_id_of(reply)
        for user, rating in ((ann, 1), (bob, 1), (cy, -1)):
            await wait_answer(fake, fake.press(reply, f"r1:{cid}:{rating}", user))
        await fake.wait_for(lambda: labels(fake, reply) == [f"{UP} · 2", f"{DOWN} · 1"])


async def test_better_caption_quotes_the_caption_offers_cancel_and_stores_the_reply(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        reply = await wait_caption(fake, fake.send(chat, ann, photo=png()))
        cid = caption_id_of(reply)

        query = fake.press(reply, f"c1:{cid}", ann)
        prompt = await fake.wait_reply(chat["id"], reply["message_id"], having="Send me a better caption")
        await wait_answer(fake, query)
        assert prompt["text"].startswith('The caption was: "') and "Caption no." not in prompt["text"]
        assert buttons(prompt) == [("Cancel", "x1:7")]

        too_long = fake.send(chat, ann, text="x" * 600, reply_to=prompt)
        assert "under 500 characters" in (await fake.wait_reply(chat["id"], too_long["message_id"]))["text"]
        answer = fake.send(chat, ann, text="A red square on a white wall", reply_to=prompt)
        thanks = await fake.wait_reply(chat["id"], answer["message_id"])
        assert thanks["text"] == 'Thank you! I saved: "A red square on a white wall".'
        stats = await stack.service.stats(platform="telegram", platform_user_id=7)
        assert stats.corrections == 1


async def test_group_correction_prompt_mentions_the_user_and_is_selective(fake, settings):
    ann, bob = fake.user(7, "Ann"), fake.user(8, "Bob")
    group = fake.group_chat()
    async with bot_stack(settings) as stack:
        photo = fake.send(group, ann, photo=png())
        command = fake.send(group, ann, text="/caption@CaptionTestBot", reply_to=photo)
        assert command not in fake.hidden
        reply = await wait_caption(fake, photo)
        cid = caption_id_of(reply)

        fake.press(reply, f"c1:{cid}", bob)  # anyone may suggest a caption
        prompt = await fake.wait_reply(group["id"], reply["message_id"], having="Bob, ")
        assert "Caption no." not in prompt["text"]
        [call] = fake.calls_of("sendMessage", text=prompt["text"])
        assert call.params["reply_markup"] == {
            "force_reply": True,
            "selective": True,
            "input_field_placeholder": texts.CORRECTION_PLACEHOLDER,
        }
        [mention] = call.params["entities"]
        assert (mention["type"], mention["offset"], mention["length"], mention["user"]["id"]) == (
            "text_mention",
            0,
            3,
            8,
        )

        # Privacy mode lets replies to the bot through.
        answer = fake.send(group, bob, text="Two cats on a sofa, @CaptionTestBot", reply_to=prompt)  # not a /caption
        assert answer not in fake.hidden
        await fake.wait_reply(
            group["id"], answer["message_id"], having='I saved: "Two cats on a sofa, @CaptionTestBot"'
        )
        assert (await stack.service.stats(platform="telegram", platform_user_id=8)).corrections == 1
