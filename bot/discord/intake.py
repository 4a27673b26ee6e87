"""Taking images in: from a slash command, a context menu, a DM or a mention, into the service's queue.

Interactions are acknowledged first thing (Discord allows 3 seconds): refusals that need no
download (not an image, too big, no image at all) are answered at once and ephemerally; anything
else is deferred with "thinking", then downloaded and submitted. That "thinking" message is the
answer's placeholder: it exists before any request is stored, and :mod:`bot.discord.delivery`
edits it into the caption. A refusal found after deferring (rate limit, corrupt file) replaces it
too (a deferred public response can't turn ephemeral any more).

Messages (DMs, and mentions in servers) get a placeholder reply, "Describing your photo…", posted
by the service (``take_photo``'s ``placeholder``) once the first image of the message has passed
every check and right before its request is stored with the reply's id; the message's other images
share it, and the answer is edited into it, as is any refusal that comes after it. Without
the privileged message content intent Discord still shows the bot a DM's or a mentioning message's
attachments, but not those of the message a mention replies to; so that one is fetched over REST
(which works when the intent is enabled in the developer portal, even undeclared), and when its
images stay hidden the user is pointed at the context menu, which always works.

Every image is taken with an ``intake_key`` naming it (the message or interaction, and its
index), so the same message handled twice is taken, and answered, once; in one process, a second
handling that starts while the first is still running is dropped at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

import discord

from bot.discord import board
from bot.discord.board import EditLocks
from bot.discord.context import Mode, ReplyContext
from bot.discord.corrections import Corrections
from bot.discord.groups import ReplyGroups
from bot.discord.images import DISCORD_MEDIA_HOSTS, Found, ImageSource, find_images
from bot.discord.respond import NO_MENTIONS, say
from captionbot import texts
from captionbot.service import CaptionService, PhotoUnavailableError, Rejected

log = logging.getLogger(__name__)

PLATFORM = "discord"
_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)
#: A placeholder reply notifies the person who asked, as the answer itself used to.
REPLY_PING = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


@dataclass
class Outcome:
    """What the intake did with one message's images."""

    queued: list[str] = field(default_factory=list)  # request ids
    notes: dict[int, str] = field(default_factory=dict)  # index -> why that image wasn't queued
    total: int = 0
    footer: str | None = None
    again: bool = False  # the message was taken before (handled twice): nothing more to do or say
    placeholder_id: str | None = None  # the message the answer (or a refusal) is edited into

    def summary(self) -> str:
        """The answer when nothing was queued: every reason, in image order."""
        return board.render(self.notes, self.total, self.footer) or texts.ERROR


class Placeholder:
    """``take_photo``'s ``placeholder`` for all images of one message: posts on the first call and
    gives the same id after. Once posting failed it fails for the other images too, so that the
    images of a message are all answered the same way (without one: in one new reply)."""

    def __init__(self, post: Callable[[], Awaitable[str | int]]) -> None:
        self._post = post
        self._failed = False
        self.id: str | None = None

    async def __call__(self) -> str:
        if self.id is None:
            if self._failed:
                raise RuntimeError("the placeholder of this message could not be posted")
            try:
                self.id = str(await self._post())
            except BaseException:
                self._failed = True
                raise
        return self.id


def _footer(found: Found) -> str | None:
    """What the answer says below the captions: attachments refused from their metadata, images skipped."""
    parts = list(found.refused)
    if found.skipped:
        parts.append(texts.too_many_images(len(found.images), found.skipped))
    return " ".join(parts) or None


