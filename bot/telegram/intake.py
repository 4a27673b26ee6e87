"""The one path every photo takes into the service: find the image, then hand it to
:meth:`CaptionService.take_photo <captionbot.service.CaptionService.take_photo>` with a download
callable.

Used by the private-chat handler, ``/caption`` in groups and auto-captioning. Whatever goes wrong
(not an image, too big, download failed, rate limited, queue full, a bad image) ends in one short
reply; a queued photo is handed to :class:`~bot.telegram.progress.Progress` for "typing" and the
queue status. Right before the request is stored, a "Describing your photo..." placeholder is
posted and stored with it: the answer edits that message, so an answer interrupted by a crash is
edited again, never sent twice. The intake key (chat + message) lets the service recognise a
message Telegram delivers again after a crash. The service takes the rate-limit token before it
calls the download, so a flood costs no bandwidth and starts no "typing"; the progress tracker
starts when the download does.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import Chat, Message, ReplyParameters, User
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.telegram import media
from bot.telegram.deps import deps
from bot.telegram.progress import Pending
from captionbot import texts
from captionbot.service import PhotoUnavailableError, Rejected

log = logging.getLogger(__name__)

PLATFORM = "telegram"


def chat_kind(chat: Chat) -> str:
    """The storage ChatKind for a Telegram chat type."""
    if chat.type == ChatType.PRIVATE:
        return "private"
    return "channel" if chat.type == ChatType.CHANNEL else "group"


def topic_id(message: Message) -> int | None:
    """The forum topic to answer in (None outside forum topics)."""
    return message.message_thread_id if message.is_topic_message else None


async def caption_photo(
    context: ContextTypes.DEFAULT_TYPE, *, source: Message, requester: User, answer_to: Message
) -> None:
    """Queue ``source``'s image for ``requester``. The caption will reply to ``source``; refusals
    reply to ``answer_to`` (the photo itself, or the /caption command)."""
    d = deps(context)
    try:
        ref = media.image_ref(source)
    except media.MediaProblem as exc:
        await answer_to.reply_text(exc.user_message, do_quote=True)
        return
    if ref is None:
        await answer_to.reply_text(texts.TELEGRAM_CAPTION_USAGE, do_quote=True)
        return
    thread_id = topic_id(source)
    pending: Pending | None = None  # the progress tracker, once the download began

    async def download() -> bytes:
        """Called by the service after the rate-limit check: "typing" starts here."""
        nonlocal pending
        pending = d.progress.begin(
            chat_id=source.chat_id, message_id=source.message_id, thread_id=thread_id, album=source.media_group_id
        )
        async with d.downloads:
            try:
                return await media.download(context.bot, ref, limit=d.config.max_download_bytes)
            except media.MediaProblem as exc:
                raise PhotoUnavailableError(exc.user_message) from None

    async def placeholder() -> int:
        """Posted right before the request is stored: the answer will be an edit of it."""
        if pending is not None:
            await d.progress.wait_placeholder_turn(pending)
        msg = await context.bot.send_message(
            source.chat_id,
            texts.DESCRIBING,
            message_thread_id=thread_id,
            reply_parameters=ReplyParameters(source.message_id, allow_sending_without_reply=True),
        )
        if pending is not None:
            d.progress.placeholder_posted(pending, msg.message_id)
        return msg.message_id

    try:
        outcome = await d.service.take_photo(
            platform=PLATFORM,
            platform_chat_id=source.chat_id,
            chat_kind=chat_kind(source.chat),
            platform_user_id=requester.id,
            display_name=requester.full_name,
            download=download,
            source_message_id=source.message_id,
            reply_context={"thread_id": thread_id, "album": source.media_group_id},
            intake_key=intake_key(answer_to),
            placeholder=placeholder,
        )
    except BaseException:
        d.progress.finish(pending)
        raise
    if isinstance(outcome, Rejected):  # flood / download failed / busy / bad image: the message is written
        d.progress.finish(pending)  # (None when refused before downloading)
        await answer_to.reply_text(outcome.message, do_quote=True)
        return
    if outcome.again:  # Telegram sent this message again after a restart: it is already taken
        d.progress.finish(pending)
        if pending is not None and pending.status_message_id is not None:
            # Both copies were taken at the same moment and this one lost the INSERT: its
            # placeholder would never be edited, so it goes.
            with contextlib.suppress(TelegramError):
                await context.bot.delete_message(source.chat_id, pending.status_message_id)
        return
    assert pending is not None  # queued, so it was downloaded
    d.progress.submitted(pending, outcome.request_id)


def intake_key(message: Message) -> str:
    """The message that asked (the photo, or the /caption command): Telegram may send it again."""
    return f"telegram:{message.chat_id}:{message.message_id}"
