"""The delivery handler: turns a finished :class:`~captionbot.service.Delivery` into a Telegram reply.

* If the user was told "you're #N in the queue", that message is edited into the answer (so the
  chat doesn't keep a stale status); otherwise the answer is sent as a reply to the photo.
* A caption gets the rating / "Better caption" buttons; a failure gets its message and no buttons.
* Text read in the photo follows the caption on a line of its own; when it is too long for one
  message it is cut short and an "All text" button sends the rest (:mod:`captionbot.texts.photo_text`).
* Albums: each photo gets its own reply, sent in album order (see :mod:`bot.telegram.progress`).

Error policy, as the service expects: raise for what may pass (network, rate limit after the
limiter's retries, the adapter not running) so the result is retried; return normally for what
won't (the bot was blocked or removed from the chat) so it isn't retried forever.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.error import BadRequest, ChatMigrated, Forbidden

from bot.telegram import keyboards
from bot.telegram.progress import Progress
from captionbot import texts
from captionbot.service import Delivery

log = logging.getLogger(__name__)

#: Text read in a photo may hold web addresses (screenshots): no preview of a page nobody asked for.
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

#: BadRequest descriptions that mean "this chat can't get the answer, ever".
_PERMANENT = (
    "chat not found",
    "user is deactivated",
    "bot was kicked",
    "not enough rights",
    "topic_closed",
    "have no rights",
)


def render(delivery: Delivery) -> tuple[str, InlineKeyboardMarkup | None]:
    """The answer's text (caption first, for screen readers) and buttons."""
    if delivery.ok and delivery.caption_id is not None:
        text, cut = texts.with_photo_text(
            texts.caption(delivery.text, delivery.confidence, band=delivery.band, hint=delivery.hint),
            delivery.photo_text,
            limit=texts.TELEGRAM_MESSAGE_LIMIT,
            more=texts.MORE_BY_BUTTON,
        )
        return text, keyboards.caption_keyboard(delivery.caption_id, all_text=cut)
    return delivery.failure_message or texts.ERROR, None


class TelegramDelivery:
    """``async (Delivery) -> reply message id``; registered with the service for "telegram"."""

    def __init__(self, bot: Callable[[], Awaitable[Bot]], progress: Progress) -> None:
        self._bot = bot  # raises while the adapter isn't running: the service retries later
        self.progress = progress

    async def __call__(self, delivery: Delivery) -> str | None:
        bot = await self._bot()
        pending = self.progress.for_request(delivery.request_id)
        if pending is not None:
            await self.progress.wait_turn(pending)
        lock = pending.lock if pending is not None else contextlib.nullcontext()
        async with lock:
            status_id = delivery.status_message_id or (pending.status_message_id if pending else None)
            try:
                sent = await self._send(bot, delivery, status_id)
            except Forbidden as exc:
                log.info("can't answer in a %s chat (%s); dropping the reply", delivery.chat_kind, exc.message)
                sent = None
            except BadRequest as exc:
                if not any(p in exc.message.lower() for p in _PERMANENT):
                    raise
                log.info("can't answer in a %s chat (%s); dropping the reply", delivery.chat_kind, exc.message)
                sent = None
        self.progress.answered(delivery.request_id, pending)
        return None if sent is None else str(sent)

    async def _send(self, bot: Bot, delivery: Delivery, status_id: str | int | None) -> int | None:
        text, markup = render(delivery)
        chat_id = int(delivery.platform_chat_id)
        if status_id is not None:
            edited = await self._edit(bot, chat_id, int(status_id), text, markup)
            if edited is not None:
                return edited
        thread_id = delivery.reply_context.get("thread_id")
        reply_to = (
            ReplyParameters(int(delivery.source_message_id), allow_sending_without_reply=True)
            if delivery.source_message_id
            else None
        )
        try:
            msg = await bot.send_message(
                chat_id,
                text,
                reply_markup=markup,
                reply_parameters=reply_to,
                message_thread_id=thread_id,
                link_preview_options=NO_PREVIEW,
            )
        except ChatMigrated as exc:  # the group became a supergroup: same chat, new id
            msg = await bot.send_message(
                exc.new_chat_id,
                text,
                reply_markup=markup,
                reply_parameters=reply_to,
                message_thread_id=thread_id,
                link_preview_options=NO_PREVIEW,
            )
        return msg.message_id

    @staticmethod
    async def _edit(
        bot: Bot, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None
    ) -> int | None:
        """Edit the queue status message into the answer; None if that message is gone."""
        try:
            await bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, reply_markup=markup, link_preview_options=NO_PREVIEW
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():  # a retry after the edit already went through
                return message_id
            log.info("couldn't edit the status message (%s); sending a new reply", exc.message)
            return None
        return message_id
