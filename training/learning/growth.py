"""Vocabulary growth: a word that enough different people use in corrections joins the vocabulary.

The new word's embedding and output rows start as copies of a related known word, its donor (the
same mechanism as :func:`captioner.vocab_expansion.expand_vocabulary`), with the output bias lowered
so the model keeps saying the donor until training teaches it where the new word fits. The donor is
the known word that people's corrections replaced with the new one, found by aligning each
correction with the model's caption ("a dog on a sofa" -> "a cat on a sofa": cat <- dog); a word
never aligned with a known one starts from ``<unk>``, the row of all rare words.

Words appended keep every old id, so earlier checkpoints and stored captions stay valid. A word the
tagger vocabulary borrowed (said only when the tagger names it) is freed instead: it is in the
vocabulary already, and people using it is the evidence it was waiting for.
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from dataclasses import dataclass

import torch

from captioner.model import Captioner
from captioner.vocab import SPECIALS, UNK, Vocabulary
from captioner.vocab_expansion import expand_vocabulary
from training.learning.hygiene import FUNCTION_WORDS, Screened

NEW_WORD_BIAS = -2.0  # new rows start ~7x less likely than their donor


@dataclass(frozen=True)
class NewWord:
    word: str
    donor: str
    people: int


def candidate_words(
    screened: Screened,
    vocab: Vocabulary,
    *,
    restricted: set[str],
    min_people: int,
    blocklist: frozenset[str] = frozenset(),
) -> list[NewWord]:
    """Words not (freely) in the vocabulary that at least ``min_people`` voices used in corrections."""
    voices: dict[str, set[object]] = defaultdict(set)
    donors: dict[str, Counter[str]] = defaultdict(Counter)
    for t in screened.texts:
        if t.kind != "correction":
            continue
        for word in set(t.tokens):
            if _is_new(word, vocab, restricted) and word.replace("-", "").isalpha() and 2 <= len(word) <= 20:
                voices[word].add(screened.voice(t))
        for new, old in aligned_pairs(t.caption_tokens, t.tokens):
            if (
                _is_new(new, vocab, restricted)
                and vocab.id_of(old) is not None
                and old not in restricted | FUNCTION_WORDS
            ):
                donors[new][old] += 1
    words = [
        NewWord(w, _donor(donors[w]), len(v)) for w, v in voices.items() if len(v) >= min_people and w not in blocklist
    ]
    return sorted(words, key=lambda n: (-n.people, n.word))


def _donor(aligned: Counter[str]) -> str:
    """The word most often replaced by the new one, when that happened at least twice; else <unk>
    (one alignment is as likely a misaligned caption as a synonym)."""
    if aligned:
        word, n = aligned.most_common(1)[0]
        if n >= 2:
            return word
    return UNK


def _is_new(word: str, vocab: Vocabulary, restricted: set[str]) -> bool:
    return vocab.id_of(word) is None or word in restricted


def aligned_pairs(caption: tuple[str, ...], correction: tuple[str, ...]) -> list[tuple[str, str]]:
    """(new word, the caption word it replaced) for each word a correction put in place of caption
    words: one for one where the replaced spans are equally long, else each new word against the
    replaced span's last content word ("riding a motorcycle" -> "on a bike": bike <- motorcycle)."""
    pairs: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=caption, b=correction, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "replace":
            continue
        if i2 - i1 == j2 - j1:
            pairs.extend((correction[j], caption[i]) for i, j in zip(range(i1, i2), range(j1, j2), strict=True))
            continue
        replaced = [w for w in caption[i1:i2] if w not in FUNCTION_WORDS and w not in correction]
        if replaced:
            pairs.extend((correction[j], replaced[-1]) for j in range(j1, j2) if correction[j] not in FUNCTION_WORDS)
    return pairs


def grow(
    model: Captioner, vocab: Vocabulary, words: list[NewWord], restricted: set[str]
) -> tuple[Vocabulary, list[str]]:
    """Add or free ``words`` in place -> (new vocabulary, words added). Freed words stay where they are."""
    fresh = {n.word: n.donor for n in words if vocab.id_of(n.word) is None and n.word not in SPECIALS}
    if not fresh:
        return vocab, []
    old_size = len(vocab)
    vocab, added = expand_vocabulary(model, vocab, fresh)
    with torch.no_grad():
        model.decoder.out.bias[old_size:] += NEW_WORD_BIAS
    return vocab, list(added)
