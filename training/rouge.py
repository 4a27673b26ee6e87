"""ROUGE-L as pycocoevalcap's Rouge computes it (mean of per-image LCS F-scores, beta 1.2).

Inputs are tokenised captions joined by single spaces, as pycocoevalcap's scorers take them (see
training/ptb_tokenizer.py), split at single spaces as there.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö 2004): one big-int step per a[i]."""
    masks: dict[Hashable, int] = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def rouge_l_scores(candidates: Sequence[str], references: Sequence[Sequence[str]], beta: float = 1.2) -> list[float]:
    """Per-image ROUGE-L as pycocoevalcap's Rouge: the best precision and the best recall over the
    references (taken separately), combined into an F-score weighting recall by beta."""
    scores = []
    for cand, refs in zip(candidates, references, strict=True):
        cand_words = cand.split(" ")  # split(" "), as there: an empty caption is one empty token
        precision = recall = 0.0
        for ref in refs:
            ref_words = ref.split(" ")
            lcs = lcs_length(ref_words, cand_words)
            precision = max(precision, lcs / len(cand_words))
            recall = max(recall, lcs / len(ref_words))
        if precision and recall:
            scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision))
        else:
            scores.append(0.0)
    return scores


def rouge_l(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus ROUGE-L: the mean of the per-image scores."""
    return float(np.mean(rouge_l_scores(candidates, references)))
