"""Small helpers for answering interactions: an ephemeral answer whatever the state, and a guard
so that an unexpected error still gets the user a sentence instead of "This interaction failed"."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec

import discord

from captionbot import texts
from captionbot.service import CaptionService

log = logging.getLogger(__name__)

P = ParamSpec("P")
NO_MENTIONS = discord.AllowedMentions.none()


def service_of(interaction: discord.Interaction[Any]) -> CaptionService:
    """The service of the bot that got ``interaction`` (a :class:`~bot.discord.app.CaptionBot`)."""
    service: CaptionService = interaction.client.service
    return service


async def say(interaction: discord.Interaction[Any], text: str, *, ephemeral: bool = True) -> None:
    """Answer ``interaction`` with ``text``: as its response, or as a follow-up once it has one."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)


def guarded(func: Callable[P, Awaitable[None]]) -> Callable[P, Coroutine[Any, Any, None]]:
    """Wrap an interaction callback (function or method): log an unexpected error and tell the
    user, briefly. The interaction is whichever argument is one."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await func(*args, **kwargs)
        except Exception:
            log.exception("interaction handler %s failed", func.__qualname__)
            interaction = next((a for a in args if isinstance(a, discord.Interaction)), None)
            if interaction is None:
                return
            try:
                await say(interaction, texts.ERROR)
            except discord.HTTPException:
                pass  # the interaction may be gone (expired); nothing more to do

    return wrapper
