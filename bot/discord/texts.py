"""Every user-facing string of the Discord bot, in one place.

Written for screen readers first: a caption is the first thing in its message, with no emoji or
label before it (a numbered "Image 2:" only when one reply holds several); answers are short and
say what to do next. Button labels are words, with the emoji as a separate decoration, so a screen
reader reads "Good" rather than "thumbs up sign".
"""

from __future__ import annotations

from captionbot import wording
from captionbot.images import ImageTooLargeError, NotAnImageError

# --- commands (names are Discord's: lower case, no spaces; descriptions <= 100 characters) -------

CMD_CAPTION = "Describe an image in words (alt text)"
CMD_CAPTION_IMAGE = "The image to describe"
CMD_ALTTEXT = "Re-post an image with a description as its alt text"
CMD_ALTTEXT_IMAGE = "The image to post with alt text"
CMD_PRIVACY = "What I keep and how it is used"
CMD_FORGET = "Delete everything I have about you"
CMD_OPTOUT = "Keep your photos and feedback out of training"
CMD_OPTIN = "Allow your photos and feedback for training again"
CMD_STATS = "Your numbers: photos, captions, ratings"
MENU_CAPTION = "Caption image"  # message context menu (right-click a message, Apps)

HELP = (
    "Send me an image and I'll describe it in words.\n"
    "In a server: use /caption with an image, right-click a message and pick Apps, Caption image, "
    "or mention me in a reply to a message with images.\n"
    "/alttext posts your image with the description as its alt text.\n"
    "/privacy, /stats, /optout, /optin, /forget: your data."
)

# --- images -------------------------------------------------------------------------------------

NOT_AN_IMAGE = NotAnImageError.default_user_message
NO_IMAGES_IN_MESSAGE = (
    "I can't find an image in that message. Images attached to a message, or shown in it from a link, both work."
)
NO_IMAGES_IN_REPLY = (
    "I can't see an image in the message you replied to. If it has one, right-click it "
    "(or long-press on a phone), pick Apps, then Caption image."
)
DOWNLOAD_FAILED = "I couldn't download that image from Discord. Please try again."
ERROR = "Sorry, something went wrong on my side. Please try again."
EMPTY_CAPTION = wording.EMPTY_CAPTION
LOW_CONFIDENCE = wording.LOW_CONFIDENCE
PLEASE_WAIT = "Describing your image\N{HORIZONTAL ELLIPSIS}"


def not_an_image(filename: str) -> str:
    return f"{filename} isn't an image I can read. Please send a JPEG, PNG, WebP, GIF or HEIC image."


def too_big(size_bytes: int, limit_bytes: int) -> str:
    return ImageTooLargeError(size_bytes, limit_bytes).user_message


def too_many_images(limit: int, skipped: int) -> str:
    return f"(I describe up to {limit} images per message, so I skipped {skipped}.)"


def caption_sentence(
    text: str | None, confidence: float | None = None, *, band: str | None = None, hint: str | None = None
) -> str:
    """The caption phrased for its band (captionbot.wording: "Probably ...", "I can't describe ...")."""
    said = wording.describe(text, band=band, hint=hint)
    if text and text.strip() and wording.needs_low_confidence_note(band, confidence):
        said += " " + LOW_CONFIDENCE
    return said


def numbered(index: int, line: str, *, total: int) -> str:
    """One line of a reply: the bare line for a single image, "Image 2: ..." for several."""
    return line if total <= 1 else f"Image {index + 1}: {line}"


def late_reply(body: str, mention: str) -> str:
    """A caption that couldn't go to its slash command any more (more than 15 minutes): caption first."""
    return f"{body}\n(For {mention}: the description you asked for.)"


def alt_text_post(mention: str) -> str:
    """The text of an image re-posted with alt text; the description itself is the image's alt text."""
    return f"Image from {mention}, with a description as its alt text."


# --- buttons and feedback -----------------------------------------------------------------------

BUTTON_GOOD = "Good"
BUTTON_BAD = "Wrong"
BUTTON_BETTER = "Better caption"
BUTTON_ALT = "Alt text"
EMOJI_GOOD = "\N{THUMBS UP SIGN}"
EMOJI_BAD = "\N{THUMBS DOWN SIGN}"
EMOJI_BETTER = "\N{PENCIL}\N{VARIATION SELECTOR-16}"
EMOJI_ALT = "\N{FRAME WITH PICTURE}\N{VARIATION SELECTOR-16}"
RATING_NAMES = {1: "good", -1: "wrong"}


def button_label(word: str, *, index: int, total: int, count: int | None = None) -> str:
    """ "Good", "Good 2" (second image), "Good (3)" (three people said so)."""
    label = word if total <= 1 else f"{word} {index + 1}"
    return f"{label} ({count})" if count else label


def rated(rating: int) -> str:
    name = RATING_NAMES.get(rating, str(rating))
    return f"Thanks! I recorded your rating: {name}. You can change it any time."


CAPTION_GONE = "That caption no longer exists (it may have been deleted with /forget)."
IMAGE_GONE = "I don't have that image any more (photos are deleted after a while, or with /forget)."
ONLY_REQUESTER_ALT = "Only the person who asked for this description can re-post the image."
NOT_YOUR_BUTTON = "This button belongs to someone else."
MODAL_TITLE = "Suggest a better caption"
MODAL_LABEL = "Your caption"
MODAL_PLACEHOLDER = "Describe the image in one sentence"
CORRECTION_SAVED = "Thank you! I saved your caption. It helps me learn."

# --- privacy and stats --------------------------------------------------------------------------

FORGET_CONFIRM = (
    "This deletes everything I have about you: your photos, their descriptions, your ratings and "
    "corrections. It can't be undone. Delete everything?"
)
BUTTON_FORGET_YES = "Yes, delete everything"
BUTTON_FORGET_NO = "Cancel"
FORGET_CANCELLED = "Nothing was deleted."
FORGET_NOTHING = "I have nothing about you. There was nothing to delete."


def forgotten(requests: int, images: int, feedback: int) -> str:
    return (
        f"Done. I deleted {requests} request{'s' * (requests != 1)}, {images} photo{'s' * (images != 1)} "
        f"and {feedback} rating{'s' * (feedback != 1)} or correction{'s' * (feedback != 1)}."
    )


OPTED_OUT = "Done: your photos and feedback won't be used for training. You still get descriptions. /optin undoes this."
OPTED_IN = "Done: your photos and feedback may help train better descriptions. /optout undoes this."


def stats(
    *, requests: int, captions: int, pending: int, failed: int, ratings: int, corrections: int, opted_out: bool
) -> str:
    training = "not used for training (/optin to allow)" if opted_out else "may be used for training (/optout to stop)"
    lines = [
        f"Images you sent: {requests}. Described: {captions}. In progress: {pending}. Failed: {failed}.",
        f"Ratings you gave: {ratings}. Better captions you wrote: {corrections}.",
        f"Your photos and feedback are {training}.",
    ]
    return "\n".join(lines)
