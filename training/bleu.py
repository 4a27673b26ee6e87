"""Corpus BLEU-1..4 as pycocoevalcap's Bleu computes it, in plain Python.

Inputs are tokenised captions joined by single spaces, as pycocoevalcap's scorers take them (see
training/ptb_tokenizer.py), split at whitespace as there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from training.ngrams import ngram_counts

_BLEU_TINY = 1e-15  # pycocoevalcap's constants: a zero count gives a near-zero score, not a 0/0
_BLEU_SMALL = 1e-9


def bleu(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4) -> list[float]:
    """Corpus BLEU-1..n, as pycocoevalcap's Bleu: clipped n-gram counts and lengths summed over the
    corpus, the reference length per image being the one closest to the candidate's (ties: shorter)."""
    guess, correct = [0] * n, [0] * n
    cand_total = ref_total = 0
    for cand, refs in zip(candidates, references, strict=True):
        words = cand.split()
        max_ref: dict[tuple, int] = {}
        ref_lens = []
        for ref in refs:
            ref_words = ref.split()
            ref_lens.append(len(ref_words))
            for gram, count in ngram_counts(ref_words, n).items():
                max_ref[gram] = max(max_ref.get(gram, 0), count)
        cand_total += len(words)
        ref_total += min(ref_lens, key=lambda length: (abs(length - len(words)), length))
        for k in range(n):
            guess[k] += max(0, len(words) - k)
        for gram, count in ngram_counts(words, n).items():
            correct[len(gram) - 1] += min(count, max_ref.get(gram, 0))
    scores, product = [], 1.0
    for k in range(n):
        product *= (correct[k] + _BLEU_TINY) / (guess[k] + _BLEU_SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (cand_total + _BLEU_TINY) / (ref_total + _BLEU_SMALL)
    if ratio < 1:  # brevity penalty
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores
