"""Text read in a photo: said after the caption, cut to fit a message with an "All text" button,
and the whole of it, in messages that fit, when that button is pressed."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from bot.telegram import delivery, keyboards
from captionbot import texts
from captionbot.service import Delivery
from tests.telegram.conftest import bot_stack, buttons, caption_id_of, wait_answer, wait_caption
from tests.telegram.fake_api import png

pytestmark = pytest.mark.timeout(60)

SIGN = "OPEN DAILY\n9 TO 5"
LONG = "\n".join(f"Line {i}: the quick brown fox jumps over the lazy dog" for i in range(200))  # ~10,000 chars
ALL_TEXT = (keyboards.LABEL_ALL_TEXT, "t1:{cid}")

DONE = Delivery(
    request_id="r1",
    platform="telegram",
    status="done",
    platform_chat_id="7",
    chat_kind="private",
    platform_user_id="7",
    source_message_id="1",
    status_message_id=None,
    reply_context={},
    caption_id=42,
    text="a red square",
    confidence=0.9,
    band="sure",
)


def words(text: str) -> list[str]:
    return text.split()


def test_render_puts_the_text_after_the_caption_and_the_button_only_when_cut():
    plain, markup = delivery.render(DONE)
    assert plain == texts.caption("a red square", 0.9, band="sure")
    assert not keyboards.has_all_text(markup)

    short, markup = delivery.render(replace(DONE, photo_text=SIGN))
    assert short == f'{plain}\nText in the photo: "OPEN DAILY 9 TO 5"'
    assert not keyboards.has_all_text(markup)

    cut, markup = delivery.render(replace(DONE, photo_text=LONG))
    assert len(cut) <= texts.TELEGRAM_MESSAGE_LIMIT and cut.startswith(plain + "\nText in the photo, cut short:")
    assert cut.endswith(texts.MORE_BY_BUTTON)
    assert markup is not None and [(b.text, b.callback_data) for b in markup.inline_keyboard[-1]] == [
        (keyboards.LABEL_ALL_TEXT, "t1:42")
    ]

    failed, markup = delivery.render(replace(DONE, status="failed", caption_id=None, photo_text=LONG))
    assert markup is None and "Text in the photo" not in failed


def test_all_text_callback_data_round_trips():
    assert keyboards.encode(keyboards.AllText(2**63 - 1)) == f"t1:{2**63 - 1}"
    assert keyboards.decode("t1:42") == keyboards.AllText(42)
    assert keyboards.decode("t1:0") is None and keyboards.decode("t2:42") is None
    assert keyboards.has_all_text(keyboards.caption_keyboard(5, all_text=True))
    assert not keyboards.has_all_text(keyboards.caption_keyboard(5)) and not keyboards.has_all_text(None)


async def test_a_short_text_follows_the_caption_without_a_button(fake, settings, read_text):
    read_text.text = SIGN
    ann = fake.user(7, "Ann")
    async with bot_stack(settings):
        reply = await wait_caption(fake, fake.send(fake.private_chat(ann), ann, photo=png()))
    caption, line = reply["text"].split("\n")
    assert "Text in the photo" not in caption  # the caption comes first
    assert line == 'Text in the photo: "OPEN DAILY 9 TO 5"'
    assert not any(data.startswith("t1:") for _, data in buttons(reply))


async def test_a_long_text_is_cut_and_all_text_sends_the_whole_of_it(fake, settings, read_text, caplog):
    caplog.set_level(logging.DEBUG)
    read_text.text = LONG
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings):
        reply = await wait_caption(fake, fake.send(chat, ann, photo=png()))
        cid = caption_id_of(reply)
        caption, line = reply["text"].split("\n")
        assert len(reply["text"]) <= texts.TELEGRAM_MESSAGE_LIMIT
        assert "Text in the photo" not in caption
        assert line.startswith('Text in the photo, cut short: "Line 0: the quick') and line.endswith(
            texts.MORE_BY_BUTTON
        )
        assert buttons(reply)[-1] == (ALL_TEXT[0], ALL_TEXT[1].format(cid=cid))

        query = fake.press(reply, f"t1:{cid}", ann)
        await wait_answer(fake, query)
        expected = texts.all_text(LONG, limit=texts.TELEGRAM_MESSAGE_LIMIT)
        sent = await fake.wait_for(
            lambda: (r := fake.replies_to(chat["id"], reply["message_id"])) and len(r) >= len(expected) and r
        )
    assert len(expected) > 1 and [m["text"] for m in sent] == expected  # replies to the caption, in order
    assert all(len(m["text"]) <= texts.TELEGRAM_MESSAGE_LIMIT for m in sent)
    assert words(" ".join(m["text"] for m in sent)) == ["Text", "in", "the", "photo:", *words(LONG)]
    # Web addresses in a photo's text get no link preview.
    with_text = [c for c in fake.calls if "lazy dog" in str(c.params.get("text"))]
    assert len(with_text) == len(sent) + 1  # the caption, then the whole text
    assert all(c.params.get("link_preview_options") == {"is_disabled": True} for c in with_text)
    # The text is never logged (aiosqlite's DEBUG lines are kept out by the logging set-up, not here).
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("aiosqlite"))
    assert "lazy dog" not in logged and "Line 1" not in logged
    assert not fake.unanswered_callbacks()


async def test_rating_keeps_the_all_text_button(fake, settings, read_text):
    read_text.text = LONG
    ann, bob = fake.user(7, "Ann"), fake.user(8, "Bob")
    group = fake.group_chat()
    async with bot_stack(settings):
        reply = await wait_caption(fake, fake.send(group, ann, photo=png(), caption="/caption@CaptionTestBot"))
        cid = caption_id_of(reply)
        await wait_answer(fake, fake.press(reply, f"r1:{cid}:1", bob))
        current = await fake.wait_for(
            lambda: (m := fake.messages[group["id"]][reply["message_id"]]) and "· 1" in buttons(m)[0][0] and m
        )
        assert buttons(current)[-1] == (keyboards.LABEL_ALL_TEXT, f"t1:{cid}")

        # In a group, the whole text goes to the group, replying to the caption.
        await wait_answer(fake, fake.press(current, f"t1:{cid}", bob))
        first = await fake.wait_reply(group["id"], reply["message_id"], having="Text in the photo:\nLine 0")
    assert first["chat"]["id"] == group["id"]


async def test_all_text_of_a_forgotten_caption_or_of_none_says_so(fake, settings, read_text):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        read_text.text = None
        plain = await wait_caption(fake, fake.send(chat, ann, photo=png("blue")))
        query = fake.press(plain, f"t1:{caption_id_of(plain)}", ann)  # an old message's button, say
        assert (await wait_answer(fake, query))["text"] == texts.NO_TEXT

        read_text.text = LONG
        reply = await wait_caption(fake, fake.send(chat, ann, photo=png()))
        cid = caption_id_of(reply)
        await stack.service.forget(platform="telegram", platform_user_id=7)
        stale = fake.press(reply, f"t1:{cid}", ann)
        assert (await wait_answer(fake, stale))["text"] == texts.CAPTION_GONE
        await fake.wait_for(lambda: not fake.messages[chat["id"]][reply["message_id"]].get("reply_markup"))
    assert fake.replies_to(chat["id"], reply["message_id"]) == []  # nothing sent
