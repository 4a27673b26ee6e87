"""How the text read in a photo is said: after the caption, within each platform's limits, cut at
a word boundary with a note, and the whole of it on request in messages that fit."""

from __future__ import annotations

import pytest

from captionbot import texts

ANSWER = "Probably a sign on a wall."
LONG = "\n".join(f"Line {i}: the quick brown fox jumps over the lazy dog" for i in range(200))  # ~10,000 chars


def test_short_text_follows_the_caption_on_its_own_line() -> None:
    said, cut = texts.with_photo_text(ANSWER, "OPEN DAILY\n9 TO 5", limit=texts.TELEGRAM_MESSAGE_LIMIT)
    assert said == 'Probably a sign on a wall.\nText in the photo: "OPEN DAILY 9 TO 5"' and not cut


def test_no_text_leaves_the_answer_alone() -> None:
    for stored in (None, "", "  \n "):
        assert texts.with_photo_text(ANSWER, stored, limit=100) == (ANSWER, False)


@pytest.mark.parametrize(
    "limit", [texts.TELEGRAM_MESSAGE_LIMIT, texts.TELEGRAM_CAPTION_LIMIT, texts.DISCORD_ALT_TEXT_LIMIT, 200]
)
def test_long_text_is_cut_at_a_word_boundary_within_the_limit_and_says_so(limit: int) -> None:
    said, cut = texts.with_photo_text(ANSWER, LONG, limit=limit, more=texts.MORE_BY_BUTTON)
    assert cut and len(said) <= limit
    assert said.startswith(ANSWER + '\nText in the photo, cut short: "Line 0: the quick')
    assert said.endswith(texts.MORE_BY_BUTTON)
    quoted = said.split('"')[1]
    assert quoted.endswith(texts.ELLIPSIS)
    kept = quoted.removesuffix(texts.ELLIPSIS)
    assert texts.flatten(LONG).startswith(kept) and texts.flatten(LONG)[len(kept)] == " "  # a whole word


def test_a_single_endless_word_is_still_cut_to_fit() -> None:
    said, cut = texts.with_photo_text(ANSWER, "x" * 5000, limit=texts.DISCORD_ALT_TEXT_LIMIT)
    assert cut and len(said) <= texts.DISCORD_ALT_TEXT_LIMIT and "xxxx" in said


@pytest.mark.parametrize("limit", [texts.TELEGRAM_MESSAGE_LIMIT, texts.DISCORD_MESSAGE_LIMIT])
def test_all_text_comes_in_messages_that_fit_and_lose_nothing(limit: int) -> None:
    messages = texts.all_text(LONG, limit=limit)
    assert len(messages) > 1 and all(len(m) <= limit for m in messages)
    assert messages[0].startswith("Text in the photo:\nLine 0:")
    assert " ".join(" ".join(messages).split()).removeprefix("Text in the photo: ") == " ".join(LONG.split())
    assert all(m.split("\n")[-1].endswith("lazy dog") for m in messages)  # lines are not split when they fit


def test_all_text_splits_a_line_longer_than_a_message_between_words() -> None:
    line = " ".join(["word"] * 1000)
    messages = texts.all_text(line, limit=texts.DISCORD_MESSAGE_LIMIT)
    assert all(len(m) <= texts.DISCORD_MESSAGE_LIMIT for m in messages)
    assert all(w == "word" for m in messages for w in m.removeprefix("Text in the photo:").split())
    assert texts.all_text("", limit=100) == [texts.NO_TEXT]


def test_lines_join_into_one_and_hyphenated_words_join_again() -> None:
    assert texts.flatten("Please keep infor-\nmation private\n\nEXIT") == "Please keep information private EXIT"
    assert texts.flatten("9-\n5") == "9- 5"  # not a hyphenated word
