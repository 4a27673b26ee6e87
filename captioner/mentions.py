"""Which label-map words a caption names (captioner.labelmap), singular or plural, for the confidence
features (captioner.confidence): W = the label map's sayable words."""

from __future__ import annotations

import torch


def _word_forms(word: str) -> set[str]:
    """A label-map word and its plurals: "dog" -> {"dog", "dogs"}, "puppy" -> {"puppy", "puppies"}."""
    forms = {word, word + "s"}
    if word.endswith(("s", "x", "ch", "sh")):
        forms.add(word + "es")
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    if word.endswith("f"):
        forms.add(word[:-1] + "ves")
    return forms


class MentionIndex:
    """Which label-map words a caption (vocabulary ids) names: any of names_of[word], singular or plural,
    one to three tokens long."""

    def __init__(self, words: list[str], labelmap) -> None:
        ids = {w: i for i, w in enumerate(words)}
        col = {w: j for j, w in enumerate(labelmap.words)}
        self.size = len(labelmap.words)
        self.grams: dict[tuple[int, ...], list[int]] = {}
        for word, names in labelmap.names_of.items():
            for name in names:
                parts = name.split()
                if not parts:
                    continue
                for last in _word_forms(parts[-1]):
                    gram = (*parts[:-1], last)
                    if all(p in ids for p in gram):  # every word in the vocabulary
                        self.grams.setdefault(tuple(ids[p] for p in gram), []).append(col[word])
        self.longest = max((len(k) for k in self.grams), default=1)

    def mask(self, seqs: list[list[int]]) -> torch.Tensor:
        """N word-id lists -> (N, W) 1.0 where the caption names the word."""
        out = torch.zeros(len(seqs), self.size)
        for i, s in enumerate(seqs):
            for n in range(1, self.longest + 1):
                for a in range(len(s) - n + 1):
                    for j in self.grams.get(tuple(s[a : a + n]), ()):
                        out[i, j] = 1.0
        return out


_MENTION_CACHE: dict[tuple[int, int], tuple[object, object, MentionIndex]] = {}


def mention_index(vocab, labelmap) -> MentionIndex:
    """The (cached) MentionIndex of a vocabulary and a label map."""
    key = (id(vocab), id(labelmap))
    hit = _MENTION_CACHE.get(key)
    if hit is None or hit[0] is not vocab or hit[1] is not labelmap:
        hit = (vocab, labelmap, MentionIndex(list(vocab.words), labelmap))
        _MENTION_CACHE[key] = hit
    return hit[2]
