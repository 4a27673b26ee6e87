"""The label map: each of the 1,000 ImageNet classes -> the plain word a person would use.

`assets/imagenet_words.tsv` is a reviewed data file, one row per class in the classifier's order:
index, ImageNet name, word ("tabby" -> "cat"), synonyms that also name it ("kitten|kitty"), a coarse
group (cat, food, vehicle...; vocabulary expansion borrows weights within a group) and a status:
plain (may be said), obscure (a texture, a part or an expert's word: never claimed on the tagger's
say-so) or unsafe (weapons, people's roles or bodies, medical or gruesome things: never said plainly).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

DEFAULT_LABEL_MAP = Path(__file__).parent / "assets" / "imagenet_words.tsv"
STATUSES = ("plain", "obscure", "unsafe")
GROUPS = (
    "dog cat mammal bird fish reptile amphibian insect sea_animal food fruit vegetable drink vehicle boat "
    "aircraft furniture clothing instrument tool container kitchenware electronics building place nature "
    "plant toy sport_gear household other"
).split()
# Words said without an article ("It may show coffee."): mass nouns and plurals of the label map.
_NO_ARTICLE = {
    "coffee",
    "tea",
    "wine",
    "beer",
    "food",
    "pasta",
    "bread",
    "hay",
    "corn",
    "broccoli",
    "cauliflower",
    "ice cream",
    "meat",
    "soup",
    "fries",
    "toilet paper",
    "water",
    "snow",
    "grass",
    "pizza slices",
}


class LabelMapError(ValueError):
    pass


@dataclass(frozen=True)
class LabelEntry:
    index: int
    name: str  # ImageNet's own name: "tabby"
    word: str  # what a caption says: "cat"
    synonyms: tuple[str, ...]  # other words that name it: ("kitten", "kitty")
    group: str
    status: str

    @property
    def sayable(self) -> bool:
        return self.status == "plain"

    @property
    def names(self) -> tuple[str, ...]:
        """Every word that counts as naming this thing, the main word first."""
        return (self.word, *self.synonyms)


@dataclass(frozen=True)
class WordScore:
    word: str
    p: float  # summed probability of the sayable classes mapping to this word
    label: str  # the most probable of those classes' ImageNet names


class LabelMap:
    def __init__(self, entries: list[LabelEntry]) -> None:
        if [e.index for e in entries] != list(range(len(entries))):
            raise LabelMapError("label map rows must be the classes 0..N-1 in order")
        self.entries = entries

    @classmethod
    def load(cls, path: str | Path = DEFAULT_LABEL_MAP) -> LabelMap:
        path = Path(path)
        if not path.is_file():
            raise LabelMapError(f"no label map at {path}")
        entries = []
        with path.open(newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.DictReader(f, delimiter="\t"), start=2):
                try:
                    entry = LabelEntry(
                        index=int(row["index"]),
                        name=row["imagenet_name"].strip(),
                        word=row["word"].strip().lower(),
                        synonyms=tuple(s.strip().lower() for s in (row["synonyms"] or "").split("|") if s.strip()),
                        group=row["group"].strip(),
                        status=row["status"].strip(),
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise LabelMapError(f"{path}:{n}: malformed row ({exc})") from None
                if entry.status not in STATUSES or entry.group not in GROUPS or not entry.word:
                    raise LabelMapError(f"{path}:{n}: bad word, group or status")
                entries.append(entry)
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    @cached_property
    def words(self) -> list[str]:
        """The distinct sayable words, in first-appearance order."""
        return list(dict.fromkeys(e.word for e in self.entries if e.sayable))

    @cached_property
    def _pool(self) -> torch.Tensor:
        """(K, W) 0/1: sayable class k maps to word w."""
        col = {w: i for i, w in enumerate(self.words)}
        m = torch.zeros(len(self.entries), len(self.words))
        for e in self.entries:
            if e.sayable:
                m[e.index, col[e.word]] = 1.0
        return m

    @cached_property
    def names_of(self) -> dict[str, tuple[str, ...]]:
        """Sayable word -> every word that names it (the word, then its classes' synonyms)."""
        out: dict[str, list[str]] = {}
        for e in self.entries:
            if e.sayable:
                bucket = out.setdefault(e.word, [e.word])
                bucket.extend(s for s in e.synonyms if s not in bucket)
        return {w: tuple(v) for w, v in out.items()}

    def word_probs(self, probs: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, K) -> word probabilities (B, W): three cat breeds add up to "cat"."""
        return probs.float() @ self._pool.to(probs.device)

    def top_words(self, probs: torch.Tensor, k: int = 5) -> list[list[WordScore]]:
        """(B, K) -> per image the k most probable sayable words, best first."""
        wp = self.word_probs(probs)  # (B, W)
        masked = probs.float() * self._pool.sum(1).to(probs.device)  # sayable classes only
        out = []
        for b in range(probs.shape[0]):
            vals, idx = wp[b].topk(min(k, wp.shape[1]))
            row = []
            for p, w in zip(vals.tolist(), idx.tolist(), strict=True):
                cls_ids = self._pool[:, w].nonzero().flatten()
                best = cls_ids[masked[b, cls_ids].argmax()]
                row.append(WordScore(self.words[w], p, self.entries[int(best)].name))
            out.append(row)
        return out

    def top_labels(self, probs: torch.Tensor, k: int = 5) -> list[list[dict]]:
        """(B, K) -> per image the k most probable classes as {"label", "word", "p"} (any status)."""
        vals, idx = probs.float().topk(k, dim=1)
        return [
            [
                {"label": self.entries[i].name, "word": self.entries[i].word, "p": round(p, 4)}
                for p, i in zip(vs, ids, strict=True)
            ]
            for vs, ids in zip(vals.tolist(), idx.tolist(), strict=True)
        ]


def with_article(word: str) -> str:
    """ "cat" -> "a cat", "orange" -> "an orange", "coffee" -> "coffee"."""
    if word in _NO_ARTICLE:
        return word
    vowel_sound = word[0] in "aeiou" and not word.startswith(("uni", "use", "eu", "one"))
    return ("an " if vowel_sound or word.startswith("hour") else "a ") + word
