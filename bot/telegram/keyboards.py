"""Inline keyboards and their callback data: compact, versioned, at most 64 bytes, no server state.

Callback data formats (the digit after the letter is the format version)::

    r1:<caption_id>:<rating>   rate a caption: rating is 1 (thumbs up) or -1 (thumbs down)
    c1:<caption_id>            ask for a better caption
    t1:<caption_id>            send the whole text read in the photo (shown when its line was cut)
    f1:<user_id>:y|n           confirm / cancel /forget; only <user_id> may press it
    x1:<user_id>               stop waiting for <user_id>'s better caption (the prompt's Cancel)

Everything a button needs is in its data and in the database, so buttons keep working after a
restart. Data that doesn't parse (an old format, a forged or truncated string) decodes to ``None``
and the user is told the button has expired.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from captionbot import texts

MAX_CALLBACK_BYTES = 64  # Bot API limit
THUMBS_UP, THUMBS_DOWN = 1, -1

#: Telegram buttons have no emoji of their own: it goes before the word.
LABEL_GOOD = f"{texts.EMOJI_GOOD} {texts.BUTTON_GOOD}"
LABEL_BAD = f"{texts.EMOJI_BAD} {texts.BUTTON_BAD}"
LABEL_BETTER = f"{texts.EMOJI_BETTER} {texts.BUTTON_BETTER}"
LABEL_ALL_TEXT = f"{texts.EMOJI_ALL_TEXT} {texts.BUTTON_ALL_TEXT}"


class Rate(NamedTuple):
    caption_id: int
    rating: int


class Correct(NamedTuple):
    caption_id: int


class AllText(NamedTuple):
    caption_id: int


class Forget(NamedTuple):
    user_id: int
    confirm: bool


class CancelCorrection(NamedTuple):
    user_id: int


Action = Rate | Correct | AllText | Forget | CancelCorrection

_ID = r"[1-9][0-9]{0,18}"
_PATTERNS: list[tuple[re.Pattern[str], type]] = [
    (re.compile(rf"r1:({_ID}):(1|-1)"), Rate),
    (re.compile(rf"c1:({_ID})"), Correct),
    (re.compile(rf"t1:({_ID})"), AllText),
    (re.compile(rf"f1:({_ID}):([yn])"), Forget),
    (re.compile(rf"x1:({_ID})"), CancelCorrection),
]


def encode(action: Action) -> str:
    """The callback data string for ``action``."""
    match action:
        case Rate(caption_id, rating):
            data = f"r1:{caption_id}:{rating}"
        case Correct(caption_id):
            data = f"c1:{caption_id}"
        case AllText(caption_id):
            data = f"t1:{caption_id}"
        case Forget(user_id, confirm):
            data = f"f1:{user_id}:{'y' if confirm else 'n'}"
        case CancelCorrection(user_id):
            data = f"x1:{user_id}"
        case _:
            raise TypeError(f"not a button action: {action!r}")
    if len(data.encode()) > MAX_CALLBACK_BYTES:  # can't happen with ids < 2**63; guards future formats
        raise ValueError("callback data over 64 bytes")
    return data


def decode(data: str | None) -> Action | None:
    """The action behind a button, or None for data this version doesn't understand."""
    if not data:
        return None
    for pattern, kind in _PATTERNS:
        m = pattern.fullmatch(data)
        if m is None:
            continue
        if kind is Rate:
            return Rate(int(m[1]), int(m[2]))
        if kind is Correct:
            return Correct(int(m[1]))
        if kind is AllText:
            return AllText(int(m[1]))
        if kind is CancelCorrection:
            return CancelCorrection(int(m[1]))
        return Forget(int(m[1]), m[2] == "y")
    return None


def caption_keyboard(
    caption_id: int,
    *,
    mine: int | None = None,
    ups: int = 0,
    downs: int = 0,
    show_counts: bool = False,
    all_text: bool = False,
) -> InlineKeyboardMarkup:
    """Rating buttons plus "Better caption", and "All text" when the text read in the photo was cut
    short. In a private chat the user's own rating is marked; in a group, where many people rate one
    message, the buttons show how many chose each."""

    def label(base: str, rating: int, count: int) -> str:
        if show_counts:
            return f"{base} · {count}" if count else base
        return f"{base} ✓" if mine == rating else base

    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    label(LABEL_GOOD, THUMBS_UP, ups), callback_data=encode(Rate(caption_id, THUMBS_UP))
                ),
                InlineKeyboardButton(
                    label(LABEL_BAD, THUMBS_DOWN, downs), callback_data=encode(Rate(caption_id, THUMBS_DOWN))
                ),
            ],
            [InlineKeyboardButton(LABEL_BETTER, callback_data=encode(Correct(caption_id)))],
            *([[InlineKeyboardButton(LABEL_ALL_TEXT, callback_data=encode(AllText(caption_id)))]] if all_text else []),
        ]
    )


def forget_keyboard(user_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(texts.BUTTON_FORGET_YES, callback_data=encode(Forget(user_id, True))),
                InlineKeyboardButton(texts.BUTTON_FORGET_NO, callback_data=encode(Forget(user_id, False))),
            ]
        ]
    )


def cancel_correction_keyboard(user_id: int) -> InlineKeyboardMarkup:
    """The Cancel button under a private chat's better-caption prompt."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(texts.CORRECTION_CANCEL, callback_data=encode(CancelCorrection(user_id)))]]
    )


def caption_id_of(markup: InlineKeyboardMarkup | None) -> int | None:
    """The caption id behind a caption message's buttons (None: not a caption message)."""
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            action = decode(button.callback_data if isinstance(button.callback_data, str) else None)
            if isinstance(action, Rate | Correct):
                return action.caption_id
    return None


def has_all_text(markup: InlineKeyboardMarkup | None) -> bool:
    """Whether a caption message shows the "All text" button (kept when its buttons are redrawn)."""
    return any(
        isinstance(decode(b.callback_data if isinstance(b.callback_data, str) else None), AllText)
        for row in (markup.inline_keyboard if markup is not None else ())
        for b in row
    )


def thumbs_counts(ratings: int, score: int) -> tuple[int, int]:
    """(ups, downs) from the service's totals; Telegram ratings are only ever +1 / -1."""
    ups = max(0, (ratings + score) // 2)
    return ups, max(0, ratings - ups)
