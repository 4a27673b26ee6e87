"""Photos in: refusals (too fast, too many, busy, not an image, too big, no photo found) and what
to say when a request got no caption."""

from __future__ import annotations

from captionbot.images.errors import ACCEPTED_NAMES, ImageTooLargeError, NotAnImageError
from captionbot.jobs import ErrorCode

# -- refusals at intake --------------------------------------------------------------------------


def rate_limited(retry_after: int) -> str:
    return f"You're sending photos faster than I can look at them \N{EM DASH} please try again in {retry_after} s."


def too_many_pending(pending: int, retry_after: int) -> str:
    return f"I'm still working on your last {pending} photos \N{EM DASH} please send more in about {retry_after} s."


def busy(retry_after: int) -> str:
    return f"I'm busy right now \N{EM DASH} please try again in {retry_after} s."


def not_an_image(filename: str | None = None) -> str:
    """A file that isn't an image, named when its name is known (one message may hold several)."""
    if not filename:
        return NotAnImageError.default_user_message
    return f"{filename} isn't an image I can read. Please send a {ACCEPTED_NAMES} photo."


def too_big(size_bytes: int, limit_bytes: int) -> str:
    """The same sentence as the service's own size check (:class:`ImageTooLargeError`)."""
    return ImageTooLargeError(size_bytes, limit_bytes).user_message


def too_many_images(limit: int, skipped: int) -> str:
    return f"(I describe up to {limit} images per message, so I skipped {skipped}.)"


DOWNLOAD_FAILED = "I couldn't download that photo. Please try sending it again."

#: Telegram: ``/caption`` (or a mention) that doesn't reply to a photo.
TELEGRAM_CAPTION_USAGE = (
    "Reply to a photo with /caption and I'll describe it. You can also put /caption in a photo's caption."
)
#: Discord: the Caption image menu on a message without images.
DISCORD_NO_IMAGES_IN_MESSAGE = (
    "I can't find an image in that message. Images attached to a message, or shown in it from a link, both work."
)
#: Discord: a mention replying to a message whose images the bot can't see.
DISCORD_NO_IMAGES_IN_REPLY = (
    "I can't see an image in the message you replied to. If it has one, right-click it "
    "(or long-press on a phone), pick Apps, then Caption image."
)

# -- failures (a request that got no caption, or a handler that broke) ---------------------------

ERROR = "Sorry, something went wrong on my side. Please try again."
PHOTO_GONE = "I no longer have that photo. Please send it again."

_FAILURES: dict[ErrorCode, str] = {
    ErrorCode.BAD_IMAGE: "I couldn't read that photo. Please send it as a JPEG, PNG or WebP image.",
    ErrorCode.MISSING_IMAGE: PHOTO_GONE,
    ErrorCode.CAPTION_ERROR: "Sorry, something went wrong while describing that photo. Please try again later.",
}


def failure(code: ErrorCode | str) -> str:
    """What to tell the person when their request failed with ``code`` and no better message exists."""
    try:
        return _FAILURES[ErrorCode(code)]
    except ValueError:
        return _FAILURES[ErrorCode.CAPTION_ERROR]
