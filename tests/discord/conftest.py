"""The Discord bot against simcord's in-process Discord, on the real stack.

``world``: a migrated SQLite database, the memory:// queues, the caption worker with the tiny test
model and the :class:`~captionbot.service.CaptionService` (``captionbot_cli.runtime.Stack``), the bot
built by the production factory ``bot.discord.app:build``, and a simcord ``Env`` running it: one
server with a #general channel and two members, alice and bob.

Determinism without sleeps: a memory:// caption job is kicked from the bot's own interaction
handler, so simcord counts the whole pipeline (download, submit, worker batch, delivery notice,
follow-up) as the bot's work and every actor call returns once the answer is there.

Tests take the ``env`` fixture as well as ``world``: simcord's pytest plugin then runs the test in
the environment's clock and webhook context (e.g. ``discord.utils.utcnow()`` is simulated time).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import simcord

from bot.discord.app import CaptionBot, build
from bot.discord.images import DISCORD_MEDIA_HOSTS
from captionbot.storage.db import upgrade_async
from captionbot_cli.runtime import Stack
from tests.tiny_model import Backend, make_settings

SIMCORD_CDN_HOST = "cdn.simcord.invalid"


@dataclass
class World:
    env: simcord.Env
    settings: Any
    stack: Stack
    bot: CaptionBot
    guild: simcord.GuildHandle
    channel: simcord.ChannelHandle
    alice: simcord.MemberActor
    bob: simcord.MemberActor

    @property
    def service(self) -> Any:
        return self.stack.service

    async def restart(self) -> None:
        """A process restart: a new stack (worker, queues, service) on the same database and image
        store, a new bot built by the factory, attached where the old one was. Messages, channels
        and users stay (they live on Discord's side)."""
        await self.env.settle()
        await self.stack.close(grace=10)
        self.stack, self.bot = await open_stack(self.settings)
        await self.env.restart_bot(self.bot)


async def open_stack(settings: Any) -> tuple[Stack, CaptionBot]:
    """Stack + bot, wired as ``captionbot run`` does: the factory runs before the queues start."""
    built: list[Any] = []

    def register(stack: Stack) -> None:
        adapter = build(stack.settings, stack.service)  # registers the delivery handler
        # Test seam: attachments re-used as embedded images are served by simcord's fake CDN.
        adapter.bot.intake.media_hosts = DISCORD_MEDIA_HOSTS | {SIMCORD_CDN_HOST}
        built.append(adapter)

    # No sweep during a test: every delivery must come from the notice (or an explicit redelivery).
    stack = await Stack.open(
        settings, "all", adapters=False, before_start=register, service_options={"sweep_interval_s": 3600}
    )
    return stack, built[0].bot


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread() -> Any:
    """The tiny model is fastest on one thread; on a shared, busy CPU two threads can stall for seconds.
    Restored after this package, so other tests keep their setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def discord_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    marker = request.node.get_closest_marker("discord_settings")
    overrides = dict(marker.kwargs) if marker else {}
    backend = Backend(f"sqlite+aiosqlite:///{tmp_path}/captionbot.db", "memory://")
    return make_settings(tmp_path, backend, discord_bot_token="simcord-test-token", **overrides)


@pytest.fixture
async def world(request: pytest.FixtureRequest, discord_settings: Any) -> AsyncIterator[World]:
    await upgrade_async(discord_settings.database_url)
    marker = request.node.get_closest_marker("simcord")
    options = {"settle_timeout": 60.0, **(marker.kwargs if marker else {})}
    stack, bot = await open_stack(discord_settings)
    env = simcord.Env(bot, **options)
    w: World | None = None
    try:
        # The server exists before the bot logs in, with a configured id if commands sync to it.
        guild_ids = discord_settings.discord_guild_ids
        guild = env.create_guild("Photo club", id=guild_ids[0] if guild_ids else None)
        channel = guild.create_text_channel("general")
        alice = guild.add_member(env.create_user("alice", global_name="Alice"))
        bob = guild.add_member(env.create_user("bob", global_name="Bob"))
        await env.start()
        w = World(env, discord_settings, stack, bot, guild, channel, alice, bob)
        yield w
    finally:
        if env._started:
            await env.shutdown()
        await (w.stack if w is not None else stack).close(grace=10)
    env.raise_errors()  # anything the bot raised that simcord caught fails the test


@pytest.fixture
def env(world: World) -> simcord.Env:
    return world.env


@pytest.fixture(autouse=True)
def no_bot_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """The bot logs unexpected errors (and answers "something went wrong"): none may happen."""
    caplog.set_level(logging.INFO)
    yield caplog
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("bot.discord", "discord"))]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


@contextlib.contextmanager
def expected_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """Errors logged inside are part of the test (they are removed from the record)."""
    start = len(caplog.records)
    yield
    del caplog.records[start:]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "discord_settings(**overrides): Settings overrides for the `world` fixture")
