"""Tagger-guided captions: when the image tagger is sure what the main thing is, the caption says it.

The caption comes from ordinary beam search first. For an image whose tagger is confident about a
sayable word ("cat", p >= force_above) that the caption does not already name, constrained beam
search (captioner.constrained) writes a caption that must contain one of that word's names. Only
those images pay for the second search.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from captioner.constrained import constrained_beam_search, constraint_mask
from captioner.decoding import Decoded
from captioner.labelmap import LabelMap, WordScore
from captioner.model import AttentionDecoder
from captioner.vocab import Vocabulary


@dataclass
class Guidance:
    """Thresholds on the tagger's summed word probability (chosen on Flickr8k dev and coco-mini)."""

    force_above: float = 0.5  # the caption must name the word from here on
    hint_above: float = 0.3  # an unsure answer may say "It may show a cat." from here on
    # A forced caption is kept only if its mean log-probability per word is at most this much below
    # the free caption's: forcing a word the sentence can't take ("a dog is espresso") is worse.
    max_drop: float = float("inf")
    # ... unless the tagger is at least this sure: then the word is said however the sentence scores.
    always_above: float = 1.01

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> Guidance:
        d = d or {}
        return cls(**{k: float(v) for k, v in d.items() if k in cls.__dataclass_fields__})


def name_ids(word: str, labelmap: LabelMap, vocab: Vocabulary) -> list[int]:
    """Vocabulary ids of every word that names `word` ("cat" -> cat, kitten, kitty)."""
    ids = (vocab.id_of(n) for n in labelmap.names_of.get(word, (word,)))
    return sorted({i for i in ids if i is not None})


def forced_words(
    tops: list[list[WordScore]], tokens: torch.Tensor, labelmap: LabelMap, vocab: Vocabulary, threshold: float
) -> list[list[int]]:
    """Per image, the constraint's word ids: empty when the tagger is unsure, the word has no
    vocabulary id, or the caption (tokens (B, T)) already names it."""
    out: list[list[int]] = []
    for b, words in enumerate(tops):
        if not words or words[0].p < threshold:
            out.append([])
            continue
        ids = name_ids(words[0].word, labelmap, vocab)
        said = set(tokens[b].tolist())
        out.append([] if not ids or said.intersection(ids) else ids)
    return out


def guide(
    decoder: AttentionDecoder,
    grid: torch.Tensor,
    out: Decoded,
    constraints: list[list[int]],
    *,
    beam_size: int,
    max_len: int,
    restricted: torch.Tensor | None = None,
    max_drop: float = float("inf"),
    insist: list[bool] | None = None,
) -> tuple[Decoded, list[bool]]:
    """Re-decode the images with a non-empty constraint; -> (captions, which ones now come from the
    constrained search). Images whose constraint can't be met, or only with a caption scoring more
    than max_drop (mean log-probability per word) below the free one (unless insist[b]), keep their
    first caption."""
    todo = [b for b, ids in enumerate(constraints) if ids]
    forced = [False] * len(constraints)
    if not todo:
        return out, forced
    rows = torch.tensor(todo, device=grid.device)
    V = decoder.out.out_features if hasattr(decoder.out, "out_features") else decoder.cfg.vocab_size
    mask = constraint_mask([constraints[b] for b in todo], V, grid.device)
    if restricted is not None:
        restricted = restricted.to(grid.device)
    sub, met = constrained_beam_search(decoder, grid[rows], mask, beam_size, max_len, restricted=restricted)
    close = sub.scores >= out.scores[rows] - max_drop
    if insist is not None:
        close = close | torch.tensor([insist[b] for b in todo], device=grid.device)
    met = met & close
    take = [b for b, ok in zip(todo, met.tolist(), strict=True) if ok]
    for b in take:
        forced[b] = True
    if not take:
        return out, forced
    src = torch.tensor([i for i, ok in enumerate(met.tolist()) if ok], device=grid.device)
    return _replace_rows(out, torch.tensor(take, device=grid.device), sub, src), forced


def _replace_rows(a: Decoded, rows: torch.Tensor, b: Decoded, src: torch.Tensor) -> Decoded:
    """a with a[rows[i]] := b[src[i]]; token tensors padded to one length."""
    T = max(a.tokens.shape[1], b.tokens.shape[1])

    def put(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, T - x.shape[1])).clone()
        x[rows] = F.pad(y, (0, T - y.shape[1]))[src].to(x.dtype)
        return x

    lengths, scores = a.lengths.clone(), a.scores.clone()
    lengths[rows] = b.lengths[src]
    scores[rows] = b.scores[src]
    # The constrained search keeps no attention maps: replaced rows' maps are stale, callers skip them.
    return Decoded(put(a.tokens, b.tokens), put(a.token_logprobs, b.token_logprobs), lengths, a.alphas, scores)
