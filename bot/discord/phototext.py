"""The text read in a photo, on Discord: after each caption, within a message's 2,000 characters
and an image description's 1,024, and the whole of it behind a persistent button.

* ``cb:text:<caption>``: "All text" (shown when the text line was cut short) sends the whole text,
  split into messages that fit, to whoever pressed it, ephemerally (a caption's text is no secret
  from those who see the caption). A button whose caption is gone says so.

Markdown in the text is escaped: a sign reading "# SALE" or "||" must not turn into a heading or
a spoiler on Discord; it reads as written. A web address in it (a screenshot) gets no page preview.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.discord.respond import guarded, say, service_of
from captionbot import texts
from captionbot.service import CaptionRecord

PLATFORM = "discord"


_URL = re.compile(r"https?://[^\s<>]+")


def escaped(stored: str) -> str:
    """The stored text, line by line, with Discord's markdown escaped and web addresses in <...>,
    which Discord shows as plain links without a preview of the page."""
    return "\n".join(
        _URL.sub(lambda m: f"<{m[0]}>", discord.utils.escape_markdown(line)) for line in stored.splitlines()
    )


def with_text(answer: str, stored: str | None, *, room: int) -> tuple[str, bool]:
    """``answer`` then the text line, together within ``room`` characters; and whether the text is
    only whole behind the "All text" button. When the answer leaves too little room for even a cut
    line, the answer goes alone and the button still gives the text."""
    if not stored:
        return answer, False
    said, cut = texts.with_photo_text(answer, escaped(stored), limit=room, more=texts.MORE_BY_BUTTON)
    if len(said) > room:
        return answer, True
    return said, cut


def alt_description(record: CaptionRecord) -> tuple[str, bool]:
    """An image description (alt text): the caption, phrased for its band, then the text line,
    within Discord's 1,024 characters (descriptions are plain text: nothing to escape); and whether
    the text was cut."""
    answer = texts.caption(record.text, band=record.band, hint=record.hint)
    said, cut = texts.with_photo_text(
        answer, record.photo_text, limit=texts.DISCORD_ALT_TEXT_LIMIT, more=texts.MORE_BY_BUTTON
    )
    if len(said) > texts.DISCORD_ALT_TEXT_LIMIT:  # a caption that leaves no room for the line
        return answer[: texts.DISCORD_ALT_TEXT_LIMIT], bool(record.photo_text)
    return said, cut


class TextButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"cb:text:(?P<caption_id>\d{1,19})"):
    def __init__(self, caption_id: int, *, label: str | None = None, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label=label or texts.BUTTON_ALL_TEXT,
                emoji=texts.EMOJI_ALL_TEXT,
                custom_id=f"cb:text:{caption_id}",
                row=row,
            )
        )
        self.caption_id = caption_id

    @classmethod
    def from_match(cls, match: re.Match[str], *, label: str | None = None, row: int | None = None) -> TextButton:
        return cls(int(match["caption_id"]), label=label, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> TextButton:
        return cls.from_match(match, label=getattr(item, "label", None), row=item.row)

    @guarded
    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        record = await service_of(interaction).find_caption(self.caption_id, platform=PLATFORM)
        if record is None:
            await say(interaction, texts.CAPTION_GONE)
            return
        if not record.photo_text or not texts.flatten(record.photo_text):
            await say(interaction, texts.NO_TEXT)
            return
        # The first as the interaction's response, the rest as follow-ups; all ephemeral.
        for part in texts.all_text(escaped(record.photo_text), limit=texts.DISCORD_MESSAGE_LIMIT):
            await say(interaction, part)
