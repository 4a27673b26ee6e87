"""Caption tokenisation and the word vocabulary.

Tokens follow the Flickr8k/COCO convention (PTB-like): lower case, hyphenated words stay whole,
clitics such as "'s" are tokens of their own, punctuation is dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*|'[a-z]+")


def tokenize(text: str) -> list[str]:
    """'A dog's ball, red.' -> ['a', 'dog', "'s", 'ball', 'red']"""
    return _TOKEN_RE.findall(text.lower())


def detokenize(tokens: Iterable[str]) -> str:
    """Tokens -> a sentence for people: capitalised, clitics re-attached, "a" -> "an" before a vowel
    (a forced or borrowed word can land after the article its donor took: "a elephant"), a full stop."""
    words = list(tokens)
    for i in range(len(words) - 1):
        if words[i] in ("a", "an"):
            words[i] = "an" if _vowel_sound(words[i + 1]) else "a"
    text = " ".join(words).replace(" '", "'")
    if not text:
        return ""
    return text[0].upper() + text[1:] + "."


def _vowel_sound(word: str) -> bool:
    return word[:1] in tuple("aeiou") and not word.startswith(("uni", "use", "eu", "one"))


@dataclass
class Vocabulary:
    words: list[str] = field(default_factory=lambda: list(SPECIALS))

    def __post_init__(self) -> None:
        if tuple(self.words[:4]) != SPECIALS:
            raise ValueError("a vocabulary must start with <pad>, <start>, <end>, <unk>")
        self._index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 5) -> Vocabulary:
        counts = Counter(tok for caption in captions for tok in tokenize(caption))
        # Sorted by frequency, then alphabetically, so the same data always gives the same ids.
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + kept)

    def __len__(self) -> int:
        return len(self.words)

    def id_of(self, word: str) -> int | None:
        return self._index.get(word)

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        """Text -> [<start>, w1, ..., wn, <end>] with at most max_len words."""
        ids = [self._index.get(t, UNK_ID) for t in tokenize(text)]
        if max_len is not None:
            ids = ids[:max_len]
        return [START_ID, *ids, END_ID]

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """Ids -> words, stopping at <end> and skipping <start>/<pad>."""
        out = []
        for i in ids:
            i = int(i)
            if i == END_ID:
                break
            if i in (PAD_ID, START_ID):
                continue
            out.append(self.words[i])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.decode_tokens(ids))
