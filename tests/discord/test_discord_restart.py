"""Restarts and late answers: persistent buttons, results that finished while the bot was away,
expired or revoked interaction tokens, Discord errors that are retried."""

from __future__ import annotations

import pytest

from captionbot import texts
from captionbot.storage.models import RequestStatus
from tests.discord.helpers import callbacks, captions, custom_ids, feedback, statuses
from tests.tiny_model import png_bytes

pytestmark = pytest.mark.timeout(120)


async def discord_down(_delivery) -> None:
    raise ConnectionError("Discord unreachable (test)")


async def test_buttons_keep_working_after_a_restart(world, env):
    before = (await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))).response
    [row] = await captions(world)
    old_bot = world.bot
    opened_before = await world.bob.click(before, label="Better caption")

    await world.restart()  # new process: new stack on the same database, new client

    assert world.bot is not old_bot
    await world.bob.click(before, label="Good")
    assert await feedback(world, row.id) == {str(world.bob.id): (1, None)}
    saved = await world.bob.submit_modal(opened_before, {"caption": "a red square"})  # typed across the restart
    assert saved.response.content == texts.correction_saved("a red square")
    assert await feedback(world, row.id) == {str(world.bob.id): (1, "a red square")}
    shown = await world.alice.click(before, label="Better caption")
    await world.alice.submit_modal(shown, {"caption": "a small red square"})
    assert (await feedback(world, row.id))[str(world.alice.id)] == (None, "a small red square")
    posted = await world.alice.click(before, label="Alt text")
    assert posted.response.attachments[0].description == row.alt_text


async def test_result_finished_while_discord_was_away_goes_to_the_channel_after_the_token_expired(world, env):
    world.service.register_delivery_handler("discord", discord_down)
    asked = await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    assert callbacks(env) == [5] and await statuses(world) == [RequestStatus.DONE]  # captioned, not sent

    await env.advance_time(16 * 60)  # the interaction token is dead
    await world.restart()  # the new client delivers what is waiting once it is ready

    [row] = await captions(world)
    late = world.channel.last_message
    assert late.content == texts.late_reply(row.sentence, world.alice.mention)
    assert late.id != asked.response.id and [u.id for u in late.mentions] == [world.alice.id]
    assert f"cb:rate:{row.id}:1" in custom_ids(late)
    assert await statuses(world) == [RequestStatus.DELIVERED]


async def test_revoked_interaction_token_falls_back_to_the_channel(world, env):
    # The answer is an edit of the "thinking" message through the interaction's webhook.
    env.inject_error("PATCH", "/webhooks/*", status=404, code=10015, message="Unknown Webhook")
    await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    [row] = await captions(world)
    assert world.channel.last_message.content == texts.late_reply(row.sentence, world.alice.mention)
    assert await statuses(world) == [RequestStatus.DELIVERED]


async def test_discord_server_error_is_retried_by_the_service(world, env):
    env.inject_error("PATCH", "/webhooks/*", status=500)
    asked = await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    assert await statuses(world) == [RequestStatus.DONE]  # the claim was released for a retry

    assert await world.service.redeliver_pending() == 1  # what the periodic sweep does
    await env.settle()

    [row] = await captions(world)
    assert asked.response.content == row.sentence  # the "thinking" message, answered after all
    assert await statuses(world) == [RequestStatus.DELIVERED]


async def test_a_dm_the_bot_may_not_answer_is_given_up_not_retried_forever(world, env):
    user = world.alice.user
    env.inject_error(
        "POST", "/channels/*/messages", status=403, code=50007, message="Cannot send messages to this user"
    )
    await user.send_dm("", attachments=env.backend.store_attachments(user.dm_channel.id, [("a.png", png_bytes())]))
    assert await statuses(world) == [RequestStatus.DELIVERED]  # nothing left for the sweep
    assert await world.service.redeliver_pending() == 0
