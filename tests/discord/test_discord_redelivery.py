"""An answer interrupted by a crash is delivered again as an edit of a recorded message, never twice.

The service's recovery after a crash between "Discord accepted the answer" and "marked delivered"
is to call the delivery handler again with the same :class:`~captionbot.service.Delivery`. These
tests do exactly that, in the same process and in a new one (``world.restart()``: the bookkeeping
in memory is gone), on every path: slash command, context menu, DM, mention, a message with
several images, /alttext. Also: the same message handled twice is taken once, and a refusal that
comes after the placeholder was posted is edited into it.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.discord.delivery import nonce
from captionbot import texts
from captionbot.service import Submitted
from captionbot.storage.models import RequestStatus
from tests.discord.helpers import CORRUPT, captions, custom_ids, image_error, labels, pngs, statuses
from tests.tiny_model import png_bytes

pytestmark = pytest.mark.timeout(120)


def record_deliveries(world) -> list:
    """Every Delivery the service hands to the Discord handler, in order."""
    seen = []
    handler = world.bot.delivery

    async def spy(delivery):
        seen.append(delivery)
        return await handler(delivery)

    world.service.register_delivery_handler("discord", spy)
    return seen


def bot_messages(world, channel) -> list:
    return [m for m in channel.history() if m.author.id == world.bot.user.id]


def sends(env) -> list:
    """New messages the bot asked for: channel posts, interaction follow-ups."""
    return [
        r
        for r in env.http_requests
        if r.method == "POST" and (r.path.endswith("/messages") or re.fullmatch(r"/webhooks/\d+/[^/]+", r.path))
    ]


def edits(env) -> list:
    return [r for r in env.http_requests if r.method == "PATCH" and "/messages/" in r.path]


def snapshot(message) -> tuple:
    return message.id, message.content, custom_ids(message), labels(message)


async def deliver_again(world, env, deliveries, *, restart: bool) -> list[str | None]:
    """What recovery does after a crash between send and mark: the handler, again, same Delivery."""
    if restart:
        await world.restart()
    ids = [await world.bot.delivery(d) for d in deliveries]
    await env.settle()
    return ids


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
async def test_slash_answer_delivered_again_edits_the_thinking_message(world, env, restart):
    seen = record_deliveries(world)
    result = await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    [row] = await captions(world)
    before = snapshot(result.response)
    [delivery] = seen
    assert delivery.status_message_id == str(result.response.id)  # the "thinking" message is the placeholder
    sent_before, edits_before = len(sends(env)), len(edits(env))

    assert await deliver_again(world, env, seen, restart=restart) == [str(result.response.id)]

    assert snapshot(result.response) == before and result.response.content == row.sentence
    assert result.followups == [] and len(bot_messages(world, world.channel)) == 1
    assert len(sends(env)) == sent_before and len(edits(env)) == edits_before + 1  # edited, not re-sent


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
async def test_context_menu_answer_for_several_images_delivered_again_stays_one_message(world, env, restart):
    seen = record_deliveries(world)
    posted = await world.bob.send(world.channel, "", attachments=pngs(2))
    result = await world.alice.context_menu(world.channel, texts.DISCORD_MENU_CAPTION, posted)
    first, second = await captions(world)
    before = snapshot(result.response)
    assert result.response.content.splitlines() == [f"Image 1: {first.sentence}", f"Image 2: {second.sentence}"]
    await world.alice.click(result.response, label="Good 2")  # a rating count the edit must keep
    rated = labels(result.response)
    assert "Good 2 (1)" in rated
    edits_before = len(edits(env))

    ids = await deliver_again(world, env, list(reversed(seen)), restart=restart)

    assert ids == [str(result.response.id)] * 2
    assert result.response.content == before[1] and custom_ids(result.response) == before[2]
    assert labels(result.response) == rated and len(edits(env)) == edits_before  # already all there: no edit
    assert result.followups == [] and len(bot_messages(world, world.channel)) == 1


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
async def test_dm_answer_delivered_again_edits_the_placeholder_reply(world, env, restart):
    seen = record_deliveries(world)
    user = world.alice.user
    dm = user.dm_channel
    sent = await user.send_dm("", attachments=env.backend.store_attachments(dm.id, pngs(1)))
    [reply] = bot_messages(world, dm)
    [row] = await captions(world)
    assert reply.content == row.sentence and reply.reference.message_id == sent.id
    assert reply.edited_at is not None  # the placeholder, edited into the caption
    [delivery] = seen
    assert delivery.status_message_id == str(reply.id)
    sent_before = len(sends(env))

    assert await deliver_again(world, env, seen, restart=restart) == [str(reply.id)]

    [again] = bot_messages(world, dm)
    assert snapshot(again) == snapshot(reply) and len(sends(env)) == sent_before


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
async def test_mention_answer_delivered_again_edits_the_placeholder_reply(world, env, restart):
    seen = record_deliveries(world)
    ask = await world.alice.send(world.channel, f"{world.bot.user.mention} please", attachments=pngs(1))
    reply = world.channel.last_message
    [row] = await captions(world)
    assert reply.content == row.sentence and reply.reference.message_id == ask.id
    sent_before = len(sends(env))

    assert await deliver_again(world, env, seen, restart=restart) == [str(reply.id)]

    assert world.channel.last_message.id == reply.id and len(bot_messages(world, world.channel)) == 1
    assert snapshot(world.channel.last_message) == snapshot(reply) and len(sends(env)) == sent_before


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
async def test_message_with_several_images_shares_one_placeholder_and_is_never_answered_twice(world, env, restart):
    seen = record_deliveries(world)
    files = [*pngs(2), ("notes.txt", b"hello")]
    ask = await world.alice.send(world.channel, f"{world.bot.user.mention} what are these?", attachments=files)
    [reply] = bot_messages(world, world.channel)
    first, second = await captions(world)
    assert reply.reference.message_id == ask.id
    assert reply.content.splitlines() == [
        f"Image 1: {first.sentence}",
        f"Image 2: {second.sentence}",
        texts.not_an_image("notes.txt"),
    ]
    assert len(reply.components) == 2 and labels(reply)[4] == "Good 2"
    placeholders = [r for r in sends(env) if r.json and r.json.get("content") == texts.DESCRIBING]
    assert len(placeholders) == 1  # posted once, on the first image; the second reused it
    assert {d.status_message_id for d in seen} == {str(reply.id)}
    await world.bob.click(reply, label="Good 1")
    shown = snapshot(world.channel.last_message)
    sent_before = len(sends(env))

    ids = await deliver_again(world, env, seen, restart=restart)

    assert ids == [str(reply.id)] * 2
    assert bot_messages(world, world.channel)[-1].id == reply.id and len(bot_messages(world, world.channel)) == 1
    assert snapshot(world.channel.last_message) == shown and len(sends(env)) == sent_before


async def test_a_lost_line_is_written_back_into_the_shared_answer_after_a_restart(world, env):
    # Image 2's edit never reached Discord (the process died first): its redelivery, in a new
    # process, adds its line and buttons and keeps image 1's (and its rating).
    seen = record_deliveries(world)
    ask = await world.alice.send(world.channel, f"{world.bot.user.mention} describe", attachments=pngs(2))
    reply = world.channel.last_message
    first, second = await captions(world)
    await world.bob.click(reply, label="Good 1")
    full = snapshot(world.channel.last_message)
    [image_2] = [d for d in seen if d.caption_id == second.id]
    message = env.backend.get_message(world.channel.id, reply.id)  # as it was before image 2's edit
    message.content = f"Image 1: {first.sentence}\nImage 2: {texts.DESCRIBING}"
    message.components = message.components[:1]  # image 1's row of buttons only

    assert await deliver_again(world, env, [image_2], restart=True) == [str(reply.id)]

    assert snapshot(world.channel.last_message) == full and ask.id == reply.reference.message_id


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
async def test_alttext_answer_delivered_again_is_one_post_with_one_image(world, env, restart):
    seen = record_deliveries(world)
    result = await world.alice.slash(world.channel, "alttext", image=("sunset.png", png_bytes("orange")))
    [row] = await captions(world)
    [image] = result.response.attachments
    assert image.description == row.alt_text
    sent_before = len(sends(env))

    assert await deliver_again(world, env, seen, restart=restart) == [str(result.response.id)]

    [image] = result.response.attachments  # replaced by the same file: still one
    assert image.description == row.alt_text and await image.read() == png_bytes("orange")
    assert result.response.content == texts.discord_alt_text_post(world.alice.mention)
    assert result.followups == [] and len(bot_messages(world, world.channel)) == 1
    assert len(sends(env)) == sent_before


async def test_the_services_retry_after_an_answer_went_out_edits_it_again(world, env):
    # Through the service itself: the answers went out, then the handler "died" before returning,
    # so nothing was marked; the sweep's redelivery runs the handler again for both images.
    handler = world.bot.delivery
    died: list[str] = []

    async def answered_then_died(delivery):
        await handler(delivery)
        if delivery.request_id not in died:
            died.append(delivery.request_id)
            raise ConnectionError("the process died before the mark (test)")
        return await handler(delivery)

    world.service.register_delivery_handler("discord", answered_then_died)
    user = world.alice.user
    dm = user.dm_channel
    await user.send_dm("", attachments=env.backend.store_attachments(dm.id, pngs(2)))
    [reply] = bot_messages(world, dm)
    shown = snapshot(reply)
    assert await statuses(world) == [RequestStatus.DONE] * 2 and len(died) == 2

    assert await world.service.redeliver_pending() == 2
    await env.settle()

    assert await statuses(world) == [RequestStatus.DELIVERED] * 2
    assert [snapshot(m) for m in bot_messages(world, dm)] == [shown]


async def test_the_same_message_handled_twice_is_answered_once(world, env):
    user = world.alice.user
    dm = user.dm_channel
    sent = await user.send_dm("", attachments=env.backend.store_attachments(dm.id, pngs(2)))
    [reply] = bot_messages(world, dm)
    shown = snapshot(reply)

    await world.bot.on_message(sent)  # e.g. the gateway dispatched it again
    await env.settle()

    assert [snapshot(m) for m in bot_messages(world, dm)] == [shown]
    assert await statuses(world) == [RequestStatus.DELIVERED] * 2  # no new request


@pytest.mark.discord_settings(user_burst=1, user_rate_per_minute=1)
async def test_the_same_message_handled_twice_at_once_leaves_one_answer(world, env, monkeypatch, caplog):
    # The second handling doesn't wait for the first to store it: it is dropped at once (it would
    # find no request yet, and be refused by the rate limit the first one was charged).
    with monkeypatch.context() as patch:
        patch.setattr(world.bot, "on_message", lambda message: asyncio.sleep(0))  # not handled yet
        user = world.alice.user
        dm = user.dm_channel
        sent = await user.send_dm("", attachments=env.backend.store_attachments(dm.id, pngs(1)))
    stored = env.backend.get_message(dm.id, sent.id)

    env.backend.announce_message_create(stored)  # the gateway dispatches it twice, back to back
    env.backend.announce_message_create(stored)
    await env.settle()

    [reply] = bot_messages(world, dm)
    [row] = await captions(world)
    assert reply.content == row.sentence and await statuses(world) == [RequestStatus.DELIVERED]
    assert any("being taken in already" in r.getMessage() for r in caplog.records)  # they did overlap


async def test_a_placeholder_posted_for_a_message_taken_meanwhile_is_removed(world, env, monkeypatch):
    # Another process stored the same message between the "taken before?" check and the insert:
    # the service says so after this handling posted its placeholder, which nothing will edit.
    async def taken_meanwhile(**kwargs):
        await kwargs["placeholder"]()
        return Submitted("0" * 32, 1, again=True)

    monkeypatch.setattr(world.service, "take_photo", taken_meanwhile)
    user = world.alice.user
    dm = user.dm_channel
    await user.send_dm("", attachments=env.backend.store_attachments(dm.id, pngs(1)))

    assert bot_messages(world, dm) == []
    [placeholder] = sends(env)
    assert placeholder.json["content"] == texts.DESCRIBING  # posted, then removed


@pytest.mark.discord_settings(user_burst=1, user_rate_per_minute=1)
async def test_a_message_handled_twice_is_not_charged_twice(world, env):
    # The second handling finds the message taken before it looks at the rate limit.
    ask = await world.alice.send(world.channel, f"{world.bot.user.mention} hi", attachments=pngs(1))
    await world.bot.on_message(ask)
    await env.settle()
    [reply] = bot_messages(world, world.channel)
    [row] = await captions(world)
    assert reply.content == row.sentence


async def test_a_refusal_after_the_placeholder_is_shown_in_it(world, env):
    # Image 1 passed its checks and posted the placeholder; image 2 was refused after that: the
    # placeholder says so at once, before any caption comes, and the caption joins it.
    user = world.alice.user
    dm = user.dm_channel
    files = [pngs(1)[0], ("broken.png", CORRUPT)]
    sent = await user.send_dm("", attachments=env.backend.store_attachments(dm.id, files))

    [reply] = bot_messages(world, dm)
    [row] = await captions(world)
    assert reply.reference.message_id == sent.id
    assert reply.content.splitlines() == [f"Image 1: {row.sentence}", f"Image 2: {image_error(CORRUPT)}"]
    [placeholder] = sends(env)
    assert placeholder.json["content"] == texts.DESCRIBING
    first_edit = edits(env)[0].json["content"]
    assert first_edit.splitlines() == [f"Image 1: {texts.DESCRIBING}", f"Image 2: {image_error(CORRUPT)}"]


async def test_a_photo_refused_before_the_placeholder_gets_a_plain_reply(world, env, monkeypatch):
    # The queue is full: the service refuses before it posts anything, so the refusal is the reply.
    monkeypatch.setattr(world.service.settings, "queue_max_pending", 0)
    await world.alice.send(world.channel, f"{world.bot.user.mention} these", attachments=pngs(2))
    [reply] = bot_messages(world, world.channel)
    lines = reply.content.splitlines()
    assert [line.split(":")[0] for line in lines] == ["Image 1", "Image 2"]
    assert all("I'm busy right now" in line for line in lines)
    assert [r.json["content"] for r in sends(env)] == [reply.content] and await statuses(world) == []


async def test_a_refusal_after_deferring_replaces_the_thinking_message(world, env, monkeypatch):
    monkeypatch.setattr(world.service.settings, "queue_max_pending", 0)
    result = await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    assert result.response.content.startswith("I'm busy right now") and result.followups == []
    assert len(bot_messages(world, world.channel)) == 1 and sends(env) == []  # an edit, no follow-up


async def test_a_deleted_placeholder_gets_a_new_reply_with_the_requests_nonce(world, env):
    seen = record_deliveries(world)
    user = world.alice.user
    dm = user.dm_channel
    sent = await user.send_dm("", attachments=env.backend.store_attachments(dm.id, pngs(1)))
    [delivery] = seen
    env.backend.delete_message(dm.id, int(delivery.status_message_id))

    [new_id] = await deliver_again(world, env, seen, restart=False)

    [reply] = bot_messages(world, dm)
    assert str(reply.id) == new_id and reply.reference.message_id == sent.id
    [post] = [r for r in sends(env) if r.json and r.json.get("content") == reply.content]
    assert post.json["nonce"] == nonce(delivery.request_id) and post.json["enforce_nonce"] is True


async def test_after_the_token_expired_the_answer_is_a_new_channel_message_keyed_by_a_nonce(world, env):
    # The one remaining window: the interaction's message can't be edited any more, so the answer
    # is posted in the channel. A repeat posts again where Discord's nonce check doesn't catch it
    # (simcord doesn't model enforce_nonce): both posts carry the request's nonce.
    seen = []

    async def discord_down(delivery) -> None:
        seen.append(delivery)
        raise ConnectionError("Discord unreachable (test)")

    world.service.register_delivery_handler("discord", discord_down)
    asked = await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    await env.advance_time(16 * 60)
    await world.restart()  # delivers what is waiting: in the channel
    [delivery] = seen

    await deliver_again(world, env, [delivery], restart=False)

    posts = [r for r in sends(env) if r.path == f"/channels/{world.channel.id}/messages"]
    assert len(posts) == 2 and {p.json["nonce"] for p in posts} == {nonce(delivery.request_id)}
    assert len(nonce(delivery.request_id)) <= 25  # Discord's limit
    assert asked.response.id not in [m.id for m in bot_messages(world, world.channel)[1:]]
