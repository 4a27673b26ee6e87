"""Rating buttons and "Better caption" (modal), stored by the service; stale buttons."""

from __future__ import annotations

import pytest

from captionbot import texts
from tests.discord.helpers import captions, feedback, labels, pngs
from tests.tiny_model import png_bytes

pytestmark = pytest.mark.timeout(120)


async def _caption(world):
    result = await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    [row] = await captions(world)
    return result.response, row


async def test_rating_is_recorded_changeable_and_per_user(world, env):
    message, row = await _caption(world)

    first = await world.alice.click(message, label="Good")
    assert await feedback(world, row.id) == {str(world.alice.id): (1, None)}
    [thanks] = first.followups
    assert thanks.ephemeral and thanks.content == texts.rated(1)
    assert labels(world.channel.last_message)[:2] == ["Good (1)", "Wrong"]  # the message shows it

    await world.alice.click(world.channel.last_message, label="Good (1)")  # again: still one rating
    assert await feedback(world, row.id) == {str(world.alice.id): (1, None)}

    changed = await world.alice.click(world.channel.last_message, label="Wrong")
    assert await feedback(world, row.id) == {str(world.alice.id): (-1, None)}
    assert changed.followups[0].content == texts.rated(-1)
    assert labels(world.channel.last_message)[:2] == ["Good", "Wrong (1)"]

    await world.bob.click(world.channel.last_message, label="Wrong (1)")
    assert await feedback(world, row.id) == {str(world.alice.id): (-1, None), str(world.bob.id): (-1, None)}
    assert labels(world.channel.last_message)[:2] == ["Good", "Wrong (2)"]
    stats = await world.service.stats(platform="discord", platform_user_id=str(world.bob.id))
    assert stats.ratings == 1 and stats.requests == 0  # bob rated someone else's caption


async def test_rating_one_caption_of_several_updates_only_its_row(world, env):
    posted = await world.bob.send(world.channel, "", attachments=pngs(2))
    reply = (await world.alice.context_menu(world.channel, texts.DISCORD_MENU_CAPTION, posted)).response
    first, second = await captions(world)

    await world.bob.click(reply, label="Good 2")

    assert await feedback(world, second.id) == {str(world.bob.id): (1, None)}
    assert await feedback(world, first.id) == {}
    assert labels(world.channel.last_message) == [
        "Good 1",
        "Wrong 1",
        "Better caption 1",
        "Alt text 1",
        "Good 2 (1)",
        "Wrong 2",
        "Better caption 2",
        "Alt text 2",
    ]


async def test_better_caption_opens_a_modal_and_stores_the_correction(world, env):
    message, row = await _caption(world)

    shown = await world.bob.click(message, label="Better caption")
    assert shown.modal is not None and shown.modal["title"] == texts.DISCORD_MODAL_TITLE
    [field] = [c for r in shown.modal["components"] for c in r["components"]]
    assert field["value"] == row.text  # pre-filled with the caption, to edit

    saved = await world.bob.submit_modal(shown, {"caption": "  A red   square on white "})

    assert saved.ephemeral and saved.response.content == texts.correction_saved("A red square on white")
    assert await feedback(world, row.id) == {str(world.bob.id): (None, "A red square on white")}

    again = await world.bob.click(message, label="Better caption")
    empty = await world.bob.submit_modal(again, {"caption": "   "})
    assert empty.ephemeral and empty.response.content == "Please send the caption you'd suggest as text."


async def test_buttons_of_a_deleted_caption_say_so(world, env):
    message, row = await _caption(world)
    opened = await world.bob.click(message, label="Better caption")
    await world.service.forget(platform="discord", platform_user_id=str(world.alice.id))

    late = await world.bob.submit_modal(opened, {"caption": "too late"})
    assert late.ephemeral and late.response.content == texts.CAPTION_GONE

    for label in ("Good", "Better caption", "Alt text"):
        stale = await world.bob.click(message, label=label)
        assert stale.ephemeral and stale.response.content == texts.CAPTION_GONE, label
    assert await feedback(world, row.id) == {}
