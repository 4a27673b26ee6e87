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

# -- Telegram: the better caption is a reply to a prompt that names the caption -----------------

# The caption id travels in the prompt's own text, so a reply to it still works after a restart.
_PROMPT_REF = re.compile(r"\(caption no\. (\d{1,19})\)\s*$", re.I)


def telegram_correction_prompt(caption_id: int, name: str | None = None) -> str:
    """Asks for a better caption (sent with ForceReply). ``name`` starts the text in groups, where it
    is made a mention so only that person's client opens the reply box."""
    ask = "send me a better caption as a reply to this message."
    ref = f"(Caption no. {caption_id})"
    return f"{name}, {ask} {ref}" if name else f"Please {ask} {ref}"


def telegram_correction_prompt_ref(text: str | None) -> int | None:
    """The caption id in one of our correction prompts, or None."""
    m = _PROMPT_REF.search(text or "")
    return int(m[1]) if m else None


# -- Discord: the better caption is typed into a form; the photo can be re-posted with alt text --

DISCORD_MODAL_TITLE = "Suggest a better caption"
DISCORD_MODAL_LABEL = "Your caption"
DISCORD_BUTTON_ALT = "Alt text"
DISCORD_EMOJI_ALT = "\N{FRAME WITH PICTURE}\N{VARIATION SELECTOR-16}"
DISCORD_ONLY_REQUESTER_ALT = "Only the person who asked for this description can re-post the image."


def discord_alt_text_post(mention: str) -> str:
    """The text of an image re-posted with alt text; the description itself is the image's alt text."""
    return f"Image from {mention}, with a description as its alt text."
