"""Reading text in photos: the worker's OCR step (never imported by the bot process).

The engine is rapidocr-onnxruntime (PP-OCRv4 detection + recognition as ONNX models inside the
wheel; nothing is downloaded), chosen in docs/benchmarks.md section 8. On top of it:

- **reading order**: boxes grouped into rows by vertical overlap, rows top to bottom, boxes in a
  row left to right; one row per line of the result;
- **spaces**: the Chinese + English recognition model often drops the space between English words
  ("SERVEDALLDAY"). A run of letters that is not an English word is split into words
  (symspellpy's word segmentation over its bundled English frequency list) only where the
  recognised characters also stand further apart than the line's usual letter spacing, so names
  are left alone;
- **honesty**: lines the recogniser is unsure of, and lone characters, are left out.

``TextReader.read(image)`` gives the lines (an empty list when there is no text);
``TextReader.has_text(image)`` is the detector alone on a small copy, for models without the
caption model's own text probe (captioner.text_probe).
"""

from __future__ import annotations

import logging
import re
import statistics
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

#: What to install when the engine is missing (the worker says so once and captions without it).
INSTALL_HINT = "pip install 'captionbot[ocr]'"
#: Photos are read at most this large (longer side, pixels): small text stays legible, time bounded.
READ_SIDE = 1600
#: The detector-only pre-check runs on a copy whose longer side is this (93 ms on one thread).
CHECK_SIDE = 640
#: Boxes in one row further apart than this many line heights are separate lines.
GAP_HEIGHTS = 2.5


#: Dictionary words of one or two letters that may stand between the words of a split run.
SHORT_WORDS = frozenset("a i am an as at be by do go he if in is it me my no of on or so to up us we".split())
_RUNS = re.compile(r"[^\W\d_]+|\d+")  # runs of letters, runs of digits


class OcrUnavailableError(RuntimeError):
    """The OCR engine is not installed (or cannot start); the message says what to do."""


@dataclass(frozen=True)
class ReadLine:
    text: str
    score: float  # the recogniser's mean character probability, 0..1
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the photo's pixels


class WordSpacer:
    """Puts back the spaces the recogniser dropped between English words (see the module docstring)."""

    def __init__(self, *, min_gap_ratio: float = 1.25, min_length: int = 6) -> None:
        from symspellpy import SymSpell

        self.min_gap_ratio = min_gap_ratio
        self.min_length = min_length
        self.sym = SymSpell(max_dictionary_edit_distance=0, prefix_length=7)
        words = resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
        with resources.as_file(words) as path:
            self.sym.load_dictionary(str(path), term_index=0, count_index=1)

    def is_word(self, word: str) -> bool:
        return word.lower() in self.sym.words

    def split_points(self, token: str) -> list[int]:
        """Where a run of letters splits into dictionary words ([] = leave it as it is)."""
        if len(token) < self.min_length or not token.isalpha() or self.is_word(token):
            return []
        pieces = self.sym.word_segmentation(token.lower(), max_edit_distance=0).corrected_string.split()
        if len(pieces) < 2 or len(pieces) > len(token) // 3 + 1 or "".join(pieces) != token.lower():
            return []
        if not all(self.is_word(p) and (len(p) > 2 or p in SHORT_WORDS) for p in pieces):
            return []
        points, at = [], 0
        for piece in pieces[:-1]:
            at += len(piece)
            points.append(at)
        return points

    def token_cuts(self, token: str) -> list[tuple[int, bool]]:
        """Candidate cuts in one token: (position, needs a wide gap to be believed)."""
        runs = [m.span() for m in _RUNS.finditer(token)]
        cuts: list[tuple[int, bool]] = []
        for (a0, a1), (b0, b1) in zip(runs, runs[1:], strict=False):
            left, right = token[a0:a1], token[b0:b1]
            # "ROOM305", "SALE50OFF": a word next to a number (but "3PM", "4th", "MP3" stay).
            if a1 == b0 and (
                (left.isalpha() and right.isdigit() and len(left) >= 3 and self.is_word(left))
                or (left.isdigit() and right.isalpha() and len(right) >= 3 and self.is_word(right))
            ):
                cuts.append((a1, False))
        for a0, a1 in runs:
            cuts.extend((a0 + c, True) for c in self.split_points(token[a0:a1]))
        return sorted(cuts)

    def respace(self, text: str, steps: list[float] | None) -> str:
        """``steps[i]``: distance from character i-1 to character i along the line (None: unknown,
        then no word is split)."""
        usual = None
        if steps is not None and len(steps) == len(text):
            letters = [s for i, s in enumerate(steps) if i and text[i] != " " and text[i - 1] != " "]
            usual = statistics.median(letters) if len(letters) >= 4 else None
        out = []
        for start, token in _tokens(text):
            cuts = self.token_cuts(token)
            wide = [c for c, needs_gap in cuts if needs_gap]
            believed = usual is not None and all(
                steps is not None and steps[start + c] >= self.min_gap_ratio * usual for c in wide
            )
            keep = sorted(c for c, needs_gap in cuts if not needs_gap or believed)
            bounds = [0, *keep, len(token)]
            out.append(" ".join(token[a:b] for a, b in zip(bounds, bounds[1:], strict=False)))
        return " ".join(out)


