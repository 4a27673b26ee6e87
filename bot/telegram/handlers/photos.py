"""Photo handlers: private chats, ``/caption`` in groups, and auto-captioning."""

from __future__ import annotations

import re

from telegram import Message, MessageEntity, Update
from telegram.ext import ContextTypes, filters

from bot.telegram import media
from bot.telegram.deps import deps
from bot.telegram.intake import PLATFORM, caption_photo
from captionbot import texts

_CAPTION_COMMAND = re.compile(r"^/caption(?:@(\w+))?(?:\s|$)", re.I)


def _my_name(message: Message) -> str:
    return (message.get_bot().username or "").lower()


def mentions_me(message: Message) -> bool:
    """``@ThisBot`` appears in the message's text or caption."""
    me = "@" + _my_name(message)
    found = {
        **message.parse_entities([MessageEntity.MENTION]),
        **message.parse_caption_entities([MessageEntity.MENTION]),
    }
    return any(text.lower() == me for text in found.values())


class CaptionCommand(filters.MessageFilter):
    """A photo or file whose caption starts with ``/caption`` or ``/caption@ThisBot`` (not another
    bot's name), or mentions ``@ThisBot``. Telegram delivers these to bots in privacy mode."""

    __slots__ = ()

    def filter(self, message: Message) -> bool:
        m = _CAPTION_COMMAND.match(message.caption or "")
        if m is not None:
            return m[1] is None or m[1].lower() == _my_name(message)
        return mentions_me(message)


class MentionsMe(filters.MessageFilter):
    """A message that mentions ``@ThisBot``."""

    __slots__ = ()

    def filter(self, message: Message) -> bool:
        return mentions_me(message)


async def on_private_image(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo, forwarded photo, album photo or file sent to the bot in a private chat."""
    message = update.effective_message
    if message is None or update.effective_user is None:
        return
    await caption_photo(context, source=message, requester=update.effective_user, answer_to=message)


async def on_captioned_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo sent with ``/caption`` (or ``@ThisBot``) in its caption."""
    await on_private_image(update, context)


async def on_caption_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/caption`` sent as a reply to a photo or image file; in a group, also a message that
    mentions ``@ThisBot`` in reply to a photo."""
    message = update.effective_message
    if message is None or update.effective_user is None:
        return
    target = message.reply_to_message
    if target is None or not media.has_media(target):
        await message.reply_text(texts.TELEGRAM_CAPTION_USAGE, do_quote=True)
        return
    await caption_photo(context, source=target, requester=update.effective_user, answer_to=message)


async def on_group_image(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any photo in a group: captioned only where an admin turned on /autocaption (and the bot
    can see it, i.e. privacy mode is off). Non-image files are ignored silently in groups."""
    message = update.effective_message
    if message is None or update.effective_user is None:
        return
    if message.document and not media.is_image_document(message.document):
        return
    if not await deps(context).service.chat_autocaption(platform=PLATFORM, platform_chat_id=message.chat_id):
        return
    await caption_photo(context, source=message, requester=update.effective_user, answer_to=message)
