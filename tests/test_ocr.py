"""Reading text in photos (captioner.ocr): real engine, text drawn with Pillow's own font."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

pytest.importorskip("rapidocr_onnxruntime", reason="the OCR engine is not installed: pip install -e '.[ocr]'")

from captioner.ocr import (  # noqa: E402
    ReadLine,
    TextReader,
    WordSpacer,
    photo_text,
    read_photo_text,
    reading_order,
)


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader(threads=1)


@pytest.fixture(scope="module")
def spacer() -> WordSpacer:
    return WordSpacer()


def photo_with(lines: list[tuple[str, tuple[int, int]]], size: tuple[int, int] = (640, 480)) -> Image.Image:
    img = Image.new("RGB", size, (90, 140, 70))
    draw = ImageDraw.Draw(img)
    draw.ellipse((380, 220, 600, 460), fill=(200, 120, 40))  # something that is not text
    font = ImageFont.load_default(size=40)
    for text, (x, y) in lines:
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        draw.rectangle((left - 10, top - 10, right + 10, bottom + 10), fill=(250, 250, 245))
        draw.text((x, y), text, font=font, fill=(20, 20, 20))
    return img


def test_rendered_text_is_read_back_in_reading_order(reader: TextReader) -> None:
    img = photo_with([("Fresh coffee", (40, 60)), ("Open 9 to 5", (40, 160))])
    lines = reader.read(img)
    assert [ln.text.lower() for ln in lines] == ["fresh coffee", "open 9 to 5"]
    assert photo_text(lines) is not None and photo_text(lines).lower() == "fresh coffee\nopen 9 to 5"  # type: ignore[union-attr]
    assert all(0.75 <= ln.score <= 1 for ln in lines)


def test_a_photo_without_text_gives_no_lines(reader: TextReader) -> None:
    img = photo_with([])
    assert reader.read(img) == []
    assert not reader.has_text(img)
    assert photo_text([]) is None


def test_the_detector_check_and_the_probe_decide_what_is_read(reader: TextReader) -> None:
    img = photo_with([("No parking", (60, 100))])
    assert reader.has_text(img)
    assert read_photo_text(reader, img, likely=False) == []  # the caption model's probe said no text
    assert [ln.text.lower() for ln in read_photo_text(reader, img, likely=None)] == ["no parking"]
    assert [ln.text.lower() for ln in read_photo_text(reader, img, likely=True)] == ["no parking"]


def test_a_huge_photo_is_read_at_a_bounded_size(reader: TextReader) -> None:
    img = photo_with([("EXIT", (100, 100))]).resize((3200, 2400))
    assert [ln.text for ln in reader.read(img)] == ["EXIT"]


def steps_with_gaps(text: str, wide_before: set[int], usual: float = 20.0) -> list[float]:
    return [0.0] + [usual * (1.6 if i in wide_before else 1.0) for i in range(1, len(text))]


def test_dropped_spaces_come_back_where_the_letters_stand_apart(spacer: WordSpacer) -> None:
    assert spacer.respace("SERVEDALLDAY", steps_with_gaps("SERVEDALLDAY", {6, 9})) == "SERVED ALL DAY"
    assert spacer.respace("pleasewaithere", steps_with_gaps("pleasewaithere", {6, 10})) == "please wait here"


def test_no_split_without_a_gap_or_for_words_and_names(spacer: WordSpacer) -> None:
    evenly = steps_with_gaps("SERVEDALLDAY", set())
    assert spacer.respace("SERVEDALLDAY", evenly) == "SERVEDALLDAY"  # letters evenly spaced: a name?
    assert spacer.respace("SERVEDALLDAY", None) == "SERVEDALLDAY"  # positions unknown
    assert spacer.respace("starbucks", steps_with_gaps("starbucks", {4})) == "starbucks"  # a known word
    assert spacer.respace("Ardnamurchan", steps_with_gaps("Ardnamurchan", {3, 6})) == "Ardnamurchan"


def test_a_word_next_to_a_number_gets_its_space(spacer: WordSpacer) -> None:
    assert spacer.respace("ROOM305", None) == "ROOM 305"
    assert spacer.respace("SALE50OFF", None) == "SALE 50 OFF"
    for keep in ("3PM", "4th", "MP3", "A4", "7.95"):
        assert spacer.respace(keep, None) == keep


def test_reading_order_rows_then_left_to_right_and_far_apart_signs_stay_apart() -> None:
    lines = [
        ReadLine("world", 0.9, (120, 10, 200, 40)),
        ReadLine("second row", 0.9, (10, 60, 200, 90)),
        ReadLine("hello", 0.9, (10, 12, 100, 42)),
        ReadLine("far sign", 0.9, (600, 15, 700, 45)),
    ]
    assert [ln.text for ln in reading_order(lines)] == ["hello world", "far sign", "second row"]


def test_the_recognisers_own_space_probability_puts_spaces_back(spacer: WordSpacer) -> None:
    probs = [0.0] * len("WHYAREYOU")
    probs[3], probs[6] = 0.4, 0.05  # between "WHY|ARE" and "ARE|YOU"
    assert spacer.respace("WHYAREYOU", None, probs) == "WHY ARE YOU"
    assert spacer.respace("WHYAREYOU", None, [0.0] * 9) == "WHYAREYOU"
    noisy = [0.0] * len("pharmacy")
    noisy[3] = 0.05
    assert spacer.respace("pharmacy", None, noisy) == "pharmacy"  # no space inside a word for pieces of it
    weak = [0.0] * len("SERVEDALLDAY")
    weak[6], weak[9] = 0.01, 0.01  # too weak alone, enough where the words split there
    assert spacer.respace("SERVEDALLDAY", None, weak) == "SERVED ALL DAY"


def test_punctuation_gets_its_space_and_lookalike_digits_become_letters(spacer: WordSpacer) -> None:
    assert spacer.respace("Reminder:bring your ticket", None) == "Reminder: bring your ticket"
    assert spacer.respace("Yes,I will", None) == "Yes, I will"
    for keep in ("12:30", "7,95", "http://example.com", "e.g."):
        assert spacer.respace(keep, None) == keep
    assert spacer.respace("R00M 305", None) == "ROOM 305"
    assert spacer.respace("OPEN 9 T0 5", None) == "OPEN 9 TO 5"
    assert spacer.respace("Ca11 555", None) == "Call 555"
    for keep in ("10am", "4B", "MP3", "HR37C", "1st"):
        assert spacer.respace(keep, None) == keep


def tilted(text: str, centre: tuple[float, float], length: float, thick: float, degrees: float) -> ReadLine:
    a = np.radians(degrees)
    u, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    c = np.array(centre)
    corners = [c - length / 2 * u - thick / 2 * n, c + length / 2 * u - thick / 2 * n]
    corners += [c + length / 2 * u + thick / 2 * n, c - length / 2 * u + thick / 2 * n]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    box = (min(xs), min(ys), max(xs), max(ys))
    return ReadLine(text, 0.9, box, tuple((float(x), float(y)) for x, y in corners))


def test_the_lines_of_a_tilted_sign_stay_lines_and_big_numbers_stay_apart() -> None:
    a = np.radians(-15)
    step = 42 * np.array([-np.sin(a), np.cos(a)])  # one line further across the slant
    sign = [
        tilted(text, tuple(np.array([300.0, 300.0]) + i * step), length, 30, -15)
        for i, (text, length) in enumerate([("Keep out", 160), ("best in town", 240), ("HAPPY BIRTHDAY", 300)])
    ]
    assert [ln.text for ln in reading_order(sign[::-1])] == ["Keep out", "best in town", "HAPPY BIRTHDAY"]
    jersey = ReadLine("42", 0.9, (286, 303, 368, 385))  # big, level, beside a small line
    small = ReadLine("Welcome home", 0.9, (351, 367, 484, 400))
    assert [ln.text for ln in reading_order([jersey, small])] == ["42", "Welcome home"]


def test_the_space_probability_is_taken_between_the_decoded_characters() -> None:
    from captioner.ocr_spaces import RecordSpaces

    class Decoder:  # rapidocr's layout: (text, score, [columns, words, word columns, states, confidences])
        character = ["blank", "a", "b", " "]

        def __call__(self, preds, return_word_box=False, **kwargs):
            return [("ab", 0.9, [preds.shape[1], [], [], [], [0.9, 0.9]])]

    preds = np.zeros((1, 6, 4))
    preds[0, :, 0] = 1.0
    preds[0, 1] = [0.0, 1.0, 0.0, 0.0]  # "a"
    preds[0, 3] = [0.6, 0.0, 0.0, 0.4]  # blank wins, but a space is likely here
    preds[0, 4] = [0.0, 0.0, 1.0, 0.0]  # "b"
    out = RecordSpaces(Decoder())(preds, True)
    assert out[0][2][4] == [0.9, 0.9] and out[0][2][4].space == [0.0, 0.4]


def test_the_plan_follows_the_probe_unless_every_photo_is_checked() -> None:
    from captioner.ocr import plan

    assert [plan(v, check_all=False) for v in (True, None, False)] == [True, None, False]
    assert [plan(v, check_all=True) for v in (True, None, False)] == [True, None, None]
