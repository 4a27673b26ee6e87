"""Buttons and the correction modal. All state lives in the ``custom_id``, so buttons keep working
after a restart (discord.py dynamic items, registered in the bot's ``setup_hook``):

* ``cb:rate:<caption>:<1|-1>``: Good / Wrong. One rating per user per caption, pressing again
  changes it; the buttons then show the counts and the user gets an ephemeral confirmation.
* ``cb:fix:<caption>``: "Better caption" opens a modal pre-filled with the caption; its text is
  stored as that user's correction. The press also records a wait, so a caption typed as a message
  instead (the form dismissed) is taken too (:mod:`bot.discord.corrections`); a submission ends it.
  The modal (``cb:fixm:<caption>``) is answered from its custom id as well, by
  :func:`submit_correction`, so one opened before a restart still works.
* ``cb:alt:<caption>``: re-posts the stored image with the caption as its description (Discord's
  alt text), for the person who asked for the caption only.
* ``cb:text:<caption>``: "All text", when the text read in the photo was cut short: the whole
  text, ephemerally (:mod:`bot.discord.phototext`).
* ``cb:forget:<user>:<yes|no>``: the /forget confirmation; only ``<user>`` may press it.

A button whose caption is gone (deleted by /forget) answers that, briefly and ephemerally.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import discord

from bot.discord.phototext import TextButton, alt_description
from bot.discord.respond import NO_MENTIONS, guarded, say, service_of
from captionbot import texts
from captionbot.service import (
    MAX_CORRECTION_CHARS,
    CaptionRecord,
    InvalidFeedbackError,
    UnknownCaptionError,
)

PLATFORM = "discord"
#: The rating count a label ends with once someone rated: "Good 2 (3)".
RATING_COUNT = re.compile(r"\s*\(\d+\)$")


@dataclass(frozen=True)
class CaptionRow:
    """One caption's buttons: one row per caption, numbered when a reply holds several."""

    caption_id: int
    index: int = 0
    total: int = 1
    alt_button: bool = True
    all_text: bool = False  # the text read in the photo was cut short: "All text" gives the rest


def button_label(word: str, *, index: int, total: int, count: int | None = None) -> str:
    """ "Good", "Good 2" (second image), "Good (3)" (three people said so)."""
    label = word if total <= 1 else f"{word} {index + 1}"
    return f"{label} ({count})" if count else label


