"""Better captions typed as messages, besides the "Better caption" form (see :mod:`bot.discord.views`).

Nothing a person types as a better caption may be lost, so two more ways in:

* A reply to one of the bot's caption messages is a correction of that caption, by anyone, at any
  time: in DMs always; in servers when the bot can read it (it mentions the bot, pings it with the
  reply, or the message content intent is on). Which caption is read from the message's buttons
  (``cb:fix:<caption>``), so it works after a restart too. A reply the bot can't read is answered
  with how to send one instead; a reply to a message with several captions asks for the button.
* "Better caption" records a wait in the database (``ask_for_correction``) before opening the form.
  If the person dismisses the form and types their caption as a message instead, it is taken: any
  text in a DM, or a message that mentions the bot in a server, from that person in that channel.
  "cancel" ends the wait; a text after the wait ran out is answered so, not with the help text.

Answers quote the saved text and never show an internal id.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.discord.respond import NO_MENTIONS
from captionbot import texts
from captionbot.service import CaptionService, InvalidFeedbackError, UnknownCaptionError

PLATFORM = "discord"
#: The buttons that name a caption: "cb:fix:<id>", "cb:rate:<id>:<rating>", "cb:alt:<id>".
_CAPTION_BUTTON = re.compile(r"cb:(?:fix|rate|alt):(\d{1,19})(?::-?1)?")


def caption_ids(message: discord.Message) -> list[int]:
    """The captions a message of ours shows, in order, from its buttons' custom ids."""
    found: list[int] = []
    for row in message.components:
        for child in getattr(row, "children", ()):
            match = _CAPTION_BUTTON.fullmatch(getattr(child, "custom_id", None) or "")
            if match is not None and int(match[1]) not in found:
                found.append(int(match[1]))
    return found


def _text(message: discord.Message, me: discord.abc.User) -> str:
    """The message's words without the bot's mention."""
    return re.sub(rf"<@!?{me.id}>", " ", message.content or "").strip()


class Corrections:
    """Takes better captions from messages, for :class:`~bot.discord.intake.Intake`."""

    def __init__(self, service: CaptionService) -> None:
        self.service = service

    def _who(self, message: discord.Message) -> dict[str, Any]:
        return {"platform": PLATFORM, "platform_chat_id": message.channel.id, "platform_user_id": message.author.id}

    async def from_reply(
        self, message: discord.Message, me: discord.abc.User, replied: discord.Message | None = None
    ) -> bool:
        """``message`` replies to one of our caption messages: store it as that caption's correction
        (and end any wait of its author here). False when it is not such a reply, has images of its
        own, or (after a mention) has no words: then it is something else."""
        ref = message.reference
        target = ref.resolved if ref is not None and isinstance(ref.resolved, discord.Message) else replied
        if ref is None or target is None or target.author.id != me.id or message.attachments:
            return False
        ids = caption_ids(target)
        text = _text(message, me)
        if not ids:
            return False
        if not text:
            if message.guild is None or me.id in message.raw_mentions:
                return False  # a DM sticker, or "@bot" alone: not a caption
            # In a server without the message content intent, an unmentioned reply arrives empty.
            await _answer(message, texts.DISCORD_CORRECTION_UNREADABLE)
            return True
        if len(ids) > 1:
            await _answer(message, texts.DISCORD_CORRECTION_WHICH)
            return True
        try:
            state = await self.service.correct(
                caption_id=ids[0], platform=PLATFORM, platform_user_id=message.author.id, text=text
            )
        except UnknownCaptionError:
            await _answer(message, texts.CAPTION_GONE)
            return True
        except InvalidFeedbackError as exc:
            await _answer(message, exc.user_message)
            return True
        await self.service.cancel_correction(**self._who(message))  # answered: don't take the next text too
        await _answer(message, texts.correction_saved(state.correction or text))
        return True

    async def from_wait(self, message: discord.Message, me: discord.abc.User) -> bool:
        """A text (no images) from someone whose correction is awaited in this channel: stored, or
        "cancel", or too late. False when nothing is awaited from them here."""
        text = _text(message, me)
        if texts.is_cancel(text):
            cancelled = await self.service.cancel_correction(**self._who(message))
            await _answer(message, texts.CORRECTION_CANCELLED if cancelled else texts.CORRECTION_NOTHING_TO_CANCEL)
            return True
        try:
            taken = await self.service.take_correction(**self._who(message), text=text)
        except InvalidFeedbackError as exc:  # still waiting
            await _answer(message, exc.user_message)
            return True
        if taken is None:
            return False
        if taken.expired:
            await _answer(message, texts.correction_expired(self.service.settings.correction_wait_s))
        elif taken.saved_text is None:
            await _answer(message, texts.CAPTION_GONE)  # forgotten while we waited
        else:
            await _answer(message, texts.correction_saved(taken.saved_text))
        return True


async def _answer(message: discord.Message, text: str) -> None:
    await message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS)
