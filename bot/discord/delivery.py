"""Sending finished captions to Discord: the delivery handler registered with the service.

An answer is an *edit* wherever it can be (see :mod:`bot.discord.board`), so that a delivery the
service repeats after a crash (Discord accepted the answer, the "delivered" mark never committed)
writes the same words into the same message instead of posting them twice:

* a slash command / context menu: the interaction's original response (its "thinking" message) is
  edited into the answer. The token lasts 15 minutes; past that (the bot was down, the queue was
  long) or when Discord refuses the edit, the answer is posted in the channel instead, mentioning
  the user: a new message, so that fallback is the one place a repeat could still show twice
  (Discord's ``enforce_nonce``, keyed by the request, catches a repeat within a few minutes);
* a DM or a mention: the placeholder reply ("Describing your photo…", ``status_message_id``) is
  edited into the answer; without one (it couldn't be posted) or when it is gone, the answer is a
  new reply to the user's message, with the same nonce.

Several images of one message share that message: one numbered line per image (then the text
read in it on a line of its own, each image's within its fair share of the 2,000 characters, cut
short with an "All text" button for the rest), one row of buttons per caption, each delivery
merging its lines into what the message already shows. Deliveries of one message still wait for
each other (:mod:`bot.discord.groups`) so that usually one edit holds everything. ``mode ==
"alt"`` (/alttext) puts the stored image, with its caption and text as Discord's alt text, into
the answer instead.

Errors follow the service's contract: a transient one (Discord unreachable, 5xx, rate limited, not
logged in yet) is raised, and the service retries later; a refused edit falls back to a new
message; a permanent error there (channel gone, no permission, DMs closed) is logged and the
delivery is considered done, since retrying can't help.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import discord

from bot.discord import board
from bot.discord.board import EditLocks, Target
from bot.discord.context import ReplyContext
from bot.discord.groups import Batch, ReplyGroups
from bot.discord.phototext import with_text
from bot.discord.respond import NO_MENTIONS
from bot.discord.views import CaptionRow, alt_text_message, caption_view
from captionbot import texts
from captionbot.service import CaptionService, Delivery

PLATFORM = "discord"

log = logging.getLogger(__name__)

Message = Callable[[], dict[str, Any]]  # keyword arguments for one edit or send (a discord.File is sent once)


class NotReadyError(RuntimeError):
    """The Discord client hasn't logged in yet (the service's start-up redelivery runs before the
    adapter starts): the service retries, and the adapter redelivers once it is ready."""


#: Kept free in every answer for what a late one adds below it (texts.late_reply, with a mention).
_LATE_ROOM = len(texts.late_reply("", f"<@{'9' * 20}>"))


def room_per_image(total: int, footer: str | None) -> int:
    """The characters each image's line may take (its caption and the text read in it), so that one
    answer fits a Discord message whatever the other images say: a fair share each, after the
    footer, the image numbers and the line breaks."""
    free = texts.DISCORD_MESSAGE_LIMIT - _LATE_ROOM - (len(footer) + 1 if footer else 0)
    number = len(texts.numbered(total - 1, "", total=total))
    return free // max(1, total) - number - 1


def said(delivery: Delivery, *, room: int = texts.DISCORD_MESSAGE_LIMIT) -> tuple[str, bool]:
    """What an answer says about one image within ``room`` characters: its caption, then on a line
    of its own the text read in it, or why there is none; and whether that text was cut short."""
    if delivery.ok:
        answer = texts.caption(delivery.text, delivery.confidence, band=delivery.band, hint=delivery.hint)
        return with_text(answer, delivery.photo_text, room=room)
    return delivery.failure_message or texts.ERROR, False


def answer_parts(parts: dict[int, Delivery], total: int, footer: str | None) -> tuple[dict[int, str], list[CaptionRow]]:
    """Each image's line (index -> line) and each caption's row of buttons, "All text" where cut."""
    room = room_per_image(total, footer)
    lines: dict[int, str] = {}
    rows: list[CaptionRow] = []
    for index, delivery in sorted(parts.items()):
        lines[index], cut = said(delivery, room=room)
        if delivery.ok and delivery.caption_id is not None:
            rows.append(CaptionRow(delivery.caption_id, index, total, all_text=cut))
    return lines, rows


def compose(batch: Batch[Delivery], total: int) -> tuple[str, discord.ui.View | None]:
    """The text (caption first, numbered when several) and the buttons of one reply."""
    lines, rows = answer_parts(batch.parts, total, batch.footer)
    return board.render({**batch.notes, **lines}, total, batch.footer), caption_view(rows) if rows else None


def nonce(request_id: str) -> str:
    """The request's nonce for a new message (Discord's limit: 25 characters): with
    ``enforce_nonce``, Discord answers a second send with the same nonce within a few minutes with
    the first message instead of posting again."""
    return hashlib.blake2b(request_id.encode(), digest_size=12).hexdigest()


class DiscordDelivery:
    """``async def __call__(delivery) -> answer message id``: the service's delivery handler."""

    def __init__(
        self, client: discord.Client, service: CaptionService, groups: ReplyGroups[Delivery], locks: EditLocks
    ) -> None:
        self.client = client
        self.service = service
        self.groups = groups
        self.locks = locks

    async def __call__(self, delivery: Delivery) -> str | None:
        if self.client.user is None or self.client.is_closed():
            raise NotReadyError("the Discord client is not logged in (yet, or any more)")
        try:
            ctx = ReplyContext.from_json(delivery.reply_context)
        except (KeyError, TypeError, ValueError):
            log.error("request %s has no usable Discord reply context; dropping its answer", delivery.request_id)
            return None

        async def post(batch: Batch[Delivery]) -> str | None:
            return await self._post(ctx, delivery, batch)

        result = await self.groups.deliver(
            ctx.group, delivery.request_id, ctx.index, delivery, total=ctx.total, boot=ctx.boot, post=post
        )
        return None if result is None else str(result)

    async def _post(self, ctx: ReplyContext, delivery: Delivery, batch: Batch[Delivery]) -> str | None:
        alt = await self._alt_text(ctx, delivery, batch)
        tgt = board.target(self.client, ctx, delivery.status_message_id)
        if tgt is not None:
            try:
                return str(await self._edit(ctx, tgt, batch, alt))
            except discord.HTTPException as exc:
                if _transient(exc):
                    raise  # Discord is having trouble: the service retries later
                log.info(
                    "can't edit the answer to %s into its message (%s %s); sending a new one",
                    delivery.request_id,
                    exc.status,
                    exc.code,
                )
        if alt is not None:
            return await self._send_new(ctx, delivery, alt())
        footer = ctx.footer if ctx.total <= 1 else batch.footer
        text, view = compose(replace(batch, footer=footer), ctx.total)
        return await self._send_new(ctx, delivery, {"content": text, "view": view} if view else {"content": text})

    async def _alt_text(self, ctx: ReplyContext, delivery: Delivery, batch: Batch[Delivery]) -> Message | None:
        """/alttext: the stored image with its caption as alt text; None when it can't be (no caption,
        photo gone): then the answer says why, or gives the caption, in words."""
        if ctx.mode != "alt" or not delivery.ok or delivery.caption_id is None or len(batch.parts) != 1:
            return None
        record = await self.service.find_caption(delivery.caption_id, platform=PLATFORM)
        data = None if record is None else await self.service.read_photo(record)
        if record is None or data is None:
            return None
        mention = f"<@{delivery.platform_user_id}>"
        return lambda: alt_text_message(record, data, mention)

    async def _edit(self, ctx: ReplyContext, tgt: Target, batch: Batch[Delivery], alt: Message | None) -> int:
        """Write the answer into ``tgt``; the same call again writes the same answer."""
        if alt is not None:
            return (await tgt.edit(**alt())).id
        if ctx.total > 1:
            lines, rows = answer_parts(batch.parts, ctx.total, ctx.footer)
            return await board.merge(
                tgt, self.locks, total=ctx.total, lines={**batch.notes, **lines}, rows=rows, footer=ctx.footer
            )
        text, view = compose(Batch(batch.parts, {}, ctx.footer), 1)
        return (await tgt.edit(content=text, view=view, allowed_mentions=NO_MENTIONS)).id

    async def _send_new(self, ctx: ReplyContext, delivery: Delivery, kwargs: dict[str, Any]) -> str | None:
        """The answer as a new message in the channel: a reply to the user's message, or for an
        interaction that can't be edited any more, a message that mentions the user."""
        channel = self.client.get_partial_messageable(ctx.channel_id)
        if "attachments" in kwargs:
            kwargs["files"] = kwargs.pop("attachments")
        if ctx.via_interaction:
            # Not a reply to anything: say who it's for, and let that one mention notify them.
            user = discord.Object(int(delivery.platform_user_id))
            if "files" not in kwargs:  # an alt-text post already names its user
                kwargs["content"] = texts.late_reply(kwargs.get("content") or "", f"<@{user.id}>")
            kwargs["allowed_mentions"] = discord.AllowedMentions(everyone=False, roles=False, users=[user])
        else:
            kwargs["allowed_mentions"] = discord.AllowedMentions.none()
            kwargs["allowed_mentions"].replied_user = True  # they asked: notify them
            if delivery.source_message_id:
                kwargs["reference"] = discord.MessageReference(
                    message_id=int(delivery.source_message_id), channel_id=ctx.channel_id, fail_if_not_exists=False
                )
        try:
            sent = await channel.send(nonce=nonce(delivery.request_id), **kwargs)
        except discord.HTTPException as exc:
            if _transient(exc):
                raise
            # Channel gone, no permission, user blocks DMs...: retrying can't help.
            log.warning(
                "can't answer request %s in its channel (%s %s); giving up", delivery.request_id, exc.status, exc.code
            )
            return None
        return str(sent.id)


def _transient(exc: discord.HTTPException) -> bool:
    """Worth retrying later: Discord's server errors and rate limits (discord.py already waited)."""
    return exc.status >= 500 or exc.status == 429
