"""Under a caption: the buttons, ratings, better captions, and Discord's alt-text re-post.

Button labels are words; their emoji are separate entries, which a front end shows as a decoration
(Discord's button emoji) or puts before the word (Telegram), never inside a sentence.
"""

from __future__ import annotations

import re

BUTTON_GOOD = "Good"
BUTTON_BAD = "Wrong"
BUTTON_BETTER = "Better caption"
EMOJI_GOOD = "\N{THUMBS UP SIGN}"
EMOJI_BAD = "\N{THUMBS DOWN SIGN}"
EMOJI_BETTER = "\N{PENCIL}\N{VARIATION SELECTOR-16}"
BUTTON_EXPIRED = "This button has expired."

CAPTION_GONE = "That caption no longer exists."
RATING_NAMES = {1: "good", -1: "wrong"}


def rated(rating: int) -> str:
    return f"Thanks! You rated it {RATING_NAMES.get(rating, str(rating))}."


INVALID_RATING = "Ratings are thumbs up/down or 1 to 5 stars."
EMPTY_CORRECTION = "Please send the caption you'd suggest as text."


def correction_too_long(limit: int) -> str:
    return f"Please keep your caption under {limit} characters."


CORRECTION_PLACEHOLDER = "Describe the photo in one sentence"  # the empty text field (Telegram: <= 64 characters)
CORRECTION_SAVED = "Thank you! I saved your caption. It helps me learn."

# -- Telegram: "Better caption" waits for the person's next text in that chat --------------------

CORRECTION_CANCEL = "Cancel"  # the prompt's button; typing the word does the same
CORRECTION_CANCELLED = "Cancelled. Your caption was not changed."
CORRECTION_NOTHING_TO_CANCEL = "There was nothing to cancel."
CORRECTION_CANCEL_NOT_YOURS = "Only the person who pressed Better caption can cancel this."
CORRECTION_ALREADY_ASKED = "Send me your better caption as your next message."


def telegram_correction_prompt(caption: str, name: str | None = None) -> str:
    """Asks for a better caption, quoting the current one first. Private chats: the prompt has a
    Cancel button and the next message is taken. Groups: ``name`` starts the text and is made a
    mention (only that person's reply box opens); the bot sees only replies there (privacy mode)."""
    quoted = f'The caption was: "{caption.strip()}"'
    if name:
        return f"{name}, reply to this message with a better caption, or with the word cancel. {quoted}"
    return f"{quoted}\nSend me a better caption as your next message, or press Cancel."


def correction_saved(text: str) -> str:
    """Quotes what was stored, so a screen reader says it back."""
    return f'Thank you! I saved: "{text}".'


def correction_expired(wait_s: float) -> str:
    minutes = max(1, round(wait_s / 60))
    span = "a minute" if minutes == 1 else f"{minutes} minutes"
    return (
        f"That was more than {span} after you pressed Better caption, so I didn't save it. "
        "Press Better caption again to send one."
    )


def is_cancel(text: str | None) -> bool:
    """The word "cancel" (any case, a full stop allowed) typed instead of a caption."""
    return (text or "").strip().rstrip(".!").strip().lower() == "cancel"


# Prompts sent before captions were awaited in the database ended "(Caption no. N)"; a reply to one
# of them is still taken, so nothing typed into an old prompt is lost.
_PROMPT_REF = re.compile(r"\(caption no\. (\d{1,19})\)\s*$", re.I)


def telegram_correction_prompt_ref(text: str | None) -> int | None:
    """The caption id in an old-format correction prompt, or None."""
    m = _PROMPT_REF.search(text or "")
    return int(m[1]) if m else None


# -- Discord: the better caption is typed into a form; the photo can be re-posted with alt text --

DISCORD_MODAL_TITLE = "Suggest a better caption"
DISCORD_MODAL_LABEL = "Your caption"
DISCORD_BUTTON_ALT = "Alt text"
DISCORD_EMOJI_ALT = "\N{FRAME WITH PICTURE}\N{VARIATION SELECTOR-16}"
DISCORD_CORRECTION_WHICH = "That message has several captions. Press Better caption under the one you mean."
DISCORD_CORRECTION_UNREADABLE = (
    "I can't read that reply here. Mention me in it, or press Better caption under the caption."
)
DISCORD_ONLY_REQUESTER_ALT = "Only the person who asked for this description can re-post the image."


def discord_alt_text_post(mention: str) -> str:
    """The text of an image re-posted with alt text; the description itself is the image's alt text."""
    return f"Image from {mention}, with a description as its alt text."