def caption_view(rows: list[CaptionRow]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for row_number, row in enumerate(rows):
        kw = {"index": row.index, "total": row.total}
        view.add_item(RateButton(row.caption_id, 1, label=button_label(texts.BUTTON_GOOD, **kw), row=row_number))
        view.add_item(RateButton(row.caption_id, -1, label=button_label(texts.BUTTON_BAD, **kw), row=row_number))
        view.add_item(FixButton(row.caption_id, label=button_label(texts.BUTTON_BETTER, **kw), row=row_number))
        if row.alt_button:
            view.add_item(AltButton(row.caption_id, label=button_label(texts.DISCORD_BUTTON_ALT, **kw), row=row_number))
        if row.all_text:
            view.add_item(TextButton(row.caption_id, label=button_label(texts.BUTTON_ALL_TEXT, **kw), row=row_number))
    return view


_DYNAMIC: list[type[discord.ui.DynamicItem[Any]]] = []


def dynamic_copy(
    child: discord.ui.Item[Any], *, label: str | None = None, row: int | None = None
) -> discord.ui.DynamicItem[Any] | None:
    """One of our buttons (a plain copy from a message, or a dynamic item) as a fresh dynamic item,
    keeping its label (with its rating count) unless ``label`` is given, in ``row`` if given."""
    custom_id = getattr(child, "custom_id", None)
    if isinstance(child, discord.ui.DynamicItem):
        child = child.item
    if not isinstance(child, discord.ui.Button) or custom_id is None:
        return None
    for cls in _DYNAMIC:
        match = cls.__discord_ui_compiled_template__.fullmatch(custom_id)
        if match is not None:
            item: discord.ui.DynamicItem[Any] = cls.from_match(  # type: ignore[attr-defined]
                match, label=label or child.label, row=child.row if row is None else row
            )
            return item
    return None


def _rebuild(view: discord.ui.View | discord.ui.LayoutView | None, labels: dict[str, str]) -> discord.ui.View:
    """The message's buttons again, as dynamic items, with some labels replaced (by custom_id)."""
    out = discord.ui.View(timeout=None)
    for child in view.children if view is not None else ():
        copy = dynamic_copy(child, label=labels.get(getattr(child, "custom_id", None) or ""))
        if copy is not None:
            out.add_item(copy)
    return out


# ------------------------------------------------------------------------------------- rating


class RateButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"cb:rate:(?P<caption_id>\d{1,19}):(?P<rating>-?1)"
):
    def __init__(self, caption_id: int, rating: int, *, label: str | None = None, row: int | None = None) -> None:
        good = rating > 0
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.success if good else discord.ButtonStyle.secondary,
                label=label or (texts.BUTTON_GOOD if good else texts.BUTTON_BAD),
                emoji=texts.EMOJI_GOOD if good else texts.EMOJI_BAD,
                custom_id=f"cb:rate:{caption_id}:{rating}",
                row=row,
            )
        )
        self.caption_id, self.rating = caption_id, rating

    @classmethod
    def from_match(cls, match: re.Match[str], *, label: str | None = None, row: int | None = None) -> RateButton:
        return cls(int(match["caption_id"]), int(match["rating"]), label=label, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RateButton:
        return cls.from_match(match, label=getattr(item, "label", None), row=item.row)

    @guarded
    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        service = service_of(interaction)
        try:
            state = await service.rate(
                caption_id=self.caption_id,
                platform=PLATFORM,
                platform_user_id=str(interaction.user.id),
                rating=self.rating,
            )
        except UnknownCaptionError:
            await say(interaction, texts.CAPTION_GONE)
            return
        good = (state.ratings + state.score) // 2  # thumbs only: every rating is +1 or -1
        counts = {f"cb:rate:{self.caption_id}:1": good, f"cb:rate:{self.caption_id}:-1": state.ratings - good}
        labels = {}
        for child in self.view.children if self.view is not None else ():
            custom_id = getattr(child, "custom_id", None)
            if custom_id in counts:
                item = child.item if isinstance(child, discord.ui.DynamicItem) else child
                base = RATING_COUNT.sub("", getattr(item, "label", None) or "")
                labels[custom_id] = f"{base} ({counts[custom_id]})" if counts[custom_id] else base
        await interaction.response.edit_message(view=_rebuild(self.view, labels))
        await interaction.followup.send(texts.rated(self.rating), ephemeral=True)


# --------------------------------------------------------------------------------- correction


class CorrectionModal(discord.ui.Modal):
    """A text field pre-filled with the caption; what the user submits is their correction.

    The submission is handled by :func:`submit_correction` from the bot's ``on_interaction`` (custom
    id ``cb:fixm:<caption>``), not by ``on_submit``: like the buttons, it then works without this
    object, so after a restart or after this object's timeout too.
    """

    def __init__(self, caption_id: int, current: str) -> None:
        super().__init__(title=texts.DISCORD_MODAL_TITLE, custom_id=f"cb:fixm:{caption_id}", timeout=15 * 60)
        self.text: discord.ui.TextInput[CorrectionModal] = discord.ui.TextInput(
            custom_id=MODAL_FIELD,
            label=texts.DISCORD_MODAL_LABEL,
            placeholder=texts.CORRECTION_PLACEHOLDER,
            default=current[:MAX_CORRECTION_CHARS],
            style=discord.TextStyle.paragraph,
            max_length=MAX_CORRECTION_CHARS,
            required=True,
        )
        self.add_item(self.text)


MODAL_FIELD = "caption"
MODAL_TEMPLATE = re.compile(r"cb:fixm:(?P<caption_id>\d{1,19})")


def _field_value(node: Any, custom_id: str) -> str | None:
    """The submitted value of field ``custom_id``, in action rows or labels, however nested."""
    if isinstance(node, dict):
        if node.get("custom_id") == custom_id and "value" in node:
            return str(node["value"])
        children = [*node.get("components", []), *([node["component"]] if "component" in node else [])]
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        value = _field_value(child, custom_id)
        if value is not None:
            return value
    return None


async def submit_correction(interaction: discord.Interaction[Any]) -> bool:
    """Store a submitted correction modal; False when ``interaction`` is not one."""
    data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
    match = MODAL_TEMPLATE.fullmatch(str(data.get("custom_id", "")))
    if interaction.type is not discord.InteractionType.modal_submit or match is None:
        return False
    await _store_correction(interaction, int(match["caption_id"]), _field_value(data.get("components"), MODAL_FIELD))
    return True


@guarded
async def _store_correction(interaction: discord.Interaction[Any], caption_id: int, text: str | None) -> None:
    service, user_id = service_of(interaction), str(interaction.user.id)
    try:
        state = await service.correct(
            caption_id=caption_id, platform=PLATFORM, platform_user_id=user_id, text=text or ""
        )
    except UnknownCaptionError:
        await say(interaction, texts.CAPTION_GONE)
    except InvalidFeedbackError as exc:
        await say(interaction, exc.user_message)
    else:
        # Answered: the person's next message here is not a caption any more.
        await service.cancel_correction(
            platform=PLATFORM, platform_chat_id=str(interaction.channel_id), platform_user_id=user_id
        )
        await say(interaction, texts.correction_saved(state.correction or ""))


class FixButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"cb:fix:(?P<caption_id>\d{1,19})"):
    def __init__(self, caption_id: int, *, label: str | None = None, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.primary,
                label=label or texts.BUTTON_BETTER,
                emoji=texts.EMOJI_BETTER,
                custom_id=f"cb:fix:{caption_id}",
                row=row,
            )
        )
        self.caption_id = caption_id

    @classmethod
    def from_match(cls, match: re.Match[str], *, label: str | None = None, row: int | None = None) -> FixButton:
        return cls(int(match["caption_id"]), label=label, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FixButton:
        return cls.from_match(match, label=getattr(item, "label", None), row=item.row)

    @guarded
    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        # Waits for a message as well (bot.discord.corrections): typed there if the form is dismissed.
        try:
            ask = await service_of(interaction).ask_for_correction(
                caption_id=self.caption_id,
                platform=PLATFORM,
                platform_chat_id=str(interaction.channel_id),
                platform_user_id=str(interaction.user.id),
            )
        except UnknownCaptionError:
            await say(interaction, texts.CAPTION_GONE)
            return
        await interaction.response.send_modal(CorrectionModal(self.caption_id, ask.caption_text))


# ---------------------------------------------------------------------------------- alt text


class AltButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"cb:alt:(?P<caption_id>\d{1,19})"):
    def __init__(self, caption_id: int, *, label: str | None = None, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label=label or texts.DISCORD_BUTTON_ALT,
                emoji=texts.DISCORD_EMOJI_ALT,
                custom_id=f"cb:alt:{caption_id}",
                row=row,
            )
        )
        self.caption_id = caption_id

    @classmethod
    def from_match(cls, match: re.Match[str], *, label: str | None = None, row: int | None = None) -> AltButton:
        return cls(int(match["caption_id"]), label=label, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AltButton:
        return cls.from_match(match, label=getattr(item, "label", None), row=item.row)

    @guarded
    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        service = service_of(interaction)
        record = await service.find_caption(self.caption_id, platform=PLATFORM)
        if record is None:
            await say(interaction, texts.CAPTION_GONE)
        elif record.requester_id != str(interaction.user.id):
            await say(interaction, texts.DISCORD_ONLY_REQUESTER_ALT)
        elif (data := await service.read_photo(record)) is None:
            await say(interaction, texts.PHOTO_GONE)
        else:
            await interaction.response.defer(thinking=True)
            # An edit of the "thinking" message: doing it again can't post the image twice.
            await interaction.edit_original_response(**alt_text_message(record, data, interaction.user.mention))


def alt_text_message(record: CaptionRecord, data: bytes, mention: str) -> dict[str, Any]:
    """Keyword arguments for an ``edit`` (the file as its only attachment; a ``send`` takes it as
    ``files``): the image with the caption, phrased for its band, as its description (alt text):
    the same words the reply says, and the text read in it (cut short: "All text" gives the rest)."""
    description, cut = alt_description(record)
    return {
        "content": texts.discord_alt_text_post(mention),
        "attachments": [discord.File(io.BytesIO(data), filename=record.filename, description=description)],
        "view": caption_view([CaptionRow(record.caption_id, alt_button=False, all_text=cut)]),
        "allowed_mentions": NO_MENTIONS,
    }


# ----------------------------------------------------------------------------------- /forget


class ForgetButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"cb:forget:(?P<user_id>\d{1,20}):(?P<choice>yes|no)"
):
    def __init__(self, user_id: int, confirm: bool, *, label: str | None = None, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.danger if confirm else discord.ButtonStyle.secondary,
                label=label or (texts.BUTTON_FORGET_YES if confirm else texts.BUTTON_FORGET_NO),
                custom_id=f"cb:forget:{user_id}:{'yes' if confirm else 'no'}",
                row=row,
            )
        )
        self.user_id, self.confirm = user_id, confirm

    @classmethod
    def from_match(cls, match: re.Match[str], *, label: str | None = None, row: int | None = None) -> ForgetButton:
        return cls(int(match["user_id"]), match["choice"] == "yes", label=label, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ForgetButton:
        return cls.from_match(match, label=getattr(item, "label", None), row=item.row)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.user.id == self.user_id:
            return True
        await say(interaction, texts.FORGET_NOT_YOURS)
        return False

    @guarded
    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer()  # deleting many photos can take more than 3 s
        if not self.confirm:
            await interaction.edit_original_response(content=texts.FORGET_CANCELLED, view=None)
            return
        report = await service_of(interaction).forget(platform=PLATFORM, platform_user_id=str(self.user_id))
        if report.found:
            text = texts.forgotten(photos=report.requests, captions=report.captions, feedback=report.feedback)
        else:
            text = texts.FORGET_NOTHING
        await interaction.edit_original_response(content=text, view=None)


def forget_view(user_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton(user_id, True))
    view.add_item(ForgetButton(user_id, False))
    return view


_DYNAMIC.extend([RateButton, FixButton, AltButton, TextButton, ForgetButton])
#: Registered by the bot's setup_hook: these answer their buttons on any message, after any restart.
DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = tuple(_DYNAMIC)
