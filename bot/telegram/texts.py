"""Every user-facing string of the Telegram bot, in one place.

Written for screen readers first: the caption comes first in its message, with no emoji or labels
before it; messages are short and say what to do next.
"""

from __future__ import annotations

import re

from captionbot import wording
from captionbot.images import ImageTooLargeError, NotAnImageError

# --- commands (setMyCommands) -------------------------------------------------------------------

PRIVATE_COMMANDS: list[tuple[str, str]] = [
    ("start", "How I work"),
    ("help", "What I can do"),
    ("caption", "Describe a photo (reply to it)"),
    ("privacy", "What I keep and how it is used"),
    ("stats", "Model version and your numbers"),
    ("optout", "Keep my photos out of training"),
    ("optin", "Allow my photos for training again"),
    ("forget", "Delete everything about me"),
]
GROUP_COMMANDS: list[tuple[str, str]] = [
    ("caption", "Describe a photo: reply to it with /caption"),
    ("autocaption", "Admins: describe every photo (on/off)"),
    ("help", "What I can do"),
    ("privacy", "What I keep and how it is used"),
    ("stats", "Model version and your numbers"),
    ("optout", "Keep my photos out of training"),
    ("optin", "Allow my photos for training again"),
    ("forget", "Delete everything about me"),
]

# --- help ---------------------------------------------------------------------------------------

HELP = (
    "Send me a photo and I'll describe it in words, for alt text.\n"
    "Photos, albums, forwarded photos and image files (JPEG, PNG, WebP, GIF, HEIC) all work.\n"
    "\n"
    "In a group, reply to a photo with /caption, or put /caption in a photo's caption.\n"
    "\n"
    "Under each description you can rate it or send a better one: that's how I learn.\n"
    "/privacy: what I keep and why\n"
    "/stats: model version and your numbers\n"
    "/optout and /optin: training use of your photos\n"
    "/forget: delete everything about you"
)
START = "Hi! " + HELP
SEND_A_PHOTO = "Send me a photo and I'll describe it. /help shows what else I can do."
CAPTION_USAGE = "Reply to a photo with /caption and I'll describe it. You can also put /caption in a photo's caption."

# --- photos -------------------------------------------------------------------------------------

NOT_AN_IMAGE = NotAnImageError.default_user_message
DOWNLOAD_FAILED = "I couldn't download that photo from Telegram. Please try sending it again."
ERROR = "Sorry, something went wrong on my side. Please try again."
LOW_CONFIDENCE = wording.LOW_CONFIDENCE
EMPTY_CAPTION = wording.EMPTY_CAPTION


def too_big(size_bytes: int, limit_bytes: int) -> str:
    return ImageTooLargeError(size_bytes, limit_bytes).user_message


def caption_message(
    text: str | None, confidence: float | None = None, *, band: str | None = None, hint: str | None = None
) -> str:
    """The caption phrased for its band (captionbot.wording), first thing in the message (what a
    screen reader reads out)."""
    said = wording.describe(text, band=band, hint=hint)
    if text and text.strip() and wording.needs_low_confidence_note(band, confidence):
        said += "\n" + LOW_CONFIDENCE
    return said


def queue_status(position: int, photos: int = 1) -> str:
    """The "please wait" message, later edited into the caption."""
    what = "your photo" if photos == 1 else f"your {photos} photos"
    if position <= 0:
        return f"Describing {what} now\N{HORIZONTAL ELLIPSIS}"
    who = "You're" if photos == 1 else f"Your {photos} photos are"
    return f"{who} #{position} in the queue. I'll put the description here when it's ready."


# --- buttons and feedback -----------------------------------------------------------------------

BUTTON_GOOD = "\N{THUMBS UP SIGN} Good"
BUTTON_BAD = "\N{THUMBS DOWN SIGN} Wrong"
BUTTON_BETTER = "\N{PENCIL}\N{VARIATION SELECTOR-16} Better caption"
BUTTON_FORGET_YES = "Yes, delete everything"
BUTTON_FORGET_NO = "Cancel"

