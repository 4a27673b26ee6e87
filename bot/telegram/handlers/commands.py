"""Command handlers: /start, /help, /privacy, /stats, /optout, /optin, /forget, /autocaption."""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.telegram import keyboards
from bot.telegram.deps import deps
from bot.telegram.intake import PLATFORM
from captionbot import texts


def _message(update: Update) -> Message | None:
    return update.effective_message if update.effective_user is not None else None


def _user_id(update: Update) -> int:
    """The sender's id, in a handler that has a :func:`_message` (so a sender)."""
    assert update.effective_user is not None
    return update.effective_user.id


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if message := _message(update):
        await message.reply_text(texts.TELEGRAM_START)


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if message := _message(update):
        await message.reply_text(texts.TELEGRAM_HELP)


async def on_privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if message := _message(update):
        await message.reply_text(deps(context).service.privacy_text() + "\n\n" + texts.TELEGRAM_PRIVACY_NOTE)


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not (message := _message(update)):
        return
    text = await deps(context).service.stats_text(platform=PLATFORM, platform_user_id=_user_id(update))
    await message.reply_text(
        text,
        do_quote=message.chat.type != ChatType.PRIVATE,
    )


async def on_optout(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_opt_out(update, context, opt_out=True)


async def on_optin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_opt_out(update, context, opt_out=False)


async def _set_opt_out(update: Update, context: ContextTypes.DEFAULT_TYPE, *, opt_out: bool) -> None:
    if not (message := _message(update)):
        return
    await deps(context).service.set_opt_out(platform=PLATFORM, platform_user_id=_user_id(update), opt_out=opt_out)
    await message.reply_text(
        texts.OPTED_OUT if opt_out else texts.OPTED_IN, do_quote=message.chat.type != ChatType.PRIVATE
    )


async def on_forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask first; the buttons carry the asker's id, so only they can confirm (even after a restart)."""
    if message := _message(update):
        await message.reply_text(
            texts.FORGET_ASK,
            reply_markup=keyboards.forget_keyboard(_user_id(update)),
            do_quote=message.chat.type != ChatType.PRIVATE,
        )


async def on_autocaption(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/autocaption [on|off]`` in a group; changing it is for chat admins."""
    if not (message := _message(update)):
        return
    if message.chat.type == ChatType.PRIVATE:
        await message.reply_text(texts.TELEGRAM_AUTOCAPTION_GROUPS_ONLY)
        return
    service = deps(context).service
    arg = (context.args or [""])[0].lower()
    if arg not in ("on", "off"):
        enabled = await service.chat_autocaption(platform=PLATFORM, platform_chat_id=message.chat_id)
        await message.reply_text(texts.telegram_autocaption_state(enabled), do_quote=True)
        return
    if not await _is_admin(message, context):
        await message.reply_text(texts.TELEGRAM_AUTOCAPTION_ADMINS_ONLY, do_quote=True)
        return
    enabled = arg == "on"
    await service.set_chat_autocaption(
        platform=PLATFORM, platform_chat_id=message.chat_id, kind="group", enabled=enabled
    )
    reply = texts.TELEGRAM_AUTOCAPTION_ON if enabled else texts.TELEGRAM_AUTOCAPTION_OFF
    if enabled and not context.bot.bot.can_read_all_group_messages:
        reply += "\n" + texts.TELEGRAM_AUTOCAPTION_PRIVACY_NOTE
    await message.reply_text(reply, do_quote=True)


async def _is_admin(message: Message, context: ContextTypes.DEFAULT_TYPE) -> bool:
    if message.sender_chat is not None and message.sender_chat.id == message.chat_id:
        return True  # an anonymous admin posting as the group
    if message.from_user is None:
        return False
    try:
        member = await context.bot.get_chat_member(message.chat_id, message.from_user.id)
    except TelegramError:
        return False
    return member.status in (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)


async def on_anything_else(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Private chats only: anything we don't handle (text, unknown commands, stickers, voice...)."""
    if message := _message(update):
        await message.reply_text(texts.TELEGRAM_SEND_A_PHOTO)
