"""Putting back the spaces the recogniser drops between English words ("SERVEDALLDAY"), for
:mod:`captioner.ocr` (see its docstring for the rules and docs/benchmarks.md section 9 for what
each one is worth).

Two kinds of evidence: the recogniser's own probability of a space in the CTC columns between two
letters (:class:`RecordSpaces` notes it while rapidocr decodes a line), and the distance between
the recognised characters. symspellpy's word segmentation, over its bundled English frequency
list, proposes where a run of letters splits into words; a split is kept only with evidence.
"""

from __future__ import annotations

import re
import statistics
import string
from importlib import resources
from typing import Any

import numpy as np

#: A space goes back between two recognised characters where the recogniser gave it at least this
#: probability in some column between them (tuned on drawn text over Flickr8k dev photos).
SPACE_PROB = 0.03
#: Weaker evidence, enough where the word segmentation also wants a space there.
SPACE_HINT = 0.005


#: Dictionary words of one or two letters that may stand between the words of a split run.
SHORT_WORDS = frozenset("a i am an as at be by do go he if in is it me my no of on or so to up us we".split())
_RUNS = re.compile(r"[^\W\d_]+|\d+")  # runs of letters, runs of digits
_AFTER_PUNCT = re.compile(r"(?<=[^\W\d_])([,;:!?])(?=[^\W_])")  # a letter, the mark, a letter or digit
_LOOKALIKE = re.compile(r"[^\W\d_]+[01][^\W\d_01]*(?:[01]+[^\W\d_]*)*")  # letters first, then 0s/1s among letters


class WordSpacer:
    """Puts back the spaces the recogniser dropped between English words (see the module docstring)."""

    def __init__(
        self,
        *,
        min_gap_ratio: float = 1.25,
        min_length: int = 5,
        space_prob: float = SPACE_PROB,
        space_hint: float = SPACE_HINT,
    ) -> None:
        from symspellpy import SymSpell

        self.min_gap_ratio = min_gap_ratio
        self.min_length = min_length
        self.space_prob = space_prob
        self.space_hint = space_hint
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

    def lookalikes(self, token: str) -> str:
        """ "R00M" -> "ROOM", "T0" -> "TO", "Ca11" -> "Call": a 0 or 1 after a letter, where letters
        make an English word of it and the token is no word as it stands ("4B", "10am" stay)."""
        core = token.strip(string.punctuation)
        if not _LOOKALIKE.fullmatch(core) or self.is_word(core):
            return token
        upper = core.upper() == core
        for one in ("l", "i"):
            word = core.replace("0", "o").replace("1", one)
            if self.is_word(word) and (len(word) > 2 or word.lower() in SHORT_WORDS):
                fixed = "".join(w.upper() if upper or c.isupper() else w for c, w in zip(core, word, strict=True))
                return token.replace(core, fixed, 1)
        return token

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

    def respace(self, text: str, steps: list[float] | None, space_probs: list[float] | None = None) -> str:
        """``steps[i]``: distance from character i-1 to character i along the line; ``space_probs[i]``:
        the recogniser's probability of a space between character i-1 and character i (None:
        unknown; with neither, no word is split)."""
        if space_probs is not None and len(space_probs) == len(text):
            text, steps, space_probs = self._spaced(text, steps, space_probs)
        else:
            space_probs = None
        if steps is not None and len(steps) != len(text):
            steps = None
        usual = None
        if steps is not None:
            letters = [s for i, s in enumerate(steps) if i and text[i] != " " and text[i - 1] != " "]
            usual = statistics.median(letters) if len(letters) >= 4 else None

        def apart(i: int) -> bool:  # evidence of a space before character i
            wide = usual is not None and steps is not None and steps[i] >= self.min_gap_ratio * usual
            return wide or (space_probs is not None and space_probs[i] >= self.space_hint)

        out = []
        for start, token in tokens(text):
            cuts = self.token_cuts(token)
            believed = all(apart(start + c) for c, needs_gap in cuts if needs_gap)
            keep = sorted(c for c, needs_gap in cuts if not needs_gap or believed)
            bounds = [0, *keep, len(token)]
            out.append(" ".join(token[a:b] for a, b in zip(bounds, bounds[1:], strict=False)))
        text = _AFTER_PUNCT.sub(r"\1 ", " ".join(out))  # "Reminder:bring", "password,try"
        return " ".join(self.lookalikes(t) for t in text.split())

    def _spaced(
        self, text: str, steps: list[float] | None, probs: list[float]
    ) -> tuple[str, list[float] | None, list[float]]:
        """The spaces the recogniser was sure enough of put in (steps and probabilities kept aligned:
        an added space takes the step and the probability 1)."""
        aligned = steps is not None and len(steps) == len(text)
        chars: list[str] = []
        new_steps: list[float] = []
        new_probs: list[float] = []
        added: list[int] = []
        for i, ch in enumerate(text):
            step = steps[i] if steps is not None and aligned else 0.0
            if i and probs[i] >= self.space_prob and ch != " " and text[i - 1] != " ":
                added.append(len(chars))
                chars.append(" ")
                new_steps.append(step)
                new_probs.append(1.0)
            chars.append(ch)
            new_steps.append(step)
            new_probs.append(probs[i])
        # An added space that cuts a dictionary word into pieces that are not both words goes again
        # ("pha rmacy": the model's space probability has a little noise inside words).
        for at in reversed(added):
            left = re.search(r"[^\W\d_]+$", "".join(chars[:at]))
            right = re.match(r"[^\W\d_]+", "".join(chars[at + 1 :]))
            if left and right and self.is_word(left.group() + right.group()):
                if not (self.is_word(left.group()) and self.is_word(right.group())):
                    del chars[at], new_steps[at], new_probs[at]
        return "".join(chars), new_steps if aligned else None, new_probs


