"""Buttons (rate, better caption, all text, /forget confirmation) and the better-caption replies.

Every callback query is answered, whatever happens: an expired or forged button, a caption deleted
by /forget, a button pressed by someone who may not use it.

A better caption is, in this order: a reply to the caption message itself (any time); a reply to
an old-format prompt ending "(Caption no. N)"; or, after "Better caption" was pressed, the presser's
next text in that chat, reply or not (the wait is in the database, so it survives a restart). An
edit of a message taken as a correction replaces it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from telegram import CallbackQuery, ForceReply, Message, MessageEntity, ReplyParameters, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.error import BadRequest, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.telegram import keyboards
from bot.telegram.delivery import NO_PREVIEW
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
        case keyboards.AllText():
            await _send_all_text(query, context, action)
        case keyboards.Forget():
            await _forget(query, context, action)
        case keyboards.CancelCorrection():
            await _cancel(query, context, action)
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
    # The message's text doesn't change, so neither does whether its text line was cut.
    shown = query.message.reply_markup if isinstance(query.message, Message) else None
    markup = keyboards.caption_keyboard(
        action.caption_id,
        mine=state.rating,
        ups=ups,
        downs=downs,
        show_counts=not private,
        all_text=keyboards.has_all_text(shown),
    )
    await _edit_markup(query, markup)


async def _send_all_text(query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, action: keyboards.AllText) -> None:
    """The whole text read in the photo, in replies to the caption message (never logged)."""
    record = await deps(context).service.find_caption(action.caption_id, platform=PLATFORM)
    if record is None:
        await query.answer(texts.CAPTION_GONE)
        await _drop_buttons(query)
        return
    if not record.photo_text or not texts.flatten(record.photo_text):
        await query.answer(texts.NO_TEXT)
        return
    message = query.message
    chat_id = message.chat.id if message is not None else query.from_user.id
    reply_to = (
        ReplyParameters(message.message_id, allow_sending_without_reply=True) if isinstance(message, Message) else None
    )
    try:
        for part in texts.all_text(record.photo_text, limit=texts.TELEGRAM_MESSAGE_LIMIT):
            await context.bot.send_message(
                chat_id,
                part,
                reply_parameters=reply_to,
                message_thread_id=topic_id(message) if isinstance(message, Message) else None,
                link_preview_options=NO_PREVIEW,
            )
    finally:
        await query.answer()


async def _ask_for_correction(
    query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, action: keyboards.Correct
) -> None:
    """Wait for the presser's next text in this chat, and say so: once per press window."""
    service = deps(context).service
    message = query.message
    chat_id = message.chat.id if message is not None else query.from_user.id
    try:
        asked = await service.ask_for_correction(
            caption_id=action.caption_id,
            platform=PLATFORM,
            platform_chat_id=chat_id,
            platform_user_id=query.from_user.id,
        )
    except UnknownCaptionError:
        await query.answer(texts.CAPTION_GONE)
        await _drop_buttons(query)
        return
    if asked.asked_before:  # a second press (or a double tap): the prompt is there, or on its way
        await query.answer(texts.CORRECTION_ALREADY_ASKED)
        return
    private = message is None or message.chat.type == ChatType.PRIVATE
    name = None if private else query.from_user.first_name
    text = texts.telegram_correction_prompt(asked.caption_text, name)
    # In a group, the mention makes the ForceReply "selective": only this user's reply box opens, and
    # the reply reaches the bot in privacy mode. In a private chat any next message is taken, so the
    # prompt carries a Cancel button instead (a message has one kind of markup).
    entities = (
        [MessageEntity(MessageEntityType.TEXT_MENTION, 0, _utf16_len(name), user=query.from_user)] if name else None
    )
    markup = (
        keyboards.cancel_correction_keyboard(query.from_user.id)
        if private
        else ForceReply(selective=True, input_field_placeholder=texts.CORRECTION_PLACEHOLDER)
    )
    reply_to = (
        ReplyParameters(message.message_id, allow_sending_without_reply=True) if isinstance(message, Message) else None
    )
    try:
        sent = await context.bot.send_message(
            chat_id,
            text,
            entities=entities,
            reply_parameters=reply_to,
            message_thread_id=topic_id(message) if isinstance(message, Message) else None,
            reply_markup=markup,
        )
    finally:
        await query.answer()
    await service.set_correction_prompt(
        platform=PLATFORM, platform_chat_id=chat_id, platform_user_id=query.from_user.id, message_id=sent.message_id
    )


async def _cancel(query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, action: keyboards.CancelCorrection) -> None:
    if query.from_user.id != action.user_id:
        await query.answer(texts.CORRECTION_CANCEL_NOT_YOURS, show_alert=True)
        return
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    cancelled = await deps(context).service.cancel_correction(
        platform=PLATFORM, platform_chat_id=chat_id, platform_user_id=query.from_user.id
    )
    if cancelled:
        await query.answer(texts.CORRECTION_CANCELLED)
        await _edit_text(query, texts.CORRECTION_CANCELLED)  # the button goes with the old text
    else:
        await query.answer(texts.CORRECTION_NOTHING_TO_CANCEL)
        await _drop_buttons(query)


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


