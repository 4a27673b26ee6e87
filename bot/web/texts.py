"""The web page's own words (what the bots also say comes from :mod:`captionbot.texts`)."""

from __future__ import annotations

TITLE = "captionbot"
TAGLINE = "Describe a photo in words, for alt text."
NOT_FOUND = "There is nothing here. It may have been deleted."
NOT_ALLOWED = "That is not something this page can do."
TOO_LARGE = "That file is too large. Please send a photo under the size limit."
SERVER_ERROR = "Something went wrong on our side. Please try again in a moment."
BAD_FORM = "This form has expired. Please reload the page and try again."

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
