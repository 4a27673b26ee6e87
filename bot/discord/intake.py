"""Taking images in: from a slash command, a context menu, a DM or a mention, into the service's queue.

Interactions are acknowledged first thing (Discord allows 3 seconds): refusals that need no
download (not an image, too big, no image at all) are answered at once and ephemerally; anything
else is deferred with "thinking", then downloaded and submitted. The caption itself arrives later
through :mod:`bot.discord.delivery`, which answers the deferred interaction. A refusal found after
deferring (rate limit, corrupt file) replaces the "thinking" message (a deferred public response
can't turn ephemeral any more).

Messages (DMs, and mentions in servers) are answered with a reply. Without the privileged message
content intent Discord still shows the bot a DM's or a mentioning message's attachments, but not
those of the message a mention replies to; so that one is fetched over REST (which works when the
intent is enabled in the developer portal, even undeclared), and when its images stay hidden the
user is pointed at the context menu, which always works.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

import discord

from bot.discord.context import Mode, ReplyContext
from bot.discord.groups import ReplyGroups
from bot.discord.images import DISCORD_MEDIA_HOSTS, Found, ImageSource, find_images
from bot.discord.respond import NO_MENTIONS, say
from captionbot import texts
from captionbot.service import CaptionService, PhotoUnavailableError, Rejected

log = logging.getLogger(__name__)

PLATFORM = "discord"
_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)


@dataclass
class Outcome:
    """What the intake did with one message's images."""

    queued: list[str] = field(default_factory=list)  # request ids
    notes: dict[int, str] = field(default_factory=dict)  # index -> why that image wasn't queued
    total: int = 0
    footer: str | None = None

    def summary(self) -> str:
        """The answer when nothing was queued: every reason, in image order."""
        lines = [texts.numbered(i, self.notes[i], total=self.total) for i in sorted(self.notes)]
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines) or texts.ERROR


class Intake:
    """Submits images to the :class:`~captionbot.service.CaptionService` on behalf of Discord users."""

    def __init__(
        self,
        service: CaptionService,
        groups: ReplyGroups[Any],
        *,
        max_image_bytes: int,
        fetch: Callable[[str], Awaitable[bytes]],
        media_hosts: Collection[str] = DISCORD_MEDIA_HOSTS,
    ) -> None:
        self.service = service
        self.groups = groups
        self.max_image_bytes = max_image_bytes
        self.fetch = fetch
        self.media_hosts = media_hosts

    def find(self, message: discord.Message, *, extra: tuple[discord.Message, ...] = ()) -> Found:
        return find_images(
            message, max_bytes=self.max_image_bytes, fetch=self.fetch, media_hosts=self.media_hosts, extra=extra
        )

    # -- interactions ----------------------------------------------------------------------------

    async def from_interaction(
        self,
        interaction: discord.Interaction[Any],
        found: Found,
        *,
        mode: Mode = "caption",
        empty: str = texts.DISCORD_NO_IMAGES_IN_MESSAGE,
    ) -> None:
        if not found.images:
            await say(interaction, found.refused[0] if found.refused else empty)
            return
        await interaction.response.defer(thinking=True)
        assert interaction.channel_id is not None  # every command interaction has a channel
        ctx = ReplyContext(
            channel_id=interaction.channel_id,
            group=f"i{interaction.id}",
            boot=self.groups.boot,
            mode=mode,
            application_id=interaction.application_id,
            interaction_id=interaction.id,
            token=interaction.token,
        )
        outcome = await self._submit(
            found, ctx, user=interaction.user, in_guild=interaction.guild_id is not None, source_message_id=None
        )
        if not outcome.queued:
            await interaction.followup.send(outcome.summary(), allowed_mentions=NO_MENTIONS)  # replaces "thinking"

    # -- messages --------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message, me: discord.ClientUser) -> None:
        """DMs: every message. Servers: messages that mention the bot (also in a reply)."""
        if message.author.bot or message.webhook_id is not None or message.type not in _USER_MESSAGES:
            return
        if message.guild is None:
            found = self.find(message)
            if found.images or found.refused:
                await self._from_message(message, found)
            else:
                await message.reply(texts.DISCORD_HELP, mention_author=False, allowed_mentions=NO_MENTIONS)
            return
        if me.id not in message.raw_mentions:  # an explicit @mention, not just a reply ping
            return
        replied = await self._referenced(message)
        found = self.find(message, extra=(replied,) if replied is not None else ())
        if found.images or found.refused:
            await self._from_message(message, found)
        else:
            text = texts.DISCORD_NO_IMAGES_IN_REPLY if message.reference is not None else texts.DISCORD_HELP
            await message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS)

    @staticmethod
    async def _referenced(message: discord.Message) -> discord.Message | None:
        """The message ``message`` replies to, fetched over REST (the gateway copy has no attachments
        without the message content intent)."""
        ref = message.reference
        if ref is None or ref.message_id is None or ref.type is not discord.MessageReferenceType.reply:
            return None  # not a reply (a forward, say)
        channel = message.channel
        if ref.channel_id != channel.id:
            return None
        try:
            return await channel.fetch_message(ref.message_id)
        except (discord.NotFound, discord.Forbidden):
            return None

    async def _from_message(self, message: discord.Message, found: Found) -> None:
        if not found.images:
            await message.reply(found.refused[0], mention_author=False, allowed_mentions=NO_MENTIONS)
            return
        ctx = ReplyContext(channel_id=message.channel.id, group=f"m{message.id}", boot=self.groups.boot)
        outcome = await self._submit(
            found, ctx, user=message.author, in_guild=message.guild is not None, source_message_id=message.id
        )
        if not outcome.queued:
            await message.reply(outcome.summary(), mention_author=False, allowed_mentions=NO_MENTIONS)

    # -- submitting ------------------------------------------------------------------------------

    async def _submit(
        self, found: Found, ctx: ReplyContext, *, user: discord.abc.User, in_guild: bool, source_message_id: int | None
    ) -> Outcome:
        total = len(found.images)
        footer_parts = list(found.refused)
        if found.skipped:
            footer_parts.append(texts.too_many_images(len(found.images), found.skipped))
        out = Outcome(total=total, footer=" ".join(footer_parts) or None)
        try:
            for index, image in enumerate(found.images):
                result = await self.service.take_photo(
                    platform=PLATFORM,
                    platform_chat_id=ctx.channel_id,
                    chat_kind="guild" if in_guild else "dm",
                    platform_user_id=user.id,
                    display_name=user.display_name,
                    download=_download(image, ctx.group),
                    source_message_id=source_message_id,
                    reply_context=replace(ctx, index=index, total=total).to_json(),
                )
                if isinstance(result, Rejected):
                    out.notes[index] = result.message
                else:
                    out.queued.append(result.request_id)
        finally:
            # Always: deliveries of this group may already be waiting for it (see groups.py).
            self.groups.open(ctx.group, out.queued, total=total, notes=out.notes, footer=out.footer)
        return out


def _download(image: ImageSource, group: str) -> Callable[[], Awaitable[bytes]]:
    """The service's download callable for one image (called after the rate-limit check)."""

    async def download() -> bytes:
        try:
            return await image.read()
        except (discord.HTTPException, OSError, TimeoutError):
            log.info("download of an image failed (%s)", group)
            raise PhotoUnavailableError(texts.DOWNLOAD_FAILED) from None

    return download
