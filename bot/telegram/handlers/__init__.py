"""All update handlers, wired in one place (:func:`register`).

Order matters: in a handler group the first matching handler wins.
"""

from __future__ import annotations

from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.telegram.handlers import commands, feedback, photos
from bot.telegram.handlers.errors import on_error

_MEDIA = filters.PHOTO | filters.Document.ALL
_NEW = filters.UpdateType.MESSAGE  # not edits
_NEW_OR_EDITED = filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE
#: Runs before the others; a text it takes as a better caption goes no further (ApplicationHandlerStop).
CORRECTIONS_GROUP = -1


def register(application: Application) -> None:
    add = application.add_handler
    add(
        MessageHandler(_NEW_OR_EDITED & filters.TEXT & ~filters.COMMAND, feedback.on_text),
        group=CORRECTIONS_GROUP,
    )
    add(MessageHandler(_NEW & _MEDIA & photos.CaptionCommand(), photos.on_captioned_command))
    add(CommandHandler("caption", photos.on_caption_command, filters=_NEW))
    for name, callback in [
        ("start", commands.on_start),
        ("help", commands.on_help),
        ("privacy", commands.on_privacy),
        ("stats", commands.on_stats),
        ("optout", commands.on_optout),
        ("optin", commands.on_optin),
        ("forget", commands.on_forget),
        ("autocaption", commands.on_autocaption),
    ]:
        add(CommandHandler(name, callback, filters=_NEW))
    add(MessageHandler(_NEW & filters.ChatType.PRIVATE & _MEDIA, photos.on_private_image))
    add(MessageHandler(_NEW & filters.ChatType.GROUPS & _MEDIA, photos.on_group_image))
    add(
        MessageHandler(
            _NEW & filters.ChatType.GROUPS & filters.TEXT & ~filters.COMMAND & photos.MentionsMe(),
            photos.on_caption_command,
        )
    )
    add(MessageHandler(_NEW & filters.ChatType.PRIVATE, commands.on_anything_else))
    add(CallbackQueryHandler(feedback.on_button))
    application.add_error_handler(on_error)
