"""What an answer says about the text read in a photo (signs, screenshots, menus, memes).

The caption comes first (what a screen reader reads out first), then, on a line of its own,
``Text in the photo: "..."`` with the lines as read joined into one. Where a platform limits the
length (a Telegram message: 4,096 characters; Discord: 2,000 per message and 1,024 for an image's
alt text), the text is cut at a word boundary, the line says it was cut short, and the whole text
is one button press away (:func:`all_text` splits it into messages that fit).
"""

from __future__ import annotations

TEXT_LABEL = "Text in the photo"
BUTTON_ALL_TEXT = "All text"
EMOJI_ALL_TEXT = "\N{PAGE FACING UP}"
#: Said after a cut text line where a button gives the rest.
MORE_BY_BUTTON = f'Press "{BUTTON_ALL_TEXT}" for the rest.'
NO_TEXT = "I found no text in that photo."
ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"

TELEGRAM_MESSAGE_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024
DISCORD_MESSAGE_LIMIT = 2000
DISCORD_ALT_TEXT_LIMIT = 1024


def flatten(stored: str) -> str:
    """The stored lines as one line: joined with spaces, and a word hyphenated across a line
    break joined again ("infor-" + "mation" -> "information")."""
    out = ""
    for line in (" ".join(raw.split()) for raw in stored.splitlines()):
        if not line:
            continue
        if out.endswith("-") and len(out) > 1 and out[-2].isalpha() and line[0].islower():
            out = out[:-1] + line
        else:
            out = f"{out} {line}" if out else line
    return out


def cut_at_word(text: str, room: int) -> str:
    """At most ``room`` characters of ``text``, ending at a word boundary where there is one, with
    an ellipsis when anything was left out."""
    if len(text) <= room:
        return text
    if room <= len(ELLIPSIS):
        return ELLIPSIS[:room]
    head = text[: room - len(ELLIPSIS) + 1]
    space = head.rfind(" ")
    head = head[:space] if space > 0 else head[:-1]
    return head.rstrip(" ,;:-") + ELLIPSIS


def text_line(stored: str, *, room: int, more: str = "") -> tuple[str, bool]:
    """``Text in the photo: "..."`` in at most ``room`` characters; (line, whether it was cut).
    A cut line says so, followed by ``more`` (how to get the rest, if anything gives it)."""
    flat = flatten(stored)
    whole = f'{TEXT_LABEL}: "{flat}"'
    if len(whole) <= room:
        return whole, False
    tail = f" {more}" if more else ""
    frame = f'{TEXT_LABEL}, cut short: ""{tail}'
    return f'{TEXT_LABEL}, cut short: "{cut_at_word(flat, max(1, room - len(frame)))}"{tail}', True


def with_photo_text(answer: str, stored: str | None, *, limit: int, more: str = "") -> tuple[str, bool]:
    """The answer, then the text line on a line of its own, together within ``limit`` characters;
    (message, whether the text was cut). No text: the answer alone."""
    if not stored or not flatten(stored):
        return answer, False
    line, cut = text_line(stored, room=limit - len(answer) - 1, more=more)
    return f"{answer}\n{line}", cut


def all_text(stored: str, *, limit: int) -> list[str]:
    """The whole text on request: a heading, then the lines as read, in as few messages of at most
    ``limit`` characters as it takes (split between lines, else between words)."""
    lines = [" ".join(raw.split()) for raw in stored.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return [NO_TEXT]
    messages: list[str] = []
    current = f"{TEXT_LABEL}:"
    for line in lines:
        while line:
            room = limit - len(current) - 1 if current else limit
            if len(line) <= room:
                current, line = f"{current}\n{line}" if current else line, ""
                continue
            if current and len(line) <= limit:  # the line fits a message of its own: start one
                messages.append(current)
                current = ""
                continue
            if room >= 20 or not current:  # a line longer than a message: split it between words
                space = line[: room + 1].rfind(" ")
                cut = space if space > 0 else room
                head, line = line[:cut].rstrip(), line[cut:].lstrip()
                current = f"{current}\n{head}" if current else head
            messages.append(current)
            current = ""
    if current:
        messages.append(current)
    return messages
