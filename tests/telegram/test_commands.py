"""Commands: the menu (setMyCommands), /start, /help, /privacy, /stats, /optout, /optin, /forget."""

from __future__ import annotations

import logging

import pytest

from tests.telegram.conftest import bot_stack, buttons, caption_id_of, wait_answer, wait_caption, wait_next
from tests.telegram.fake_api import png

pytestmark = pytest.mark.timeout(60)

ALL_COMMANDS = {"start", "help", "caption", "privacy", "forget", "optout", "optin", "stats"}


async def test_start_via_runtime_registers_commands_polls_and_never_logs_the_token(fake, settings, caplog):
    caplog.set_level(logging.DEBUG)
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings, via_runtime=True) as stack:  # the runtime's "bot.telegram.app:build"
        assert "telegram" in stack.adapters
        assert {c["command"] for c in fake.commands["default"]} == ALL_COMMANDS
        assert all(c["description"] for c in fake.commands["default"])
        assert {"caption", "autocaption"} <= {c["command"] for c in fake.commands["all_group_chats"]}
        assert fake.calls_of("getMe") and fake.calls_of("deleteWebhook")  # polling mode
        await fake.wait_call("getUpdates")

        start = fake.send(chat, ann, text="/start")
        await wait_next(fake, start, having="Send me a photo")
        await wait_caption(fake, fake.send(chat, ann, photo=png()))
    assert caplog.records  # we did capture at DEBUG
    assert fake.token not in caplog.text
    assert fake.token.split(":")[1] not in caplog.text


async def test_help_privacy_stats_and_training_opt_out(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)

    async def ask(text: str) -> str:
        message = fake.send(chat, ann, text=text)
        return (await wait_next(fake, message))["text"]

    async with bot_stack(settings) as _stack:
        assert "/caption" in await ask("/help")
        privacy = await ask("/privacy")
        assert "30 days" in privacy and "/optout" in privacy and "/forget" in privacy and "train" in privacy
        reply = await wait_caption(fake, fake.send(chat, ann, photo=png()))
        await wait_answer(fake, fake.press(reply, f"r1:{caption_id_of(reply)}:1", ann))
        stats = await ask("/stats")
        assert "Model: tiny-v1" in stats and "Captions written for everyone so far: 1" in stats
        assert "Your photos: 1 (1 described, 0 waiting, 0 failed)" in stats and "Your ratings: 1." in stats
        assert "won't be used for training" in await ask("/optout")
        assert "off (you opted out)" in await ask("/stats")
        assert "may be used" in await ask("/optin")
        assert "on. /optout" in await ask("/stats")
        assert "Send me a photo" in await ask("hello there")  # plain text: a hint
        assert "Send me a photo" in await ask("/nonsense")


async def test_forget_needs_the_askers_confirmation_and_deletes_everything(fake, settings):
    ann, bob = fake.user(7, "Ann"), fake.user(8, "Bob")
    group = fake.group_chat()
    async with bot_stack(settings) as stack:
        photo = fake.send(group, ann, photo=png(), caption="/caption")
        caption = await wait_caption(fake, photo)
        cid = caption_id_of(caption)
        await wait_answer(fake, fake.press(caption, f"r1:{cid}:1", ann))

        ask = fake.send(group, ann, text="/forget@CaptionTestBot")
        confirm = await fake.wait_reply(group["id"], ask["message_id"], having="This can't be undone")
        assert [data for _, data in buttons(confirm)] == ["f1:7:y", "f1:7:n"]

        intruder = await wait_answer(fake, fake.press(confirm, "f1:7:y", bob))  # Bob can't confirm for Ann
        assert intruder == {
            "callback_query_id": intruder["callback_query_id"],
            "text": "Only the person who asked can confirm this.",
            "show_alert": True,
        }
        assert (await stack.service.stats(platform="telegram", platform_user_id=7)).requests == 1

        await wait_answer(fake, fake.press(confirm, "f1:7:y", ann))
        await fake.wait_for(lambda: fake.messages[group["id"]][confirm["message_id"]]["text"].startswith("Done."))
        done = fake.messages[group["id"]][confirm["message_id"]]
        assert done["text"] == ("Done. I deleted 1 photo, 1 caption and 1 rating or correction of yours.")
        assert not buttons(done)
        assert (await stack.service.stats(platform="telegram", platform_user_id=7)).requests == 0
        assert not list(stack.image_store)

        # The old caption's buttons now say so, and disappear.
        gone = await wait_answer(fake, fake.press(caption, f"r1:{cid}:-1", bob))
        assert gone["text"] == "That caption no longer exists."
        await fake.wait_for(lambda: not buttons(fake.messages[group["id"]][caption["message_id"]]))
        gone = await wait_answer(fake, fake.press(caption, f"c1:{cid}", bob))
        assert gone["text"] == "That caption no longer exists."

        again = fake.send(group, ann, text="/forget")
        confirm = await fake.wait_reply(group["id"], again["message_id"], having="This can't be undone")
        await wait_answer(fake, fake.press(confirm, "f1:7:n", ann))
        await fake.wait_for(
            lambda: fake.messages[group["id"]][confirm["message_id"]]["text"] == "Okay, I kept everything."
        )
        assert not fake.unanswered_callbacks()
