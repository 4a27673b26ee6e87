"""Sending finished captions to Discord: the delivery handler registered with the service.

Where an answer goes, from the request's :class:`~bot.discord.context.ReplyContext`:

* a slash command / context menu / button: a follow-up on the interaction's webhook, which
  replaces its "thinking" message. The token lasts 15 minutes; past that (the bot was down, the
  queue was long) or when Discord says the token is gone, the answer is posted in the channel
  instead, mentioning the user;
* a DM or a mention: a reply to the user's message.

Several images of one message are answered by one reply (see :mod:`bot.discord.groups`): one
numbered line per image, one row of buttons per caption. ``mode == "alt"`` (/alttext) posts the
stored image with its caption as Discord's alt text instead.

Errors follow the service's contract: a transient one (Discord unreachable, 5xx, rate limited, not
logged in yet) is raised, and the service retries later; a refused follow-up falls back to the
channel; a permanent one there (channel gone, no permission, DMs closed) is logged and the
delivery is considered done, since retrying can't help.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import discord

from bot.discord.context import ReplyContext
from bot.discord.groups import Batch, ReplyGroups
from bot.discord.respond import NO_MENTIONS
from bot.discord.views import CaptionRow, alt_text_message, caption_view
from captionbot import texts
from captionbot.service import CaptionService, Delivery

PLATFORM = "discord"

log = logging.getLogger(__name__)

#: Discord error codes meaning "this interaction token can't be used any more".
_TOKEN_GONE = {10015, 50027}  # Unknown Webhook, Invalid Webhook Token


class NotReadyError(RuntimeError):
    """The Discord client hasn't logged in yet (the service's start-up redelivery runs before the
    adapter starts): the service retries, and the adapter redelivers once it is ready."""


def compose(batch: Batch[Delivery], total: int) -> tuple[str, discord.ui.View | None]:
    """The text (caption first, numbered when several) and the buttons of one reply."""
    lines: dict[int, str] = dict(batch.notes)
    rows: list[CaptionRow] = []
    for index, delivery in batch.parts.items():
        if delivery.ok:
            lines[index] = texts.caption(delivery.text, delivery.confidence, band=delivery.band, hint=delivery.hint)
            if delivery.caption_id is not None:
                rows.append(CaptionRow(delivery.caption_id, index, total))
        else:
            lines[index] = delivery.failure_message or texts.ERROR
    text = "\n".join(texts.numbered(i, lines[i], total=total) for i in sorted(lines))
    if batch.footer:
        text += "\n" + batch.footer
    rows.sort(key=lambda r: r.index)
    return text, caption_view(rows) if rows else None


class DiscordDelivery:
    """``async def __call__(delivery) -> reply message id``: the service's delivery handler."""

    def __init__(self, client: discord.Client, service: CaptionService, groups: ReplyGroups[Delivery]) -> None:
        self.client = client
        self.service = service
        self.groups = groups

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
        if ctx.mode == "alt" and delivery.ok and delivery.caption_id is not None and len(batch.parts) == 1:
            record = await self.service.find_caption(delivery.caption_id, platform=PLATFORM)
            data = None if record is None else await self.service.read_photo(record)
            if record is not None and data is not None:
                mention = f"<@{delivery.platform_user_id}>"
                return await self._send(ctx, delivery, lambda: alt_text_message(record, data, mention))
        text, view = compose(batch, ctx.total)
        return await self._send(ctx, delivery, lambda: {"content": text, "view": view} if view else {"content": text})

    async def _send(self, ctx: ReplyContext, delivery: Delivery, message: Callable[[], dict[str, Any]]) -> str | None:
        """Send ``message()`` (called per attempt: a discord.File can be sent only once) where it belongs."""
        if ctx.token_usable():
            assert ctx.application_id is not None and ctx.token is not None
            webhook = discord.Webhook.partial(ctx.application_id, ctx.token, client=self.client)
            kwargs = {"allowed_mentions": NO_MENTIONS, **message()}
            try:
                sent = await webhook.send(wait=True, **kwargs)
                return str(sent.id)
            except discord.HTTPException as exc:
                if _transient(exc):
                    raise  # Discord is having trouble: the service retries later
                if exc.status == 404 or exc.code in _TOKEN_GONE:
                    log.info("interaction token of %s no longer valid; answering in the channel", delivery.request_id)
                else:
                    log.warning(
                        "follow-up for %s refused (%s %s); answering in the channel",
                        delivery.request_id,
                        exc.status,
                        exc.code,
                    )
        return await self._send_to_channel(ctx, delivery, message())

    async def _send_to_channel(self, ctx: ReplyContext, delivery: Delivery, kwargs: dict[str, Any]) -> str | None:
        channel = self.client.get_partial_messageable(ctx.channel_id)
        if ctx.via_interaction:
            # Not a reply to anything: say who it's for, and let that one mention notify them.
            user = discord.Object(int(delivery.platform_user_id))
            if "file" not in kwargs:  # an alt-text post already names its user
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
            sent = await channel.send(**kwargs)
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
