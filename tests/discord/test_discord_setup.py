"""Start-up: command sync (global, or to configured test guilds), intents, what the factory builds."""

from __future__ import annotations

import pytest

from bot.discord.app import DiscordAdapter, build
from captionbot.storage.db import upgrade_async
from captionbot_cli.runtime import Stack
from tests.discord.helpers import captions
from tests.tiny_model import png_bytes

pytestmark = pytest.mark.timeout(120)

TEST_GUILD = 1456074443980899999


def command_syncs(env) -> list[str]:
    return [r.path for r in env.http_requests if r.method == "PUT" and r.path.endswith("/commands")]


async def test_commands_sync_globally_by_default(world, env):
    app_id = world.bot.application_id
    assert command_syncs(env) == [f"/applications/{app_id}/commands"]
    assert set(world.alice.available_commands(world.channel)) == {
        "caption",
        "alttext",
        "privacy",
        "forget",
        "optout",
        "optin",
        "stats",
    }
    assert set(world.alice.user.available_commands()) >= {"caption", "stats", "forget"}  # DMs too


@pytest.mark.discord_settings(discord_guild_ids=[TEST_GUILD])
async def test_commands_sync_to_configured_test_guilds(world, env):
    app_id = world.bot.application_id
    assert command_syncs(env) == [f"/applications/{app_id}/guilds/{TEST_GUILD}/commands"]
    await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))
    assert len(await captions(world)) == 1


async def test_no_privileged_intent_is_requested(world, env):
    intents = world.bot.intents
    assert not (intents.message_content or intents.members or intents.presences)
    assert intents.dm_messages and intents.guild_messages


async def test_factory_needs_a_token_and_never_shows_it(world, env):
    adapter = build(world.settings, world.service)
    assert isinstance(adapter, DiscordAdapter)
    assert "simcord-test-token" not in repr(adapter)
    world.service.register_delivery_handler("discord", world.bot.delivery)  # undo: keep the attached bot's handler
    with pytest.raises(RuntimeError, match="DISCORD_BOT_TOKEN"):
        build(world.settings.model_copy(update={"discord_bot_token": None}), world.service)


async def test_captionbot_run_loads_the_adapter_by_name_when_the_token_is_set(discord_settings, monkeypatch):
    # `captionbot run` path: runtime imports bot.discord.app:build lazily, then start() / stop().
    calls: list[str] = []

    async def start(self: DiscordAdapter) -> None:
        calls.append("start")  # (the real one logs in to Discord: no network in tests)

    async def stop(self: DiscordAdapter) -> None:
        calls.append("stop")

    monkeypatch.setattr(DiscordAdapter, "start", start)
    monkeypatch.setattr(DiscordAdapter, "stop", stop)
    await upgrade_async(discord_settings.database_url)
    stack = await Stack.open(discord_settings, "all")
    try:
        assert isinstance(stack.adapters["discord"], DiscordAdapter) and calls == ["start"]
    finally:
        await stack.close(grace=10)
    assert calls == ["start", "stop"]
