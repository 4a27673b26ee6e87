"""The web page's own words (what the bots also say comes from :mod:`captionbot.texts`)."""

from __future__ import annotations

TITLE = "captionbot"
TAGLINE = "Describe a photo in words, for alt text."
NOT_FOUND = "There is nothing here. It may have been deleted."
NOT_ALLOWED = "That is not something this page can do."
TOO_LARGE = "That file is too large. Please send a photo under the size limit."
SERVER_ERROR = "Something went wrong on our side. Please try again in a moment."
BAD_FORM = "This form has expired. Please reload the page and try again."
