"""Reading text in photos: the worker's OCR step (never imported by the bot process).

The engine is rapidocr-onnxruntime (PP-OCRv4 detection + recognition as ONNX models inside the
wheel; nothing is downloaded), chosen in docs/benchmarks.md section 8. On top of it:

- **reading order**: lines grouped into rows (lines of about one size that overlap across their
  own slant, so that the lines of a tilted sign stay apart), rows top to bottom, lines in a row
  along it; one row per line of the result. The text-direction classifier is not used: it turned
  upright English upside down more often than it fixed anything (docs/benchmarks.md section 9);
- **spaces**: the Chinese + English recognition model often drops the space between English words
  ("SERVEDALLDAY") although its own output still gives the space some probability between the
  two words (CTC: the columns between two letters, where "blank" won). A space goes back where
  that probability reaches ``SPACE_PROB``, unless it would cut a dictionary word into non-words.
  Then a run of letters that is still not an English word is split into words (symspellpy's
  word segmentation over its bundled English frequency list) only where the space had some
  probability (``SPACE_HINT``) or the recognised characters stand further apart than the line's
  usual letter spacing, so names are left alone; a space goes after ",;:!?" between a letter
  and a letter or digit;
- **look-alikes**: a 0 or 1 among letters becomes O, l or I where that makes an English word of
  a token that is none ("R00M", "T0", "Ca11");
- **honesty**: lines the recogniser is unsure of, and lone characters, are left out.

``TextReader.read(image)`` gives the lines (an empty list when there is no text);
``TextReader.has_text(image)`` is the detector alone on a small copy, for models without the
caption model's own text probe (captioner.text_probe).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from captioner.ocr_spaces import RecordSpaces, WordSpacer, char_steps

log = logging.getLogger(__name__)

#: What to install when the engine is missing (the worker says so once and captions without it).
INSTALL_HINT = "pip install 'captionbot[ocr]'"
#: Photos are read at most this large (longer side, pixels): small text stays legible, time bounded.
READ_SIDE = 1600
#: The detector-only pre-check runs on a copy whose longer side is this (40-90 ms on one thread;
#: at 480 px it misses the small text of real street photos).
CHECK_SIDE = 640
#: The detector's settings for reading: rapidocr's defaults (box score 0.5, box grown 1.6x, input
#: short side 736 px) measured best of those tried (docs/benchmarks.md section 9).
BOX_THRESH = 0.5
UNCLIP_RATIO = 1.6
DET_SIDE: tuple[int, str] | None = None  # (det_limit_side_len, det_limit_type); None: the engine's own
#: The 0/180-degree classifier: off (it flipped upright words: "pull" read as "lind").
USE_CLS = False
#: Boxes in one row further apart than this many line heights are separate lines.
GAP_HEIGHTS = 2.5


class OcrUnavailableError(RuntimeError):
    """The OCR engine is not installed (or cannot start); the message says what to do."""


@dataclass(frozen=True)
class ReadLine:
    text: str
    score: float  # the recogniser's mean character probability, 0..1
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the photo's pixels
    #: The detector's four corners (top-left, top-right, bottom-right, bottom-left), when known:
    #: tilted text is put in rows along its own slant. None: the box, level.
    quad: tuple[tuple[float, float], ...] | None = None

    def frame(self) -> tuple[float, float, float]:
        """(slant in radians, thickness across the text, length along it)."""
        if self.quad is None or len(self.quad) != 4:
            return 0.0, self.box[3] - self.box[1], self.box[2] - self.box[0]
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = self.quad
        angle = float(np.arctan2((by - ay) + (cy - dy), (bx - ax) + (cx - dx)))
        thick = (np.hypot(dx - ax, dy - ay) + np.hypot(cx - bx, cy - by)) / 2
        length = (np.hypot(bx - ax, by - ay) + np.hypot(cx - dx, cy - dy)) / 2
        return angle, float(thick), float(length)


#: Lines whose slants differ by more than this (radians, about 10 degrees) are not one row.
SAME_SLANT = 0.18


def reading_order(lines: list[ReadLine]) -> list[ReadLine]:
    """Rows (lines of about one size overlapping across their slant by at least half the thinner
    one: for level text, vertical overlap of half the smaller height) top to bottom; in a row, lines along the slant,
    joined with a space unless the gap between them is wider than ``GAP_HEIGHTS`` line heights
    (two signs side by side stay two lines)."""

    def at(line: ReadLine, angle: float) -> tuple[float, float]:  # (along, across) in a frame slanted by angle
        x, y = (line.box[0] + line.box[2]) / 2, (line.box[1] + line.box[3]) / 2
        return x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)

    rows: list[list[ReadLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        slant, thick, _ = line.frame()
        for row in rows:
            row_slant = row[0].frame()[0]
            if abs(slant - row_slant) > SAME_SLANT or not 0.5 <= thick / max(1.0, row[0].frame()[1]) <= 2:
                continue  # another slant, or text of another size: another sign
            lo, hi = at(line, row_slant)[1] - thick / 2, at(line, row_slant)[1] + thick / 2
            spans = [(at(r, row_slant)[1], r.frame()[1]) for r in row]
            r0, r1 = min(c - t / 2 for c, t in spans), max(c + t / 2 for c, t in spans)
            if min(hi, r1) - max(lo, r0) >= 0.5 * min(thick, r1 - r0):
                row.append(line)
                break
        else:
            rows.append([line])
    out = []
    for row in rows:
        slant = row[0].frame()[0]
        ends = {id(ln): (at(ln, slant)[0] - ln.frame()[2] / 2, at(ln, slant)[0] + ln.frame()[2] / 2) for ln in row}
        row.sort(key=lambda ln: ends[id(ln)][0])
        group = [row[0]]
        for line in row[1:]:
            height = max(1.0, min(line.frame()[1], group[-1].frame()[1]))
            if ends[id(line)][0] - ends[id(group[-1])][1] > GAP_HEIGHTS * height:
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
    if len(group) == 1:
        return group[0]
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
        det = {"det_limit_side_len": DET_SIDE[0], "det_limit_type": DET_SIDE[1]} if DET_SIDE else {}
        self.engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, **det)
        rec = getattr(self.engine, "text_rec", None)
        if rec is not None and hasattr(getattr(rec, "postprocess_op", None), "character"):
            rec.postprocess_op = RecordSpaces(rec.postprocess_op)
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
        result, _ = self.engine(
            self._bgr(image),
            use_cls=USE_CLS,
            return_word_box=True,
            box_thresh=BOX_THRESH,
            unclip_ratio=UNCLIP_RATIO,
            text_score=0.5,
        )
        lines = []
        for item in result or []:
            quad, text, score = item[0], str(item[1]), float(item[2])
            if score < self.min_score or sum(ch.isalnum() for ch in text) < 2:
                continue
            if len(item) >= 5:
                space = getattr(item[5], "space", None) if len(item) >= 6 else None
                text = self.spacer.respace(text, char_steps(list(item[4]), list(item[3]), text), space)
            xy = np.asarray(quad, dtype=float).reshape(-1, 2)  # (4, 2) corners
            box = (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))
            corners = tuple((float(x), float(y)) for x, y in xy)
            lines.append(ReadLine(" ".join(text.split()), score, box, corners))
        return reading_order(lines)


def photo_text(lines: list[ReadLine]) -> str | None:
    """The lines as stored with a caption: one per line, None when there are none."""
    return "\n".join(ln.text for ln in lines) or None


def plan(verdict: bool | None, *, check_all: bool) -> bool | None:
    """What to do with a photo, from the text probe's verdict (True: read; None: the detector
    decides; False: nothing). ``check_all``: the detector also looks where the probe said no."""
    return None if verdict is False and check_all else verdict


def read_photo_text(reader: TextReader, image: Image.Image, *, likely: bool | None) -> list[ReadLine]:
    """The worker's whole reading step for one photo. ``likely``: the caption model's text probe
    (False: no text, nothing more to do; None: no probe for this model, the detector checks first)."""
    if likely is False:
        return []
    if likely is None and not reader.has_text(image):
        return []
    return reader.read(image)