class Intake:
    """Submits images to the :class:`~captionbot.service.CaptionService` on behalf of Discord users."""

    def __init__(
        self,
        service: CaptionService,
        groups: ReplyGroups[Any],
        *,
        client: discord.Client,
        locks: EditLocks,
        max_image_bytes: int,
        fetch: Callable[[str], Awaitable[bytes]],
        media_hosts: Collection[str] = DISCORD_MEDIA_HOSTS,
    ) -> None:
        self.service = service
        self.groups = groups
        self.client = client
        self.locks = locks
        self.max_image_bytes = max_image_bytes
        self.fetch = fetch
        self.media_hosts = media_hosts
        self.corrections = Corrections(service)
        self._handling: set[int] = set()  # messages being taken in now (a duplicate dispatch waits for none)

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
        callback = await interaction.response.defer(thinking=True)
        deferred_id = getattr(callback, "message_id", None)  # Discord says the new message's id

        async def thinking() -> int:
            """The placeholder: the "thinking" message, there already."""
            return deferred_id if deferred_id is not None else (await interaction.original_response()).id

        assert interaction.channel_id is not None  # every command interaction has a channel
        ctx = ReplyContext(
            channel_id=interaction.channel_id,
            group=f"i{interaction.id}",
            boot=self.groups.boot,
            mode=mode,
            footer=_footer(found),
            application_id=interaction.application_id,
            interaction_id=interaction.id,
            token=interaction.token,
        )
        outcome = await self._submit(
            found,
            ctx,
            user=interaction.user,
            in_guild=interaction.guild_id is not None,
            source_message_id=None,
            key=f"discord:interaction:{interaction.id}",
            placeholder=Placeholder(thinking),
        )
        await self._settle(ctx, outcome, interaction)

    # -- messages --------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message, me: discord.ClientUser) -> None:
        """DMs: every message. Servers: messages that mention the bot (also in a reply), and replies
        to our captions. A text without images may be a better caption (:mod:`bot.discord.corrections`)."""
        if message.author.bot or message.webhook_id is not None or message.type not in _USER_MESSAGES:
            return
        if message.guild is None:
            found = self.find(message)
            if found.images or found.refused:
                await self._from_message(message, found)
            elif not (await self.corrections.from_reply(message, me) or await self.corrections.from_wait(message, me)):
                await message.reply(texts.DISCORD_HELP, mention_author=False, allowed_mentions=NO_MENTIONS)
            return
        if me.id not in message.raw_mentions:  # an explicit @mention, not just a reply ping
            await self.corrections.from_reply(message, me)  # a better caption as a reply to ours
            return
        replied = await self._referenced(message)
        if await self.corrections.from_reply(message, me, replied):
            return
        found = self.find(message, extra=(replied,) if replied is not None else ())
        if found.images or found.refused:
            await self._from_message(message, found)
        elif not await self.corrections.from_wait(message, me):
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
        if message.id in self._handling:
            # The same message dispatched twice at once: this one would only find it taken (or be
            # refused by the rate limit the other one is charged).
            log.info("message m%s is being taken in already", message.id)
            return
        self._handling.add(message.id)
        try:
            await self._take_message(message, found)
        finally:
            self._handling.discard(message.id)

    async def _take_message(self, message: discord.Message, found: Found) -> None:
        ctx = ReplyContext(
            channel_id=message.channel.id, group=f"m{message.id}", boot=self.groups.boot, footer=_footer(found)
        )

        async def describing() -> int:
            return (await message.reply(texts.DESCRIBING, allowed_mentions=REPLY_PING)).id

        outcome = await self._submit(
            found,
            ctx,
            user=message.author,
            in_guild=message.guild is not None,
            source_message_id=message.id,
            key=f"discord:{message.channel.id}:{message.id}",
            placeholder=Placeholder(describing),
        )
        if not outcome.queued and not outcome.again and outcome.placeholder_id is None:
            await message.reply(outcome.summary(), mention_author=False, allowed_mentions=NO_MENTIONS)
            return
        await self._settle(ctx, outcome)

    # -- submitting ------------------------------------------------------------------------------

    async def _submit(
        self,
        found: Found,
        ctx: ReplyContext,
        *,
        user: discord.abc.User,
        in_guild: bool,
        source_message_id: int | None,
        key: str,
        placeholder: Placeholder,
    ) -> Outcome:
        total = len(found.images)
        out = Outcome(total=total, footer=ctx.footer)
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
                    intake_key=f"{key}:{index}",
                    placeholder=placeholder,
                )
                if isinstance(result, Rejected):
                    out.notes[index] = result.message
                elif result.again:
                    # Taken before (the same message handled twice): that intake answers it. Stop
                    # before another image could post a second placeholder.
                    log.info("message %s was taken before; not taking it again", ctx.group)
                    out.again = True
                    break
                else:
                    out.queued.append(result.request_id)
        finally:
            out.placeholder_id = placeholder.id or out.placeholder_id
            # Always: deliveries of this group may already be waiting for it (see groups.py).
            if not out.again:
                self.groups.open(ctx.group, out.queued, total=total, notes=out.notes, footer=out.footer)
        return out

    async def _settle(
        self, ctx: ReplyContext, outcome: Outcome, interaction: discord.Interaction[Any] | None = None
    ) -> None:
        """After the last image: a placeholder nothing was queued for becomes the refusal; one
        shared by several images shows each image's line (refused, or still being described) at
        once, so that the refusals are there even if the process dies before the answers come."""
        if outcome.again:
            if outcome.placeholder_id and not outcome.queued and interaction is None:
                # Posted for nothing: another handling of the same message stored it at the same moment.
                orphan = self.client.get_partial_messageable(ctx.channel_id).get_partial_message(
                    int(outcome.placeholder_id)
                )
                with contextlib.suppress(discord.HTTPException):
                    await orphan.delete()
            return
        if interaction is not None:
            tgt: board.Target | None = board.original_response(interaction, outcome.placeholder_id)
        else:
            tgt = board.target(self.client, ctx, outcome.placeholder_id)
        if tgt is None:
            return
        if not outcome.queued:
            async with self.locks(tgt.key):
                await tgt.edit(content=outcome.summary(), view=None, allowed_mentions=NO_MENTIONS)
        elif outcome.total > 1:
            pending = [i for i in range(outcome.total) if i not in outcome.notes]
            try:
                await board.merge(
                    tgt, self.locks, total=outcome.total, lines=outcome.notes, pending=pending, footer=outcome.footer
                )
            except discord.HTTPException as exc:
                # The answers still write their own lines (and the refusals, from memory) when they come.
                log.warning("can't show the lines of %s yet (%s %s)", ctx.group, exc.status, exc.code)


def _download(image: ImageSource, group: str) -> Callable[[], Awaitable[bytes]]:
    """The service's download callable for one image (called after the rate-limit check)."""

    async def download() -> bytes:
        try:
            return await image.read()
        except (discord.HTTPException, OSError, TimeoutError):
            log.info("download of an image failed (%s)", group)
            raise PhotoUnavailableError(texts.DOWNLOAD_FAILED) from None

    return download