EXPIRED = "This button has expired."
CAPTION_GONE = "That caption no longer exists."
RATING_NAMES = {1: "good", -1: "wrong"}
CORRECTION_SAVED = "Thank you! I saved your caption. It helps me learn."


def rated(rating: int) -> str:
    return f"Thanks! You rated it {RATING_NAMES.get(rating, str(rating))}."


# The caption id travels in the prompt's own text, so a reply to it still works after a restart.
_PROMPT_REF = re.compile(r"\(caption no\. (\d{1,19})\)\s*$", re.I)


def correction_prompt(caption_id: int, name: str | None = None) -> str:
    """Asks for a better caption (sent with ForceReply). ``name`` starts the text in groups, where it
    is made a mention so only that person's client opens the reply box."""
    ask = "send me a better caption as a reply to this message."
    ref = f"(Caption no. {caption_id})"
    return f"{name}, {ask} {ref}" if name else f"Please {ask} {ref}"


def correction_prompt_ref(text: str | None) -> int | None:
    """The caption id in one of our correction prompts, or None."""
    m = _PROMPT_REF.search(text or "")
    return int(m[1]) if m else None


CORRECTION_PLACEHOLDER = "A better caption"

# --- privacy ------------------------------------------------------------------------------------

FORGET_ASK = (
    "Delete all your photos, captions, ratings and corrections? This can't be undone. "
    "Messages already in this chat stay, but their buttons will stop working."
)
FORGET_NOT_YOURS = "Only the person who asked can confirm this."
FORGET_CANCELLED = "Okay, I kept everything."
FORGET_NOTHING = "I had nothing stored about you."


def forgotten(requests: int, captions: int, feedback: int) -> str:
    return (
        f"Done. I deleted {_n(requests, 'photo')}, {_n(captions, 'caption')} "
        f"and {_n(feedback, 'rating or correction', 'ratings or corrections')} of yours."
    )


OPTED_OUT = (
    "Done: your photos, ratings and corrections won't be used for training. I'll still describe your "
    "photos. /optin undoes this."
)
OPTED_IN = "Thanks! Your photos and feedback may be used to train better captions. /optout undoes this."
PRIVACY_TELEGRAM = (
    "Telegram: I download a photo only when you send it to me, or when someone asks me to describe it in a group."
)


def stats(
    *,
    model: str | None,
    total_captions: int,
    requests: int,
    captions: int,
    pending: int,
    failed: int,
    ratings: int,
    corrections: int,
    opted_out: bool,
) -> str:
    lines = [
        f"Model: {model or 'not loaded yet'}",
        f"Captions written for everyone so far: {total_captions}",
        f"Your photos: {requests} ({captions} described, {pending} waiting, {failed} failed)",
        f"Your ratings: {ratings}. Your better captions: {corrections}.",
        "Training use of your photos: " + ("off (you opted out)." if opted_out else "on. /optout turns it off."),
    ]
    return "\n".join(lines)


# --- groups -------------------------------------------------------------------------------------

AUTOCAPTION_ON = "Auto-captioning is on: I'll describe every photo posted here."
AUTOCAPTION_OFF = "Auto-captioning is off. Reply to a photo with /caption to have it described."
AUTOCAPTION_PRIVACY_NOTE = (
    "My privacy mode is on, so I can't see ordinary photos in groups yet. The bot's owner can turn it off "
    "in @BotFather (/setprivacy, then Disable) and add me to this group again."
)
AUTOCAPTION_ADMINS_ONLY = "Only group admins can turn auto-captioning on or off."
AUTOCAPTION_GROUPS_ONLY = "Auto-captioning is for groups. Here I describe every photo you send anyway."
AUTOCAPTION_USAGE = "Use /autocaption on or /autocaption off (admins only; needs my privacy mode off)."


def autocaption_state(enabled: bool) -> str:
    return f"Auto-captioning is {'on' if enabled else 'off'} here. {AUTOCAPTION_USAGE}"


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