_TAKEN = "corrections_taken"  # bot_data: (chat id, message id) -> (caption id, user id), newest last
_TAKEN_KEPT = 10_000


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text (not a command), new or edited: a better caption if it is one (then no other handler
    runs), otherwise left to the other handlers."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.text is None:
        return
    if update.edited_message is not None:
        await _on_edit(context, message, user.id)
        return
    service = deps(context).service
    chat_id, user_id = message.chat_id, user.id
    if texts.is_cancel(message.text):
        if await service.cancel_correction(platform=PLATFORM, platform_chat_id=chat_id, platform_user_id=user_id):
            await _reply(message, texts.CORRECTION_CANCELLED)
        elif _replies_to_me(message):
            await _reply(message, texts.CORRECTION_NOTHING_TO_CANCEL)
        else:
            return
        raise ApplicationHandlerStop
    if (caption_id := _referenced_caption(message)) is not None:
        if await _save(context, message, user_id, caption_id):
            await service.cancel_correction(
                platform=PLATFORM, platform_chat_id=chat_id, platform_user_id=user_id
            )  # this was their next text: the wait is over
        raise ApplicationHandlerStop
    replied = message.reply_to_message
    if replied is not None and not _from_me(replied) and (replied.photo or replied.document):
        return  # e.g. "@ThisBot" in reply to a photo: a caption request
    try:
        taken = await service.take_correction(
            platform=PLATFORM, platform_chat_id=chat_id, platform_user_id=user_id, text=message.text
        )
    except InvalidFeedbackError as exc:  # still waiting
        await _reply(message, exc.user_message)
        raise ApplicationHandlerStop from None
    if taken is None:
        return
    if taken.expired:
        await _reply(message, texts.correction_expired(service.settings.correction_wait_s))
    elif taken.saved_text is None:
        await _reply(message, texts.CAPTION_GONE)
    else:
        _remember(context, message, taken.caption_id, user_id)
        await _reply(message, texts.correction_saved(taken.saved_text))
    raise ApplicationHandlerStop


async def _on_edit(context: ContextTypes.DEFAULT_TYPE, message: Message, user_id: int) -> None:
    """An edited message that was a correction (or replies to a caption): the edit replaces it."""
    caption_id = _referenced_caption(message)
    if caption_id is None:
        taken = context.bot_data.get(_TAKEN, {}).get((message.chat_id, message.message_id))
        if taken is None or taken[1] != user_id:
            return
        caption_id = taken[0]
    await _save(context, message, user_id, caption_id)


async def _save(context: ContextTypes.DEFAULT_TYPE, message: Message, user_id: int, caption_id: int) -> bool:
    """Store ``message`` as the person's correction of ``caption_id`` and say what was saved."""
    try:
        state = await deps(context).service.correct(
            caption_id=caption_id, platform=PLATFORM, platform_user_id=user_id, text=message.text or ""
        )
    except (UnknownCaptionError, InvalidFeedbackError) as exc:
        await _reply(message, exc.user_message)
        return False
    _remember(context, message, caption_id, user_id)
    await _reply(message, texts.correction_saved(state.correction or ""))
    return True


def _remember(context: ContextTypes.DEFAULT_TYPE, message: Message, caption_id: int, user_id: int) -> None:
    """Which caption a message corrected, so an edit of it replaces the correction (in memory: an
    edit after a restart is only taken if the message replies to the caption)."""
    taken: OrderedDict[tuple[int, int], tuple[int, int]] = context.bot_data.setdefault(_TAKEN, OrderedDict())
    taken[(message.chat_id, message.message_id)] = (caption_id, user_id)
    taken.move_to_end((message.chat_id, message.message_id))
    while len(taken) > _TAKEN_KEPT:
        taken.popitem(last=False)


def _referenced_caption(message: Message) -> int | None:
    """The caption id if ``message`` replies to one of this bot's caption messages (its buttons name
    it) or to an old-format prompt ("(Caption no. N)")."""
    replied = message.reply_to_message
    if replied is None or not _from_me(replied):
        return None
    found = keyboards.caption_id_of(replied.reply_markup)
    return found if found is not None else texts.telegram_correction_prompt_ref(replied.text)


def _from_me(message: Message) -> bool:
    return message.from_user is not None and message.from_user.id == message.get_bot().id


def _replies_to_me(message: Message) -> bool:
    return message.reply_to_message is not None and _from_me(message.reply_to_message)


async def _reply(message: Message, text: str) -> None:
    await message.reply_text(text, do_quote=True)


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
