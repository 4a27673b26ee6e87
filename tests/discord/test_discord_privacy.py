"""/privacy, /forget (with confirmation), /optout, /optin, /stats: the same storage as every platform."""

from __future__ import annotations

import pytest
import simcord

from bot.discord.views import ForgetButton
from captionbot import texts
from captionbot.storage.models import RequestStatus
from tests.discord.helpers import captions, statuses
from tests.tiny_model import png_bytes

pytestmark = pytest.mark.timeout(120)


async def test_privacy_is_ephemeral_and_names_the_commands(world, env):
    result = await world.alice.slash(world.channel, "privacy")
    assert result.ephemeral
    assert result.response.content == world.service.privacy_text()
    assert "/optout" in result.response.content and "/forget" in result.response.content


async def test_forget_asks_first_and_only_the_asker_can_confirm(world, env):
    await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    sha = next(iter(world.stack.image_store))

    ask = await world.alice.slash(world.channel, "forget")
    assert ask.ephemeral and ask.response.content == texts.FORGET_ASK
    with pytest.raises(simcord.SetupError, match="not visible"):  # bob can't even see it
        await world.bob.click(ask.response, label=texts.BUTTON_FORGET_YES)

    done = await world.alice.click(ask.response, label=texts.BUTTON_FORGET_YES)

    assert done.response.content == texts.forgotten(photos=1, captions=1, feedback=0)
    assert done.response.components == []  # the buttons are gone
    assert await statuses(world) == [] and await captions(world) == []
    assert not world.stack.image_store.exists(sha)
    again = await world.alice.slash(world.channel, "forget")
    nothing = await world.alice.click(again.response, label=texts.BUTTON_FORGET_YES)
    assert nothing.response.content == texts.FORGET_NOTHING


async def test_forget_in_a_dm_can_be_cancelled(world, env):
    ask = await world.alice.user.slash("forget")  # in alice's DMs
    view_ids = [c["custom_id"] for row in ask.response.components for c in row["components"]]
    assert view_ids == [f"cb:forget:{world.alice.id}:yes", f"cb:forget:{world.alice.id}:no"]

    cancelled = await world.alice.user.click(ask.response, label=texts.BUTTON_FORGET_NO)
    assert cancelled.response.content == texts.FORGET_CANCELLED


async def test_optout_optin_and_stats(world, env):
    await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    assert await statuses(world) == [RequestStatus.DELIVERED]

    out = await world.alice.slash(world.channel, "optout")
    assert out.ephemeral and out.response.content == texts.OPTED_OUT
    stats = await world.alice.slash(world.channel, "stats")
    assert stats.ephemeral
    overview = await world.service.model_overview()
    assert stats.response.content == texts.stats(
        model=overview.model,
        total_captions=overview.total_captions,
        requests=1,
        captions=1,
        pending=0,
        failed=0,
        ratings=0,
        corrections=0,
        opted_out=True,
    )

    back = await world.alice.slash(world.channel, "optin")
    assert back.response.content == texts.OPTED_IN
    assert not (await world.service.stats(platform="discord", platform_user_id=str(world.alice.id))).opted_out
    assert "Your photos: 0 (" in (await world.bob.slash(world.channel, "stats")).response.content


async def test_forget_button_checks_the_user_itself():
    # Discord never shows the ephemeral prompt (or a DM) to anyone else, so simcord can't press it
    # as bob; the button doesn't rely on that alone. A stand-in interaction checks it directly.
    class Response:
        def __init__(self) -> None:
            self.said: list[tuple[str, bool]] = []

        def is_done(self) -> bool:
            return False

        async def send_message(self, text: str, *, ephemeral: bool, allowed_mentions: object) -> None:
            self.said.append((text, ephemeral))

    class Interaction:
        def __init__(self, user_id: int) -> None:
            self.user = type("User", (), {"id": user_id})()
            self.response = Response()

    button = ForgetButton(111, True)
    assert await button.interaction_check(Interaction(111))
    stranger = Interaction(222)
    assert not await button.interaction_check(stranger)
    assert stranger.response.said == [(texts.FORGET_NOT_YOURS, True)]
