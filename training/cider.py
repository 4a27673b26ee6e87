"""CIDEr-D as pycocoevalcap's Cider computes it, with reference vectors built once for SCST rewards.

pycocoevalcap's `Cider` is CIDEr-D: clipped counts, a Gaussian length penalty, x10, log document
frequencies over the evaluated references.  `cider_d` / `cider_d_scores` take tokenised captions
joined by single spaces, as pycocoevalcap's scorers do; `CiderD` can tokenise for itself.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Generic, TypeVar

import numpy as np

from training.ngrams import order_counts
from training.ptb_tokenizer import ptb_tokenize, ptb_tokenize_lines

# An image's key (a name, a grid row): whatever the references are stored under.
K = TypeVar("K", bound=Hashable)
# A caption's tf-idf weight per n-gram (one dict per order), norm per order, and bigram count.
_Vector = tuple[list[dict[tuple, float]], list[float], int]


class CiderD(Generic[K]):
    """CIDEr-D with document frequencies precomputed once from a reference corpus.

    `CiderD(refs_corpus).score_keys(candidates, keys)` scores each candidate against the references
    stored under its key, which is what an SCST reward needs: the reference vectors are built once.
    Built from the very references being evaluated it gives pycocoevalcap's per-image CIDEr scores.

    Formula (pycocoevalcap's CiderScorer, which is CIDEr-D): n-gram vectors weighted by tf * (log N -
    log df), N = number of images (keys) and df = images whose references contain the n-gram; for each
    n, the candidate's weights are clipped by the reference's, the cosine is multiplied by
    exp(-delta^2 / (2 sigma^2)); the mean over n and over references, times 10.  Delta is the
    difference in bigram counts (pycocoevalcap's "length"), the same as in words for non-empty captions.

    With `tokenize` (the default) references and string candidates go through `ptb_tokenize`, as in
    `evaluate`; with tokenize=False they must be tokenised, space-separated strings.  A candidate can
    also be given as a list of tokens, used as is.
    """

    def __init__(
        self,
        refs_corpus: Mapping[K, Sequence[str]],
        *,
        n: int = 4,
        sigma: float = 6.0,
        tokenize: bool = True,
    ) -> None:
        if not refs_corpus:
            raise ValueError("CiderD needs at least one image's references")
        empty = [key for key, refs in refs_corpus.items() if not refs][:5]
        if empty:
            raise ValueError(f"no references for {empty}")
        self.n, self.sigma, self.tokenize = n, sigma, tokenize
        keys = list(refs_corpus)
        texts = [ref for key in keys for ref in refs_corpus[key]]
        if tokenize:
            texts = [" ".join(words) for words in ptb_tokenize_lines(texts)]
        split = [t.split() for t in texts]  # str.split, as pycocoevalcap (it also splits at U+00A0)
        counts_by_key: dict[K, list[list[Counter]]] = {}
        at = 0
        for key in keys:
            size = len(refs_corpus[key])
            counts_by_key[key] = [order_counts(words, n) for words in split[at : at + size]]
            at += size
        doc_freq: Counter = Counter()
        for ref_counts in counts_by_key.values():
            doc_freq.update({gram for counts in ref_counts for order in counts for gram in order})
        self._log_n = math.log(len(keys))
        # idf per n-gram seen in the corpus; an unseen one counts as df = 1, i.e. idf = log N
        self._idf = {gram: self._log_n - math.log(max(1.0, df)) for gram, df in doc_freq.items()}
        self._refs = {key: [self._vector(c) for c in ref_counts] for key, ref_counts in counts_by_key.items()}

    def _vector(self, counts: list[Counter]) -> _Vector:
        """-> (tf-idf weight per n-gram, one dict per order; norm per order; bigram count)."""
        idf, log_n = self._idf, self._log_n
        weights = [{gram: tf * idf.get(gram, log_n) for gram, tf in order.items()} for order in counts]
        norms = [math.sqrt(sum(w * w for w in order.values())) for order in weights]
        bigrams = sum(counts[1].values()) if self.n > 1 else 0  # pycocoevalcap's caption "length"
        return weights, norms, bigrams

    def _candidate_vector(self, candidate: str | Sequence[str]) -> _Vector:
        words: Sequence[str]
        if isinstance(candidate, str):
            words = (" ".join(ptb_tokenize(candidate)) if self.tokenize else candidate).split()
        else:
            words = candidate
        return self._vector(order_counts(words, self.n))

    def _score(self, vector: _Vector, refs: list[_Vector]) -> float:
        weights, norms, length = vector
        total = 0.0
        for ref_weights, ref_norms, ref_length in refs:
            penalty = math.exp(-((length - ref_length) ** 2) / (2 * self.sigma**2))
            for cand_k, ref_k, norm, ref_norm in zip(weights, ref_weights, norms, ref_norms, strict=True):
                sim = 0.0
                for gram, w in cand_k.items():
                    ref_w = ref_k.get(gram)
                    if ref_w is not None:
                        # clipping: no credit for repeating an n-gram more often than the reference
                        sim += (w if w < ref_w else ref_w) * ref_w
                if norm and ref_norm:
                    sim /= norm * ref_norm
                total += sim * penalty
        return 10.0 * total / self.n / len(refs)

    def score_keys(self, candidates: Sequence[str | Sequence[str]], keys: Sequence[K]) -> np.ndarray:
        """CIDEr-D of each candidate against the references stored under its key."""
        if len(candidates) != len(keys):
            raise ValueError(f"{len(candidates)} candidates but {len(keys)} keys")
        vectors: dict = {}  # sampled captions repeat; tokenise and weight each distinct one once
        out = np.empty(len(candidates), dtype=np.float64)
        for i, (cand, key) in enumerate(zip(candidates, keys, strict=True)):
            cache_key = cand if isinstance(cand, str) else tuple(cand)
            if cache_key not in vectors:
                vectors[cache_key] = self._candidate_vector(cand)
            out[i] = self._score(vectors[cache_key], self._refs[key])
        return out

    def score(self, candidates: Sequence[str | Sequence[str]], refs: Sequence[Sequence[str]]) -> np.ndarray:
        """CIDEr-D of each candidate against the given references (document frequencies still from
        the construction corpus)."""
        if len(candidates) != len(refs):
            raise ValueError(f"{len(candidates)} candidates but {len(refs)} reference lists")
        out = np.empty(len(candidates), dtype=np.float64)
        for i, (cand, ref_texts) in enumerate(zip(candidates, refs, strict=True)):
            ref_vectors = [self._candidate_vector(ref) for ref in ref_texts]
            out[i] = self._score(self._candidate_vector(cand), ref_vectors)
        return out


def cider_d_scores(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Per-image CIDEr-D with document frequencies from `references`, as pycocoevalcap's Cider."""
    scorer = CiderD(dict(enumerate(references)), tokenize=False)
    return scorer.score_keys(candidates, range(len(references)))


def cider_d(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus CIDEr-D: the mean of the per-image scores."""
    return float(np.mean(cider_d_scores(candidates, references)))