class SpaceProbs(list):
    """The recogniser's per-character confidences, carrying ``space``: per character, the probability
    of a space between it and the previous one (see ``RecordSpaces``)."""

    space: list[float]


class RecordSpaces:
    """Wraps rapidocr's CTC decoder: besides the text, notes for each decoded character the highest
    probability of a space in the columns between it and the previous character (where "blank"
    won). It rides along in the per-character confidence list, the result's last element."""

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.space = decoder.character.index(" ") if " " in decoder.character else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.decoder, name)

    def __call__(self, preds: np.ndarray, return_word_box: bool = False, **kwargs: Any) -> Any:
        out = self.decoder(preds, return_word_box, **kwargs)
        if self.space is None or not return_word_box:
            return out
        best = preds.argmax(axis=2)  # (B, T) CTC columns; 0 = blank
        for b, item in enumerate(out):
            row = best[b]
            cols = np.flatnonzero((row != 0) & np.r_[True, row[1:] != row[:-1]])  # as the decoder reads them
            try:
                probs = SpaceProbs(item[2][4])
                probs.space = [0.0] + [
                    float(preds[b, a + 1 : z, self.space].max(initial=0.0))
                    for a, z in zip(cols, cols[1:], strict=False)
                ]
                item[2][4] = probs
            except (IndexError, TypeError):  # another engine version's layout: read without it
                return out
        return out


def tokens(text: str) -> list[tuple[int, str]]:
    """(start, token) for each run of non-spaces."""
    return [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]


def char_steps(chars: list[str], quads: list[Any], text: str) -> list[float] | None:
    """Per character of ``text``: the distance from the previous character's centre (0 for the first)."""
    if len(chars) != len(quads) or "".join(chars) != text or any(len(c) != 1 for c in chars):
        return None
    centres = np.array([np.asarray(q, dtype=float).reshape(-1, 2).mean(axis=0) for q in quads])  # (N, 2)
    if len(centres) < 2:
        return [0.0] * len(centres)
    return [0.0, *np.linalg.norm(np.diff(centres, axis=0), axis=1).tolist()]
