"""Getting captions: /caption, the "Caption image" context menu, DMs, mentions in replies.

The bot never declares the privileged message content intent; simcord applies Discord's rules
for it (gateway messages censored, except DMs, mentions and a context menu's target message).
"""

from __future__ import annotations

import discord
import pytest

from captionbot import texts
from captionbot.storage.models import RequestStatus
from tests.discord.helpers import callbacks, captions, custom_ids, labels, pngs, reply_contexts, statuses
from tests.tiny_model import png_bytes

pytestmark = pytest.mark.timeout(120)


async def test_slash_caption_defers_then_answers_with_caption_and_buttons(world, env, monkeypatch):
    assert not world.bot.intents.message_content
    acknowledged_before_submit: list[list[int]] = []
    submit = world.service.submit

    async def spy(**kwargs):
        acknowledged_before_submit.append(callbacks(env))
        return await submit(**kwargs)

    monkeypatch.setattr(world.service, "submit", spy)

    result = await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))

    # Acknowledged first (deferred, "thinking"), before the download and the queue: well within 3 s.
    assert acknowledged_before_submit == [[5]] and callbacks(env) == [5]
    reply = result.response  # the follow-up replaced the "thinking" message
    assert not result.ephemeral and not reply.ephemeral
    [row] = await captions(world)
    caption_id = row.id
    assert reply.content == row.sentence  # the caption, first and alone
    assert custom_ids(reply) == [
        f"cb:rate:{caption_id}:1",
        f"cb:rate:{caption_id}:-1",
        f"cb:fix:{caption_id}",
        f"cb:alt:{caption_id}",
    ]
    assert labels(reply) == ["Good", "Wrong", "Better caption", "Alt text"]
    assert await statuses(world) == [RequestStatus.DELIVERED]
    # The follow-up went through the interaction's webhook; its token is kept for that, never logged.
    [ctx] = await reply_contexts(world)
    assert ctx["token"].startswith("simcord_interaction_") and ctx["channel_id"] == str(world.channel.id)


async def test_context_menu_captions_every_image_of_a_message_in_one_reply(world, env):
    posted = await world.bob.send(world.channel, "our holiday", attachments=pngs(2))

    result = await world.alice.context_menu(world.channel, texts.DISCORD_MENU_CAPTION, posted)

    assert callbacks(env) == [5]
    reply = result.response
    assert result.followups == []  # one reply, not one per image
    first, second = await captions(world)
    assert reply.content.splitlines() == [f"Image 1: {first.sentence}", f"Image 2: {second.sentence}"]
    assert len(reply.components) == 2  # one row of buttons per caption
    assert custom_ids(reply)[0] == f"cb:rate:{first.id}:1" and custom_ids(reply)[4] == f"cb:rate:{second.id}:1"
    assert labels(reply)[:4] == ["Good 1", "Wrong 1", "Better caption 1", "Alt text 1"]
    assert await statuses(world) == [RequestStatus.DELIVERED] * 2


async def test_context_menu_captions_embedded_images_from_discord_hosts_only(world, env):
    # An image shown by an embed (a link preview): fetched from Discord's media host, never elsewhere.
    holder = await world.bob.send(world.channel, "", attachments=pngs(1))
    hook = world.guild.create_webhook(world.channel, "News")
    good = discord.Embed(title="Preview").set_image(url=holder.attachments[0].url)
    evil = discord.Embed(title="Elsewhere").set_image(url="https://169.254.169.254/latest/meta-data.png")
    posted = await hook.send("look", embeds=[good, evil])

    result = await world.alice.context_menu(world.channel, texts.DISCORD_MENU_CAPTION, posted)

    [row] = await captions(world)
    assert result.response.content == row.sentence  # one image: the evil embed was never fetched


async def test_dm_image_gets_a_reply_with_the_caption(world, env):
    user = world.alice.user
    dm = user.dm_channel
    # simcord's send_dm has no attachments argument: store the upload the way its actors do.
    sent = await user.send_dm("", attachments=env.backend.store_attachments(dm.id, pngs(1)))

    reply = dm.last_message
    [row] = await captions(world)
    assert reply.author.id == world.bot.user.id
    assert reply.content == row.sentence
    assert reply.reference is not None and reply.reference.message_id == sent.id
    assert f"cb:rate:{row.id}:1" in custom_ids(reply)
    [ctx] = await reply_contexts(world)
    assert "token" not in ctx  # not an interaction: answered with a plain reply


