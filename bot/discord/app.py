"""The Discord bot: a discord.py client wired to the :class:`~captionbot.service.CaptionService`.

``build(settings, service)`` is the adapter factory ``captionbot_cli.runtime`` calls (by name, only
when ``DISCORD_BOT_TOKEN`` is set). It registers the delivery handler at once, before the queues
start, and returns a :class:`DiscordAdapter` whose ``start()`` logs in (which runs ``setup_hook``:
persistent buttons, command sync) and connects in the background, and whose ``stop()`` closes.

Intents: the defaults, without the privileged ``message_content``. Slash commands, the context
menu, DMs and mentions all work without it (see :mod:`bot.discord.intake`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from typing import Any

import discord
from discord import app_commands

from bot.discord.board import EditLocks
from bot.discord.commands import build_commands
from bot.discord.delivery import DiscordDelivery
from bot.discord.groups import ReplyGroups
from bot.discord.images import DISCORD_MEDIA_HOSTS
from bot.discord.intake import Intake
from bot.discord.respond import NO_MENTIONS, say
from bot.discord.views import DYNAMIC_ITEMS, submit_correction
from captionbot import texts
from captionbot.service import CaptionService, Delivery
from captionbot.settings import Settings

log = logging.getLogger(__name__)


class CaptionTree(app_commands.CommandTree):
    """Command tree whose unexpected errors are logged and answered with a short apology."""

    async def on_error(self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /) -> None:
        log.error(
            "command %s failed",
            interaction.command.name if interaction.command else "?",
            exc_info=getattr(error, "original", error),
        )
        try:
            await say(interaction, texts.ERROR)
        except discord.HTTPException:
            pass


class CaptionBot(discord.Client):
    """Everything Discord: commands, buttons, DMs and mentions in; captions out."""

    def __init__(
        self,
        *,
        service: CaptionService,
        settings: Settings,
        guild_ids: Sequence[int] = (),
        media_hosts: Collection[str] = DISCORD_MEDIA_HOSTS,
        group_wait_s: float = 60.0,
    ) -> None:
        # Guilds, guild and DM messages; no privileged intent.
        super().__init__(intents=discord.Intents.default(), allowed_mentions=NO_MENTIONS)
        self.service = service
        self.settings = settings
        self.guild_ids = list(guild_ids)
        self.tree = CaptionTree(self)
        self.groups: ReplyGroups[Delivery] = ReplyGroups(wait_s=group_wait_s)
        self.edit_locks = EditLocks()  # answers shared by several images are edited one at a time
        self.intake = Intake(
            service,
            self.groups,
            client=self,
            locks=self.edit_locks,
            max_image_bytes=settings.max_image_bytes,
            fetch=self._fetch_media,
            media_hosts=media_hosts,
        )
        self.delivery = DiscordDelivery(self, service, self.groups, self.edit_locks)
        for command in build_commands(service=service, intake=self.intake, max_image_bytes=settings.max_image_bytes):
            self.tree.add_command(command)

    async def _fetch_media(self, url: str) -> bytes:
        # self.http is looked up at call time: it is only complete (session, token) after login.
        return await self.http.get_from_cdn(url)

    async def setup_hook(self) -> None:
        for item in DYNAMIC_ITEMS:
            self.add_dynamic_items(item)  # buttons of every earlier message keep working
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """Global commands take a while to appear everywhere; test guilds get them at once."""
        if not self.guild_ids:
            synced = await self.tree.sync()
            log.info("synced %d global application commands", len(synced))
            return
        for guild_id in self.guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d application commands to guild %d", len(synced), guild_id)

    async def on_ready(self) -> None:
        log.info("Discord: logged in as %s, in %d server(s)", self.user, len(self.guilds))
        # Results that finished while we were away (or before login) go out now.
        await self.service.redeliver_pending()

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        # Correction modals are answered here, from their custom id (see views.CorrectionModal).
        await submit_correction(interaction)

    async def on_message(self, message: discord.Message) -> None:
        if self.user is None or message.author.id == self.user.id:
            return
        try:
            await self.intake.on_message(message, self.user)
        except Exception:
            log.exception("handling a message failed")
            try:
                await message.reply(texts.ERROR, mention_author=False)
            except discord.HTTPException:
                pass


class DiscordAdapter:
    """What ``captionbot_cli.runtime`` runs: ``start()`` logs in and connects; ``stop()`` closes."""

    def __init__(self, bot: CaptionBot, token: str) -> None:
        self.bot = bot
        self._token = token
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"DiscordAdapter(guild_ids={self.bot.guild_ids})"  # no token

    async def start(self) -> None:
        await self.bot.login(self._token)  # runs setup_hook: buttons, command sync
        self._task = asyncio.create_task(self.bot.connect(reconnect=True), name="discord-gateway")
        self._task.add_done_callback(_log_gateway_end)

    async def stop(self) -> None:
        await self.bot.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def _log_gateway_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("Discord gateway connection ended: %s", type(task.exception()).__name__)


def build(settings: Settings, service: CaptionService) -> DiscordAdapter:
    """The adapter factory (``bot.discord.app:build``): bot + delivery handler, not started yet."""
    if settings.discord_bot_token is None:
        raise RuntimeError("DISCORD_BOT_TOKEN is not set")
    bot = CaptionBot(service=service, settings=settings, guild_ids=settings.discord_guild_ids)
    service.register_delivery_handler("discord", bot.delivery)
    return DiscordAdapter(bot, settings.discord_bot_token.get_secret_value())


__all__ = ["CaptionBot", "DiscordAdapter", "build"]
