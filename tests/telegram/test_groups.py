"""Groups: /caption (as a reply, as a photo's caption, with @BotName) under privacy mode, and
/autocaption for admins."""

from __future__ import annotations

import pytest

from tests.telegram.conftest import bot_stack, caption_id_of, wait_caption, wait_next
from tests.telegram.fake_api import png

pytestmark = pytest.mark.timeout(60)


async def test_caption_command_in_a_group_with_privacy_mode_on(fake, settings):
    ann, bob = fake.user(7, "Ann"), fake.user(8, "Bob")
    group = fake.group_chat()
    async with bot_stack(settings) as _stack:
        # Privacy mode: a plain photo never reaches the bot.
        plain = fake.send(group, ann, photo=png("white"))
        assert plain in fake.hidden

        # /caption@BotName as a reply to someone else's photo: the caption replies to the photo.
        photo = fake.send(group, ann, photo=png("red"))
        command = fake.send(group, bob, text="/caption@CaptionTestBot", reply_to=photo)
        assert command not in fake.hidden
        reply = await wait_caption(fake, photo)
        assert caption_id_of(reply)
        assert fake.calls_of("sendChatAction", chat_id=group["id"], action="typing")

        # As the caption of the photo itself, with and without @BotName; and as a reply to an image file.
        for caption in ("/caption@CaptionTestBot", "/caption"):
            own = fake.send(group, bob, photo=png("blue"), caption=caption)
            await wait_caption(fake, own)
        doc = fake.send(group, ann, document=png("green"), mime_type="image/png", file_name="g.png")
        fake.send(group, bob, text="/caption", reply_to=doc)
        await wait_caption(fake, doc)

        # Mentioning the bot works like /caption (Telegram delivers mentions in privacy mode too).
        cy = fake.user(9, "Cy")  # (each user may send 5 photos at once)
        mentioned = fake.send(group, ann, photo=png("yellow"))
        fake.send(group, cy, text="@CaptionTestBot what is in this one?", reply_to=mentioned)
        await wait_caption(fake, mentioned)
        await wait_caption(fake, fake.send(group, cy, photo=png("black"), caption="look @CaptionTestBot"))

        # Without a photo to describe: how to use it.
        lonely = fake.send(group, bob, text="/caption@CaptionTestBot")
        usage = await fake.wait_reply(group["id"], lonely["message_id"])
        assert "Reply to a photo with /caption" in usage["text"]

        # Another bot's command is not for us (privacy mode hides it; the handler would ignore it too).
        other = fake.send(group, bob, text="/caption@OtherBot", reply_to=photo)
        assert other in fake.hidden
        fake.inject({"message": other})
        last = fake.send(group, bob, text="/help@CaptionTestBot")
        await wait_next(fake, last, having="/privacy")
        assert not fake.replies_to(group["id"], other["message_id"])
        assert len(fake.replies_to(group["id"], photo["message_id"])) == 1  # still just the one caption
        assert not fake.replies_to(group["id"], plain["message_id"])


async def test_autocaption_is_for_admins_and_needs_privacy_mode_off(fake, settings):
    fake.privacy_mode = False  # the bot sees every group message
    ann, bob = fake.user(7, "Ann"), fake.user(8, "Bob")
    group = fake.group_chat()
    fake.set_member(group["id"], ann, "administrator")
    async with bot_stack(settings) as _stack:
        before = fake.send(group, bob, photo=png("white"))
        denied = fake.send(group, bob, text="/autocaption on")
        assert "Only group admins" in (await fake.wait_reply(group["id"], denied["message_id"]))["text"]
        assert fake.calls_of("getChatMember", chat_id=group["id"], user_id=8)

        on = fake.send(group, ann, text="/autocaption@CaptionTestBot on")
        text = (await fake.wait_reply(group["id"], on["message_id"]))["text"]
        assert text.startswith("Auto-captioning is on") and "privacy mode" not in text
        auto = fake.send(group, bob, photo=png("red"))
        await wait_caption(fake, auto)
        ignored = fake.send(group, bob, document=b"%PDF-1.4", mime_type="application/pdf", file_name="a.pdf")
        state = fake.send(group, bob, text="/autocaption")
        assert "is on here" in (await fake.wait_reply(group["id"], state["message_id"]))["text"]

        off = fake.send(group, ann, text="/autocaption off")
        assert "off" in (await fake.wait_reply(group["id"], off["message_id"]))["text"]
        after = fake.send(group, bob, photo=png("blue"))
        chatter = fake.send(group, bob, text="nice photo")
        check = fake.send(group, ann, text="/autocaption")
        assert "is off here" in (await fake.wait_reply(group["id"], check["message_id"]))["text"]
        for quiet in (before, ignored, after, chatter):
            assert not fake.replies_to(group["id"], quiet["message_id"])


async def test_autocaption_warns_when_privacy_mode_is_on_and_is_group_only(fake, settings):
    ann = fake.user(7, "Ann")
    group = fake.group_chat()
    fake.set_member(group["id"], ann, "creator")
    async with bot_stack(settings) as _stack:
        on = fake.send(group, ann, text="/autocaption@CaptionTestBot on")
        text = (await fake.wait_reply(group["id"], on["message_id"]))["text"]
        assert "Auto-captioning is on" in text and "privacy mode is on" in text and "/setprivacy" in text
        private = fake.private_chat(ann)
        ask = fake.send(private, ann, text="/autocaption on")
        assert "for groups" in (await wait_next(fake, ask))["text"]
