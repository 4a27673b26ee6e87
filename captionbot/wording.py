"""How a caption is said to people: the one place both bots, the Discord alt text and the CLI use.

For people who can't see the photo a confidently wrong caption is worse than none, so the captioner
gives every caption a band and this module phrases it accordingly:

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
