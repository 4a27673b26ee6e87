"""Every sentence a person reads from captionbot, in one place and one wording on every platform.

Front ends format these (Markdown, buttons, embeds) but do not reword them. Functions take the
values a sentence needs, so a translation catalog can replace this module's strings one by one.
"""

from __future__ import annotations

from captionbot.jobs import ErrorCode

# -- failures (a request that got no caption) ---------------------------------------------------

_FAILURES: dict[ErrorCode, str] = {
    ErrorCode.BAD_IMAGE: "I couldn't read that photo. Please send it as a JPEG, PNG or WebP image.",
    ErrorCode.MISSING_IMAGE: "I no longer have that photo. Please send it again.",
    ErrorCode.CAPTION_ERROR: "Sorry, something went wrong while describing that photo. Please try again later.",
}


def failure(code: ErrorCode | str) -> str:
    """What to tell the person when their request failed with ``code`` and no better message exists."""
    try:
        return _FAILURES[ErrorCode(code)]
    except ValueError:
        return _FAILURES[ErrorCode.CAPTION_ERROR]
