"""Non-images, corrupt and oversized files, floods, too many images: short, clear answers, no crash."""

from __future__ import annotations

import re

import pytest

from captionbot import texts
from captionbot.storage.models import RequestStatus
from tests.discord.helpers import CORRUPT, callbacks, captions, custom_ids, image_error, pngs, statuses
from tests.tiny_model import png_bytes

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def downloads(world, monkeypatch):
    """URLs the bot downloaded from Discord's CDN."""
    seen: list[str] = []
    original = world.bot.http.get_from_cdn

    async def spy(url: str) -> bytes:
        seen.append(url)
        return await original(url)

    monkeypatch.setattr(world.bot.http, "get_from_cdn", spy)
    return seen


async def test_non_image_attachment_is_refused_at_once_ephemerally(world, env, downloads):
    result = await world.alice.slash(world.channel, "caption", image=("notes.pdf", b"%PDF-1.4 ..."))
    assert callbacks(env) == [4]  # answered, not deferred
    assert result.ephemeral and result.response.content == texts.not_an_image("notes.pdf")
    assert downloads == [] and await statuses(world) == []


@pytest.mark.discord_settings(max_image_bytes=500)
async def test_oversized_file_is_refused_from_its_size_without_downloading(world, env, downloads):
    big = png_bytes(size=(400, 300))
    assert len(big) > 500
    result = await world.alice.slash(world.channel, "caption", image=("big.png", big))
    assert result.ephemeral and result.response.content == texts.too_big(len(big), 500)
    assert downloads == [] and await statuses(world) == []


async def test_corrupt_image_replaces_the_thinking_message_with_the_reason(world, env):
    result = await world.alice.slash(world.channel, "caption", image=("broken.png", CORRUPT))
    assert callbacks(env) == [5]
    assert result.response.content == image_error(CORRUPT)
    assert result.response.components == [] and await statuses(world) == []


@pytest.mark.discord_settings(user_burst=2, user_rate_per_minute=2)
async def test_flood_is_told_when_to_try_again(world, env, downloads):
    for color in ("red", "blue"):
        ok = await world.alice.slash(world.channel, "caption", image=("a.png", png_bytes(color)))
        assert ok.response.components  # a caption with buttons
    flood = await world.alice.slash(world.channel, "caption", image=("a.png", png_bytes("green")))
    assert re.fullmatch(
        r"You're sending photos faster than I can look at them — please try again in \d+ s\.", flood.response.content
    )
    assert len(downloads) == 2, "the refused photo was never downloaded"
    other = await world.bob.slash(world.channel, "caption", image=("b.png", png_bytes("green")))
    assert other.response.components  # limits are per user
    assert len(await statuses(world)) == 3


async def test_message_without_images_gets_an_ephemeral_answer(world, env):
    posted = await world.bob.send(world.channel, "just words")
    result = await world.alice.context_menu(world.channel, texts.DISCORD_MENU_CAPTION, posted)
    assert result.ephemeral and result.response.content == texts.DISCORD_NO_IMAGES_IN_MESSAGE


async def test_one_reply_says_which_images_could_not_be_described(world, env):
    files = [pngs(1)[0], ("broken.png", CORRUPT), ("notes.txt", b"hello")]
    posted = await world.bob.send(world.channel, "", attachments=files)

    reply = (await world.alice.context_menu(world.channel, texts.DISCORD_MENU_CAPTION, posted)).response

    [row] = await captions(world)
    assert reply.content.splitlines() == [
        f"Image 1: {row.sentence}",
        f"Image 2: {image_error(CORRUPT)}",
        texts.not_an_image("notes.txt"),
    ]
    assert custom_ids(reply) == [f"cb:rate:{row.id}:1", f"cb:rate:{row.id}:-1", f"cb:fix:{row.id}", f"cb:alt:{row.id}"]
    assert await statuses(world) == [RequestStatus.DELIVERED]


async def test_at_most_five_images_per_message(world, env):
    posted = await world.bob.send(world.channel, "", attachments=pngs(6))
    reply = (await world.alice.context_menu(world.channel, texts.DISCORD_MENU_CAPTION, posted)).response
    lines = reply.content.splitlines()
    assert [line.split(":")[0] for line in lines[:5]] == [f"Image {i}" for i in range(1, 6)]
    assert lines[5] == texts.too_many_images(5, 1)
    assert len(reply.components) == 5


async def test_dm_with_a_non_image_file_is_told_so(world, env):
    user = world.alice.user
    await user.send_dm("", attachments=env.backend.store_attachments(user.dm_channel.id, [("a.zip", b"PK..")]))
    assert user.dm_channel.last_message.content == texts.not_an_image("a.zip")
