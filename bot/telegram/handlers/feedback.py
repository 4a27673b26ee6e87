"""Buttons (rate, better caption, /forget confirmation) and the better-caption replies.

Every callback query is answered, whatever happens: an expired or forged button, a caption deleted
by /forget, a button pressed by someone who may not use it.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, ForceReply, Message, MessageEntity, ReplyParameters, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes, filters

from bot.telegram import keyboards
from bot.telegram.deps import deps
from bot.telegram.intake import PLATFORM, topic_id
from captionbot import texts
from captionbot.service import InvalidFeedbackError, UnknownCaptionError

log = logging.getLogger(__name__)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is None:
        return
    action = keyboards.decode(query.data)
    match action:
        case keyboards.Rate():
            await _rate(query, context, action)
        case keyboards.Correct():
            await _ask_for_correction(query, context, action)
        case keyboards.Forget():
            await _forget(query, context, action)
        case _:
            await query.answer(texts.BUTTON_EXPIRED)
            await _drop_buttons(query)


async def _rate(query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, action: keyboards.Rate) -> None:
    """Anyone who can see the caption may rate it; the rating is theirs (one per person, changeable)."""
    try:
        state = await deps(context).service.rate(
            caption_id=action.caption_id,
            platform=PLATFORM,
            platform_user_id=query.from_user.id,
            rating=action.rating,
        )
    except UnknownCaptionError:
        await query.answer(texts.CAPTION_GONE)
        await _drop_buttons(query)
        return
    except InvalidFeedbackError as exc:
        await query.answer(exc.user_message)
        return
    await query.answer(texts.rated(action.rating))
    ups, downs = keyboards.thumbs_counts(state.ratings, state.score)
    private = query.message is not None and query.message.chat.type == ChatType.PRIVATE
    markup = keyboards.caption_keyboard(
        action.caption_id, mine=state.rating, ups=ups, downs=downs, show_counts=not private
    )
    await _edit_markup(query, markup)


async def _ask_for_correction(
    query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, action: keyboards.Correct
) -> None:
    """Send a ForceReply prompt whose text carries the caption id (so no state is kept here)."""
    if not await deps(context).service.caption_exists(action.caption_id):
        await query.answer(texts.CAPTION_GONE)
        await _drop_buttons(query)
        return
    await query.answer()
    message = query.message
    chat_id = message.chat.id if message is not None else query.from_user.id
    private = message is None or message.chat.type == ChatType.PRIVATE
    name = None if private else query.from_user.first_name
    text = texts.telegram_correction_prompt(action.caption_id, name)
    # In a group, the mention makes the ForceReply "selective": only this user's reply box opens.
    entities = (
        [MessageEntity(MessageEntityType.TEXT_MENTION, 0, _utf16_len(name), user=query.from_user)] if name else None
    )
    reply_to = (
        ReplyParameters(message.message_id, allow_sending_without_reply=True) if isinstance(message, Message) else None
    )
    await context.bot.send_message(
        chat_id,
        text,
        entities=entities,
        reply_parameters=reply_to,
        message_thread_id=topic_id(message) if isinstance(message, Message) else None,
        reply_markup=ForceReply(selective=True, input_field_placeholder=texts.CORRECTION_PLACEHOLDER),
    )


async def _forget(query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, action: keyboards.Forget) -> None:
    if query.from_user.id != action.user_id:
        await query.answer(texts.FORGET_NOT_YOURS, show_alert=True)
        return
    if not action.confirm:
        await query.answer()
        await _edit_text(query, texts.FORGET_CANCELLED)
        return
    report = await deps(context).service.forget(platform=PLATFORM, platform_user_id=query.from_user.id)
    await query.answer()
    done = (
        texts.forgotten(photos=report.requests, captions=report.captions, feedback=report.feedback)
        if report.found
        else texts.FORGET_NOTHING
    )
    await _edit_text(query, done)


class PromptReply(filters.MessageFilter):
    """A reply to one of this bot's "better caption" prompts."""

    __slots__ = ()

    def filter(self, message: Message) -> bool:
        return _prompt_ref(message) is not None


async def on_correction(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The user's better caption, replying to our prompt (whose text names the caption)."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or (caption_id := _prompt_ref(message)) is None:
        return
    try:
        await deps(context).service.correct(
            caption_id=caption_id, platform=PLATFORM, platform_user_id=user.id, text=message.text or ""
        )
    except (UnknownCaptionError, InvalidFeedbackError) as exc:
        await message.reply_text(exc.user_message, do_quote=True)
        return
    await message.reply_text(texts.CORRECTION_SAVED, do_quote=True)


def _prompt_ref(message: Message) -> int | None:
    """The caption id if ``message`` replies to one of this bot's correction prompts."""
    prompt = message.reply_to_message
    if prompt is None or prompt.from_user is None or prompt.from_user.id != message.get_bot().id:
        return None
    return texts.telegram_correction_prompt_ref(prompt.text)


async def _edit_markup(query: CallbackQuery, markup: object) -> None:
    try:
        await query.edit_message_reply_markup(markup)  # type: ignore[arg-type]
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():  # same state as before: nothing to show
            log.info("couldn't update the buttons: %s", exc.message)
    except TelegramError as exc:
        log.info("couldn't update the buttons: %s", type(exc).__name__)


async def _drop_buttons(query: CallbackQuery) -> None:
    """Remove buttons that can no longer work (best effort)."""
    if isinstance(query.message, Message) and query.message.reply_markup is not None:
        await _edit_markup(query, None)


async def _edit_text(query: CallbackQuery, text: str) -> None:
    try:
        await query.edit_message_text(text)
    except TelegramError as exc:
        log.info("couldn't edit the message: %s", type(exc).__name__)


def _utf16_len(text: str | None) -> int:
    """Telegram measures entity offsets and lengths in UTF-16 code units."""
    return len((text or "").encode("utf-16-le")) // 2
