"""Your data: /privacy, /forget (asked first), /optout, /optin and /stats."""

from __future__ import annotations


def privacy(retention_days: int) -> str:
    """What is kept, for how long, and the two commands that change it."""
    keep = (
        f"for {retention_days} days after they are captioned, longer only if you rated or corrected the caption "
        "and did not opt out of training"
        if retention_days
        else "until you ask me to forget them"
    )
    return (
        "What I keep: the photos you send me (" + keep + "), the captions I wrote with any text I read "
        "in the photos (deleted with the photos), and your ratings and corrections, linked to your account id "
        "and display name. They are used to answer you and, unless you opt out, to train better captions "
        "(the text read in photos never is).\n"
        "/optout \N{EM DASH} keep getting captions, but never use your photos or feedback for training.\n"
        "/forget \N{EM DASH} delete everything I have about you, now.\n"
        "I never share your photos with anyone."
    )


#: Telegram: added under :func:`privacy`.
TELEGRAM_PRIVACY_NOTE = (
    "Telegram: I download a photo only when you send it to me, or when someone asks me to describe it in a group."
)

FORGET_ASK = (
    "Delete all your photos, captions, ratings and corrections? This can't be undone. "
    "Messages I already sent stay, but their buttons will stop working."
)
BUTTON_FORGET_YES = "Yes, delete everything"
BUTTON_FORGET_NO = "Cancel"
FORGET_NOT_YOURS = "Only the person who asked can confirm this."
FORGET_CANCELLED = "Okay, I kept everything."
FORGET_NOTHING = "I had nothing stored about you."


def forgotten(*, photos: int, captions: int, feedback: int) -> str:
    return (
        f"Done. I deleted {_n(photos, 'photo')}, {_n(captions, 'caption')} "
        f"and {_n(feedback, 'rating or correction', 'ratings or corrections')} of yours."
    )


OPTED_OUT = (
    "Done: your photos, ratings and corrections won't be used for training. I'll still describe your "
    "photos. /optin undoes this."
)
OPTED_IN = "Done: your photos, ratings and corrections may be used to train better captions. /optout undoes this."


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
    training = "off (you opted out). /optin turns it on." if opted_out else "on. /optout turns it off."
    lines = [
        f"Model: {model or 'not loaded yet'}",
        f"Captions written for everyone so far: {total_captions}",
        f"Your photos: {requests} ({captions} described, {pending} waiting, {failed} failed)",
        f"Your ratings: {ratings}. Your better captions: {corrections}.",
        "Training use of your photos: " + training,
    ]
    return "\n".join(lines)


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