async def test_dm_without_an_image_gets_help(world, env):
    user = world.alice.user
    await user.send_dm("hello?")
    assert user.dm_channel.last_message.content == texts.DISCORD_HELP
    assert await captions(world) == []


async def test_mention_in_a_reply_captions_the_replied_to_images(world, env):
    photo = await world.bob.send(world.channel, "", attachments=pngs(2))

    ask = await world.alice.send(world.channel, f"{world.bot.user.mention} what is this?", reply_to=photo)

    reply = world.channel.last_message
    assert reply.reference.message_id == ask.id  # answers the person who asked
    assert [line.split(":")[0] for line in reply.content.splitlines()] == ["Image 1", "Image 2"]
    assert await statuses(world) == [RequestStatus.DELIVERED] * 2
    # Without the intent, the gateway hid the replied-to message's images: the bot fetched it over REST.
    assert any(r.method == "GET" and r.path.endswith(f"/messages/{photo.id}") for r in env.http_requests)


async def test_mention_with_an_attached_image_captions_it(world, env):
    ask = await world.alice.send(world.channel, f"{world.bot.user.mention} please", attachments=pngs(1))
    reply = world.channel.last_message
    [row] = await captions(world)
    assert reply.content == row.sentence and reply.reference.message_id == ask.id


async def test_plain_messages_and_reply_pings_are_ignored_in_servers(world, env):
    photo = await world.bob.send(world.channel, "no bot here", attachments=pngs(1))
    await world.alice.send(world.channel, "nice", reply_to=photo)
    assert world.channel.last_message.author.id == world.alice.id
    assert await captions(world) == []


@pytest.mark.simcord(approved_intents=discord.Intents.default())
async def test_without_the_message_content_intent_anywhere_mentions_point_to_the_context_menu(world, env):
    # The intent is off in the developer portal too: the replied-to message's images stay hidden,
    # even over REST. The context menu and /caption don't need the intent.
    photo = await world.bob.send(world.channel, "", attachments=pngs(1))
    await world.alice.send(world.channel, f"{world.bot.user.mention} describe please", reply_to=photo)
    assert world.channel.last_message.content == texts.DISCORD_NO_IMAGES_IN_REPLY

    result = await world.alice.context_menu(world.channel, texts.DISCORD_MENU_CAPTION, photo)
    [row] = await captions(world)
    assert result.response.content == row.sentence


async def test_alttext_reposts_the_image_with_the_caption_as_its_description(world, env):
    result = await world.alice.slash(world.channel, "alttext", image=("sunset.png", png_bytes("orange")))

    assert callbacks(env) == [5]
    post = result.response
    [row] = await captions(world)
    caption_id = row.id
    [image] = post.attachments
    assert image.description == row.alt_text  # Discord's alt text
    assert image.filename == "image.png"
    assert await image.read() == png_bytes("orange")  # the stored bytes, unchanged
    assert post.content == texts.discord_alt_text_post(world.alice.mention)
    assert f"cb:rate:{caption_id}:1" in custom_ids(post) and f"cb:alt:{caption_id}" not in custom_ids(post)


async def test_alt_text_button_reposts_for_the_requester_only(world, env):
    caption = (await world.alice.slash(world.channel, "caption", image=("dog.png", png_bytes("green")))).response
    [row] = await captions(world)

    refused = await world.bob.click(caption, label="Alt text")
    assert refused.ephemeral and refused.response.content == texts.DISCORD_ONLY_REQUESTER_ALT

    posted = await world.alice.click(caption, label="Alt text")
    [image] = posted.response.attachments
    assert image.description == row.alt_text
    assert not posted.ephemeral


async def test_alt_text_of_an_image_no_longer_stored_says_so(world, env):
    caption = (await world.alice.slash(world.channel, "caption", image=("dog.png", png_bytes("green")))).response
    world.stack.image_store.delete(next(iter(world.stack.image_store)))  # e.g. removed after retention_days

    gone = await world.alice.click(caption, label="Alt text")
    assert gone.ephemeral and gone.response.content == texts.PHOTO_GONE
