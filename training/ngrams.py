"""n-gram counts of a tokenised caption, as BLEU and CIDEr-D count them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def order_counts(words: Sequence[str], n: int) -> list[Counter]:
    """Counts of the k-grams (as tuples) of `words`, one Counter per k = 1..n."""
    # zip of shifted copies stops at the shortest: exactly the len - k + 1 windows
    return [Counter(zip(*(words[i:] for i in range(k)), strict=False)) for k in range(1, n + 1)]


def ngram_counts(words: Sequence[str], n: int) -> Counter:
    """Counts of all 1..n-grams of `words` in one Counter (k-grams are k-tuples, so they cannot clash)."""
    counts: Counter = Counter()
    for order in order_counts(words, n):
        counts.update(order)
    return counts
