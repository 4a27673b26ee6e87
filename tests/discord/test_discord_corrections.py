"""Better captions typed as messages: after "Better caption" when the form is dismissed, as a reply
to the caption message, cancelled, too late, across a restart; the form still works and ends the
wait. Answers quote the saved text and never show a caption id."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from captionbot import texts
from captionbot.storage.models import PendingCorrection
from tests.discord.helpers import captions, feedback, pngs
from tests.tiny_model import png_bytes

pytestmark = pytest.mark.timeout(120)


async def _dm_caption(world, env, user=None):
    """A DM photo and its caption message (with the buttons)."""
    user = user or world.alice.user
    dm = user.dm_channel
    await user.send_dm("", attachments=env.backend.store_attachments(dm.id, pngs(1)))
    [row] = await captions(world)
    return dm, dm.last_message, row


async def _dm_reply(env, user, message, text):
    dm = user.dm_channel
    ref = env.backend.normalize_message_reference(dm.id, {"channel_id": str(dm.id), "message_id": str(message.id)})
    return await user.send_dm(text, reference=ref)


def _no_ids(text: str, *ids: int) -> None:
    for caption_id in ids:
        assert str(caption_id) not in text, text


async def test_dm_text_after_a_dismissed_form_is_the_correction(world, env):
    user = world.alice.user
    dm, message, row = await _dm_caption(world, env)
    shown = await user.click(message, label="Better caption")
    assert shown.modal is not None  # the form opened; the person closes it and types instead

    await user.send_dm("  A red   square ")

    assert await feedback(world, row.id) == {str(user.id): (None, "A red square")}
    ack = dm.last_message.content
    assert ack == texts.correction_saved("A red square")
    _no_ids(ack, row.id)
    await user.send_dm("thanks!")  # taken once: the next text is an ordinary message again
    assert dm.last_message.content == texts.DISCORD_HELP
    assert await feedback(world, row.id) == {str(user.id): (None, "A red square")}


async def test_reply_to_the_caption_message_is_a_correction_and_a_second_replaces_it(world, env):
    user = world.alice.user
    dm, message, row = await _dm_caption(world, env)

    await _dm_reply(env, user, message, "a red square")
    assert await feedback(world, row.id) == {str(user.id): (None, "a red square")}
    assert dm.last_message.content == texts.correction_saved("a red square")

    await _dm_reply(env, user, message, "a small red square")
    assert await feedback(world, row.id) == {str(user.id): (None, "a small red square")}
    assert dm.last_message.content == texts.correction_saved("a small red square")
    _no_ids(dm.last_message.content, row.id)


async def test_reply_in_a_server_by_anyone_and_a_mention_after_the_button(world, env):
    message = (await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))).response
    [row] = await captions(world)

    # Without the message content intent, an unmentioned reply to an interaction's answer arrives empty.
    await world.bob.send(world.channel, "a red square", reply_to=message)
    assert world.channel.last_message.content == texts.DISCORD_CORRECTION_UNREADABLE
    assert await feedback(world, row.id) == {}

    await world.bob.send(world.channel, f"{world.bot.user.mention} a red square on white", reply_to=message)
    assert await feedback(world, row.id) == {str(world.bob.id): (None, "a red square on white")}
    assert world.channel.last_message.content == texts.correction_saved("a red square on white")

    await world.alice.click(message, label="Better caption")  # form dismissed
    await world.alice.send(world.channel, f"{world.bot.user.mention} a red square")
    assert (await feedback(world, row.id))[str(world.alice.id)] == (None, "a red square")
    assert world.channel.last_message.content == texts.correction_saved("a red square")


async def test_cancel_ends_the_wait(world, env):
    user = world.alice.user
    dm, message, row = await _dm_caption(world, env)
    await user.click(message, label="Better caption")

    await user.send_dm("Cancel")
    assert dm.last_message.content == texts.CORRECTION_CANCELLED
    await user.send_dm("a red square")
    assert dm.last_message.content == texts.DISCORD_HELP  # not waiting any more
    await user.send_dm("cancel")
    assert dm.last_message.content == texts.CORRECTION_NOTHING_TO_CANCEL
    assert await feedback(world, row.id) == {}


@pytest.mark.discord_settings(correction_wait_s=0.05)
async def test_a_text_after_the_wait_ran_out_is_answered_clearly(world, env):
    user = world.alice.user
    dm, message, row = await _dm_caption(world, env)
    await user.click(message, label="Better caption")
    async with world.stack.session_factory() as session:
        expires = (await session.scalars(select(PendingCorrection.expires_at))).one()
    deadline = time.monotonic() + 30
    while world.service.now() < expires:  # the condition itself, with a deadline
        assert time.monotonic() < deadline, "the wait never ran out"
        await asyncio.sleep(0.01)

    await user.send_dm("a red square")

    assert dm.last_message.content == texts.correction_expired(world.settings.correction_wait_s)
    assert dm.last_message.content != texts.DISCORD_HELP
    assert await feedback(world, row.id) == {}
    await _dm_reply(env, user, message, "a red square")  # a reply to the caption works at any time
    assert await feedback(world, row.id) == {str(user.id): (None, "a red square")}


async def test_the_wait_survives_a_restart(world, env):
    user = world.alice.user
    dm, message, row = await _dm_caption(world, env)
    await user.click(message, label="Better caption")

    await world.restart()
    await user.send_dm("a red square")

    assert await feedback(world, row.id) == {str(user.id): (None, "a red square")}
    assert dm.last_message.content == texts.correction_saved("a red square")


async def test_the_form_still_works_and_ends_the_wait(world, env):
    user = world.alice.user
    dm, message, row = await _dm_caption(world, env)
    shown = await user.click(message, label="Better caption")

    saved = await user.submit_modal(shown, {"caption": "a red square"})

    assert saved.ephemeral and saved.response.content == texts.correction_saved("a red square")
    _no_ids(saved.response.content, row.id)
    await user.send_dm("hello")
    assert dm.last_message.content == texts.DISCORD_HELP  # the form answered: not taken as a caption
    assert await feedback(world, row.id) == {str(user.id): (None, "a red square")}


async def test_reply_to_a_message_with_several_captions_asks_which(world, env):
    user = world.alice.user
    dm = user.dm_channel
    await user.send_dm("", attachments=env.backend.store_attachments(dm.id, pngs(2)))
    first, second = await captions(world)
    answer = dm.last_message

    await _dm_reply(env, user, answer, "two squares")

    assert dm.last_message.content == texts.DISCORD_CORRECTION_WHICH
    assert await feedback(world, first.id) == {} and await feedback(world, second.id) == {}
