"""How a caption is said: the one place both bots, the Discord alt text and the CLI take it from.

For people who can't see the photo a confidently wrong caption is worse than none, so the captioner
gives every caption a band and it is phrased accordingly:

- "sure": the caption as a sentence ("A cat sitting on a couch.");
- "probable": hedged ("Probably a cat sitting on a couch.");
- "unsure": nothing stated as fact ("I can't describe this photo well. It may show a cat.", with the
  image tagger's plain word when it has one, else only the first sentence).

No band (captions of older models) keeps the plain sentence, with a note when the old mean token
probability was below LOW_CONFIDENCE_BELOW. An unknown band is treated as "unsure": the safe side.
"""

from __future__ import annotations

BANDS = ("sure", "probable", "unsure")
EMPTY_CAPTION = "I couldn't find words for this photo."
UNSURE = "I can't describe this photo well."
LOW_CONFIDENCE = "(I'm not sure about this one.)"
LOW_CONFIDENCE_BELOW = 0.2
#: The placeholder posted as soon as a photo is taken; the answer replaces it (an edit).
DESCRIBING = "Describing your photo\N{HORIZONTAL ELLIPSIS}"


def sentence(text: str | None) -> str:
    """Words -> a sentence: single spaces, capital first letter, a full stop. "" for no words."""
    words = " ".join((text or "").split())
    if not words:
        return ""
    out = words[0].upper() + words[1:]
    return out if out[-1] in ".!?" else out + "."


def describe(text: str | None, *, band: str | None, hint: str | None = None) -> str:
    """The caption as said to people, for its band (see the module's docstring)."""
    said = sentence(text)
    if not said:
        return EMPTY_CAPTION
    if band is None or band == "sure":
        return said
    if band == "probable":
        return "Probably " + said[0].lower() + said[1:]
    hint = " ".join((hint or "").split()).rstrip(".")
    return f"{UNSURE} It may show {hint}." if hint else UNSURE


def needs_low_confidence_note(band: str | None, confidence: float | None) -> bool:
    """Captions without a band (older models) get a note when their confidence is low."""
    return band is None and confidence is not None and confidence < LOW_CONFIDENCE_BELOW


def caption(
    text: str | None, confidence: float | None = None, *, band: str | None = None, hint: str | None = None
) -> str:
    """The caption as a reply says it: phrased for its band, then the low-confidence note (on the
    same line, so a numbered list of captions keeps one line per photo). Nothing goes before it:
    it is what a screen reader reads out first."""
    said = describe(text, band=band, hint=hint)
    if text and text.strip() and needs_low_confidence_note(band, confidence):
        said += " " + LOW_CONFIDENCE
    return said


def numbered(index: int, line: str, *, total: int) -> str:
    """One line of a reply about several photos: the bare line for one, "Image 2: ..." for several."""
    return line if total <= 1 else f"Image {index + 1}: {line}"


def queue_status(position: int, photos: int = 1) -> str:
    """The "please wait" message, later edited into the caption."""
    what = "your photo" if photos == 1 else f"your {photos} photos"
    if position <= 0:
        return f"Describing {what} now\N{HORIZONTAL ELLIPSIS}"
    who = "You're" if photos == 1 else f"Your {photos} photos are"
    return f"{who} #{position} in the queue. I'll put the description here when it's ready."


def late_reply(body: str, mention: str) -> str:
    """An answer that can't go where it was asked for any more (posted in the channel instead):
    the caption first, then whom it is for."""
    return f"{body}\n(For {mention}: the description you asked for.)"