def _tokens(text: str) -> list[tuple[int, str]]:
    """(start, token) for each run of non-spaces."""
    return [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]


def _char_steps(chars: list[str], quads: list[Any], text: str) -> list[float] | None:
    """Per character of ``text``: the distance from the previous character's centre (0 for the first)."""
    if len(chars) != len(quads) or "".join(chars) != text or any(len(c) != 1 for c in chars):
        return None
    centres = np.array([np.asarray(q, dtype=float).reshape(-1, 2).mean(axis=0) for q in quads])  # (N, 2)
    if len(centres) < 2:
        return [0.0] * len(centres)
    return [0.0, *np.linalg.norm(np.diff(centres, axis=0), axis=1).tolist()]


def reading_order(lines: list[ReadLine]) -> list[ReadLine]:
    """Rows (boxes overlapping vertically by at least half the smaller height) top to bottom; in a
    row, boxes left to right, joined with a space unless the gap between them is wider than
    ``GAP_HEIGHTS`` line heights (two signs side by side stay two lines)."""
    rows: list[list[ReadLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        y0, y1 = line.box[1], line.box[3]
        for row in rows:
            r0, r1 = min(ln.box[1] for ln in row), max(ln.box[3] for ln in row)
            if min(y1, r1) - max(y0, r0) >= 0.5 * min(y1 - y0, r1 - r0):
                row.append(line)
                break
        else:
            rows.append([line])
    out = []
    for row in rows:
        row.sort(key=lambda ln: ln.box[0])
        group = [row[0]]
        for line in row[1:]:
            height = max(1.0, min(line.box[3] - line.box[1], group[-1].box[3] - group[-1].box[1]))
            if line.box[0] - group[-1].box[2] > GAP_HEIGHTS * height:
                out.append(_joined(group))
                group = []
            group.append(line)
        out.append(_joined(group))
    return out


def _joined(group: list[ReadLine]) -> ReadLine:
    box = (
        min(ln.box[0] for ln in group),
        min(ln.box[1] for ln in group),
        max(ln.box[2] for ln in group),
        max(ln.box[3] for ln in group),
    )
    return ReadLine(" ".join(ln.text for ln in group), sum(ln.score for ln in group) / len(group), box)


class TextReader:
    """One OCR engine, loaded once per worker process; ``read`` is thread-safe enough for one
    caller at a time (the worker reads in a thread)."""

    def __init__(self, *, threads: int = 1, min_score: float = 0.75) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:  # the engine, or OpenCV's system libraries, missing
            raise OcrUnavailableError(f"reading text in photos needs the OCR engine: {INSTALL_HINT}") from exc
        threads = max(1, threads)
        self.min_score = min_score
        self.engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
        self.checker = RapidOCR(
            intra_op_num_threads=threads, inter_op_num_threads=1, det_limit_side_len=CHECK_SIDE, det_limit_type="max"
        )
        self.spacer = WordSpacer()

    @staticmethod
    def _bgr(image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB"))[:, :, ::-1].copy()  # (H, W, 3) BGR, as OpenCV reads files

    def has_text(self, image: Image.Image) -> bool:
        """The detector alone on a copy at most CHECK_SIDE px long: does any text box turn up?"""
        small = image.copy()
        small.thumbnail((CHECK_SIDE, CHECK_SIDE))
        boxes, _ = self.checker(self._bgr(small), use_det=True, use_cls=False, use_rec=False)
        return boxes is not None and len(boxes) > 0

    def read(self, image: Image.Image) -> list[ReadLine]:
        """The photo's text lines in reading order ([] when there is none the engine is sure of)."""
        if max(image.size) > READ_SIDE:
            image = image.copy()
            image.thumbnail((READ_SIDE, READ_SIDE))
        result, _ = self.engine(self._bgr(image), return_word_box=True)
        lines = []
        for item in result or []:
            quad, text, score = item[0], str(item[1]).strip(), float(item[2])
            if score < self.min_score or sum(ch.isalnum() for ch in text) < 2:
                continue
            if len(item) >= 5:
                text = self.spacer.respace(text, _char_steps(list(item[4]), list(item[3]), text))
            xy = np.asarray(quad, dtype=float).reshape(-1, 2)  # (4, 2) corners
            box = (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))
            lines.append(ReadLine(" ".join(text.split()), score, box))
        return reading_order(lines)


def photo_text(lines: list[ReadLine]) -> str | None:
    """The lines as stored with a caption: one per line, None when there are none."""
    return "\n".join(ln.text for ln in lines) or None


def read_photo_text(reader: TextReader, image: Image.Image, *, likely: bool | None) -> list[ReadLine]:
    """The worker's whole reading step for one photo. ``likely``: the caption model's text probe
    (False: no text, nothing more to do; None: no probe for this model, the detector checks first)."""
    if likely is False:
        return []
    if likely is None and not reader.has_text(image):
        return []
    return reader.read(image)
