"""The application commands: thin wrappers that hand the work to the bot's intake and service.

None needs the privileged message content intent: slash-command attachments and a context menu's
target message come with the interaction itself. Privacy answers are ephemeral (only the user sees
them); the /forget confirmation button only works for the person who ran /forget.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.discord.images import Found, from_attachment, precheck
from bot.discord.intake import Intake
from bot.discord.respond import say
from bot.discord.views import forget_view
from captionbot import texts
from captionbot.service import CaptionService

PLATFORM = "discord"
AppCommand = app_commands.Command[Any, Any, Any] | app_commands.ContextMenu


def _one(attachment: discord.Attachment, max_bytes: int) -> Found:
    problem = precheck(attachment, max_bytes)
    return Found([], [problem]) if problem else Found([from_attachment(attachment)], [])


def build_commands(*, service: CaptionService, intake: Intake, max_image_bytes: int) -> list[AppCommand]:
    """Fresh command objects for one bot's tree (a second bot, e.g. after a restart, gets its own)."""

    @app_commands.command(name="caption", description=texts.DISCORD_CMD_CAPTION)
    @app_commands.describe(image=texts.DISCORD_CMD_CAPTION_IMAGE)
    async def caption(interaction: discord.Interaction[Any], image: discord.Attachment) -> None:
        await intake.from_interaction(interaction, _one(image, max_image_bytes))

    @app_commands.command(name="alttext", description=texts.DISCORD_CMD_ALTTEXT)
    @app_commands.describe(image=texts.DISCORD_CMD_ALTTEXT_IMAGE)
    async def alttext(interaction: discord.Interaction[Any], image: discord.Attachment) -> None:
        await intake.from_interaction(interaction, _one(image, max_image_bytes), mode="alt")

    async def caption_message(interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await intake.from_interaction(interaction, intake.find(message))

    @app_commands.command(name="privacy", description=texts.COMMANDS["privacy"])
    async def privacy(interaction: discord.Interaction[Any]) -> None:
        await say(interaction, service.privacy_text())

    @app_commands.command(name="forget", description=texts.COMMANDS["forget"])
    async def forget(interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message(texts.FORGET_ASK, view=forget_view(interaction.user.id), ephemeral=True)

    @app_commands.command(name="optout", description=texts.COMMANDS["optout"])
    async def optout(interaction: discord.Interaction[Any]) -> None:
        await service.set_opt_out(platform=PLATFORM, platform_user_id=str(interaction.user.id), opt_out=True)
        await say(interaction, texts.OPTED_OUT)

    @app_commands.command(name="optin", description=texts.COMMANDS["optin"])
    async def optin(interaction: discord.Interaction[Any]) -> None:
        await service.set_opt_out(platform=PLATFORM, platform_user_id=str(interaction.user.id), opt_out=False)
        await say(interaction, texts.OPTED_IN)

    @app_commands.command(name="stats", description=texts.COMMANDS["stats"])
    async def stats(interaction: discord.Interaction[Any]) -> None:
        await say(interaction, await service.stats_text(platform=PLATFORM, platform_user_id=str(interaction.user.id)))

    menu = app_commands.ContextMenu(name=texts.DISCORD_MENU_CAPTION, callback=caption_message)
    return [caption, alttext, menu, privacy, forget, optout, optin, stats]
