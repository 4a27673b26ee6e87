"""The one path every photo takes into the service: find the image, download it, submit it.

Used by the private-chat handler, ``/caption`` in groups and auto-captioning. Whatever goes wrong
(not an image, too big, download failed, rate limited, queue full, a bad image) ends in one short
reply; a queued photo is handed to :class:`~bot.telegram.progress.Progress` for "typing" and the
queue status.
"""

from __future__ import annotations

from telegram import Chat, Message, User
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.telegram import media, texts
from bot.telegram.deps import deps
from captionbot.service import Rejected

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
        await answer_to.reply_text(texts.CAPTION_USAGE, do_quote=True)
        return
    limited = d.service.reserve(platform=PLATFORM, platform_user_id=requester.id)
    if limited is not None:  # refused before downloading: a flood costs us no bandwidth
        await answer_to.reply_text(limited.message, do_quote=True)
        return
    thread_id = topic_id(source)
    pending = d.progress.begin(
        chat_id=source.chat_id, message_id=source.message_id, thread_id=thread_id, album=source.media_group_id
    )
    try:
        async with d.downloads:
            try:
                data = await media.download(context.bot, ref, limit=d.config.max_download_bytes)
            except BaseException:
                d.service.unreserve(platform=PLATFORM, platform_user_id=requester.id)
                raise
        outcome = await d.service.submit(
            platform=PLATFORM,
            platform_chat_id=source.chat_id,
            chat_kind=chat_kind(source.chat),
            platform_user_id=requester.id,
            display_name=requester.full_name,
            image_bytes=data,
            source_message_id=source.message_id,
            reply_context={"thread_id": thread_id, "album": source.media_group_id},
            reserved=True,
        )
    except media.MediaProblem as exc:
        d.progress.finish(pending)
        await answer_to.reply_text(exc.user_message, do_quote=True)
        return
    except BaseException:
        d.progress.finish(pending)
        raise
    if isinstance(outcome, Rejected):  # busy / flood / bad image: the service wrote the message
        d.progress.finish(pending)
        await answer_to.reply_text(outcome.message, do_quote=True)
        return
    d.progress.submitted(pending, outcome.request_id)
