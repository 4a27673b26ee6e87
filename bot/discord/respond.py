"""Small helpers for answering interactions: an ephemeral answer whatever the state, and a guard
so that an unexpected error still gets the user a sentence instead of "This interaction failed"."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import discord

from bot.discord import texts

log = logging.getLogger(__name__)

P = ParamSpec("P")
S = TypeVar("S")
NO_MENTIONS = discord.AllowedMentions.none()


async def say(interaction: discord.Interaction[Any], text: str, *, ephemeral: bool = True) -> None:
    """Answer ``interaction`` with ``text``: as its response, or as a follow-up once it has one."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)


def guarded(
    func: Callable[Concatenate[S, discord.Interaction[Any], P], Awaitable[None]],
) -> Callable[Concatenate[S, discord.Interaction[Any], P], Awaitable[None]]:
    """Wrap an interaction callback (method): log an unexpected error and tell the user, briefly."""

    @functools.wraps(func)
    async def wrapper(self: S, interaction: discord.Interaction[Any], *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await func(self, interaction, *args, **kwargs)
        except Exception:
            log.exception("interaction handler %s failed", func.__qualname__)
            try:
                await say(interaction, texts.ERROR)
            except discord.HTTPException:
                pass  # the interaction may be gone (expired); nothing more to do

    return wrapper
