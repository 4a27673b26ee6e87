"""What only the web page says: its pages, forms, waiting lines and the moderator's page (what the
bots also say comes from the other :mod:`captionbot.texts` modules)."""

from __future__ import annotations

TITLE = "captionbot"
#: The photo's alt text before it is described.
YOUR_PHOTO_ALT = "The photo you sent"
TAGLINE = "Describe a photo in words, for alt text."
NOT_FOUND = "There is nothing here. It may have been deleted."
NOT_ALLOWED = "That is not something this page can do."
TOO_LARGE = "That file is too large. Please send a photo under the size limit."
SERVER_ERROR = "Something went wrong on our side. Please try again in a moment."
BAD_FORM = "This form has expired. Please reload the page and try again."

# -- the public page ------------------------------------------------------------------------------

UPLOAD_HEADING = "Describe a photo"
UPLOAD_LABEL = "Choose a photo"
UPLOAD_BUTTON = "Describe this photo"
UPLOAD_DROP_HINT = "You can also drop a photo here, or paste one with Ctrl+V (Command+V on a Mac)."
UPLOADING = "Uploading\N{HORIZONTAL ELLIPSIS}"
UPLOAD_PRIVACY = (
    "Your photo is kept to answer you and, unless you opt out, to help the model learn. "
    "You can delete everything you sent at any time."
)
NO_FILE = "Please choose a photo first."
FINISHED_WAITING = "Your description is ready."


def size_words(n_bytes: int) -> str:
    """A byte count as people say it: "20 MB", "500 KB"."""
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):.3g} MB"
    return f"{max(1, round(n_bytes / 1024))} KB"


def max_size(n_bytes: int) -> str:
    return f"Photos up to {size_words(n_bytes)}: JPEG, PNG, WebP, GIF or HEIC."


def too_large(n_bytes: int) -> str:
    return f"That file is too large. Please send a photo under {size_words(n_bytes)}."


def waiting(position: int | None) -> str:
    """The answer page while the photo waits: where it stands in the queue."""
    if not position:
        return "Describing your photo now\N{HORIZONTAL ELLIPSIS}"
    return f"Describing your photo\N{HORIZONTAL ELLIPSIS} you are #{position} in the queue."


#: How sure the model is, in words, by band (captionbot.texts.captions).
BAND_WORDS = {"sure": "sure", "probable": "fairly sure", "unsure": "not sure"}
FLAGGED = "Thank you. You reported this description, and a moderator will look at it."
UNFLAGGED = "Your report was taken back."
OPTED_OUT = "Done: your photos, ratings and corrections won't be used for training. You'll still get descriptions."
OPTED_IN = "Done: your photos, ratings and corrections may be used to train better descriptions."
FORGET_ASK = "Delete all your photos, descriptions, ratings and corrections? This can't be undone."
FORGET_CONFIRM_LABEL = "I understand that everything I sent will be deleted"
FORGET_UNCONFIRMED = "Please tick the box to confirm first. Nothing was deleted."
PRIVACY_WEB = (
    "On this page you do this with the buttons on Your photos: one stops (or restarts) training use of "
    "your photos, the other deletes everything you sent, now."
)
PRIVACY_COOKIE = (
    "This site sets one cookie. It holds only a random visitor id, so that your photos and answers are "
    "shown to you and nobody else, and a token that protects its forms. No tracking, no advertising."
)
PRIVACY_THIRD_PARTY = "This page loads no third-party scripts, styles or fonts: everything comes from this site."

# The moderator's page.
MOD_OFF = "The moderator's page is off."
MOD_OFF_HINT = (
    "To turn it on, set CAPTIONBOT_WEB_MODERATOR_PASSWORD to a long password and restart captionbot "
    "with its database (captionbot run or captionbot web)."
)
MOD_SIGN_IN_FIRST = "Please sign in on the moderator's page first."
MOD_WRONG_PASSWORD = "That password is not right."
MOD_TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Please try again in {seconds} seconds."
MOD_SIGNED_OUT = "You are signed out."
MOD_NONE_CHOSEN = "Nothing was chosen, so nothing changed."
MOD_PROMOTED = "Promoted {name}: the workers switch to it at their next check."
MOD_ROLLED_BACK = "Rolled back from {was} to {now}: the workers switch to it at their next check."
