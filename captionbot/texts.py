"""Every sentence a person reads from captionbot, in one place and one wording on every platform.

Front ends format these (Markdown, buttons, embeds) but do not reword them. Functions take the
values a sentence needs, so a translation catalog can replace this module's strings one by one.
"""

from __future__ import annotations

from captionbot.jobs import ErrorCode

# -- refusals at intake --------------------------------------------------------------------------


def rate_limited(retry_after: int) -> str:
    return f"You're sending photos faster than I can look at them \N{EM DASH} please try again in {retry_after} s."


def too_many_pending(pending: int, retry_after: int) -> str:
    return f"I'm still working on your last {pending} photos \N{EM DASH} please send more in about {retry_after} s."


def busy(retry_after: int) -> str:
    return f"I'm busy right now \N{EM DASH} please try again in {retry_after} s."


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


# -- feedback -------------------------------------------------------------------------------------

INVALID_RATING = "Ratings are thumbs up/down or 1 to 5 stars."
EMPTY_CORRECTION = "Please send the caption you'd suggest as text."


def correction_too_long(limit: int) -> str:
    return f"Please keep your caption under {limit} characters."


# -- privacy --------------------------------------------------------------------------------------


def privacy(retention_days: int) -> str:
    """What is kept, for how long, and the two commands that change it."""
    keep = (
        f"for {retention_days} days after they are captioned, longer only if you rated or corrected the caption "
        "and did not opt out of training"
        if retention_days
        else "until you ask me to forget them"
    )
    return (
        "What I keep: the photos you send me (" + keep + "), the captions I wrote, and your ratings and "
        "corrections, linked to your account id and display name. They are used to answer you and, "
        "unless you opt out, to train better captions.\n"
        "/optout \N{EM DASH} keep getting captions, but never use your photos or feedback for training.\n"
        "/forget \N{EM DASH} delete everything I have about you, now.\n"
        "I never share your photos with anyone."
    )
