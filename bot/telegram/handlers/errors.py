"""The last line of defence: log the failure (type and traceback only, no user data) and make
sure the user isn't left hanging - a callback query is always answered."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from captionbot import texts

log = logging.getLogger(__name__)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    error = context.error
    log.error("update handler failed: %s", type(error).__name__, exc_info=error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(texts.ERROR)
        elif (
            update.effective_message is not None
            and update.effective_chat is not None
            and update.effective_chat.type == ChatType.PRIVATE
        ):
            await update.effective_message.reply_text(texts.ERROR)
    except TelegramError:  # already answered, or Telegram unreachable: nothing more to do
        pass
