"""Vocabulary expansion: teach the decoder words no training caption had ("giraffe", "banana").

As in DCC (Hendricks et al., "Deep Compositional Captioning", CVPR 2016), a new word borrows the
weights of a related known word: its input embedding and its row of the output layer are copies of
the donor's ("giraffe" <- "horse"). The decoder then says the new word where it would have said the
donor, and goes on after it as it would after the donor. New words are appended, so every old
word keeps its id and older checkpoints still load; which words were added, and from which donor,
travels in the checkpoint (`extra["expanded_words"]`), so decoding can keep them for constraints.
"""

from __future__ import annotations

import torch
from torch import nn

from captioner.model import Captioner
from captioner.vocab import Vocabulary


class ExpansionError(ValueError):
    pass


def expand_vocabulary(model: Captioner, vocab: Vocabulary, donors: dict[str, str]) -> tuple[Vocabulary, dict[str, str]]:
    """Add each new word of `donors` ({new word: known donor word}) to `vocab` and `model` in place.

    Words already known are skipped. -> (the new vocabulary, {added word: donor}).
    """
    added: dict[str, str] = {}
    for word, donor in donors.items():
        word = word.strip().lower()
        if not word or vocab.id_of(word) is not None or word in added:
            continue
        if vocab.id_of(donor) is None:
            raise ExpansionError(f"donor {donor!r} for {word!r} is not in the vocabulary")
        added[word] = donor
    if not added:
        return vocab, {}
    dec = model.decoder
    donor_ids = torch.tensor([vocab.id_of(d) for d in added.values()], dtype=torch.long)
    old_v = len(vocab)
    new_v = old_v + len(added)

    embed = nn.Embedding(new_v, dec.embed.embedding_dim).to(dec.embed.weight)
    out = nn.Linear(dec.out.in_features, new_v).to(dec.out.weight)
    with torch.no_grad():
        embed.weight[:old_v] = dec.embed.weight
        embed.weight[old_v:] = dec.embed.weight[donor_ids]
        out.weight[:old_v] = dec.out.weight
        out.weight[old_v:] = dec.out.weight[donor_ids]
        out.bias[:old_v] = dec.out.bias
        out.bias[old_v:] = dec.out.bias[donor_ids]
    dec.embed, dec.out = embed, out
    model.cfg.vocab_size = new_v
    dec.cfg = model.cfg
    return Vocabulary(list(vocab.words) + list(added)), added


def restricted_mask(vocab: Vocabulary, expanded: dict[str, str] | None) -> torch.Tensor | None:
    """(V,) bool, True for words added by expansion (said only as a constraint word); None if none."""
    if not expanded:
        return None
    mask = torch.zeros(len(vocab), dtype=torch.bool)
    for word in expanded:
        i = vocab.id_of(word)
        if i is not None:
            mask[i] = True
    return mask


class RestrictedDecoder:
    """A decoder whose borrowed words leave the softmax except where a caption says them.

    Scoring a caption word by word (teacher forcing) with a borrowed word in the softmax would take
    probability from its donor at every step; this keeps each caption's log-probabilities what the
    model without expansion gives, plus the borrowed words the caption itself uses.
    allowed (N, V) bool: per caption row, the words that stay in the softmax.
    """

    def __init__(self, decoder, allowed: torch.Tensor) -> None:
        self.inner = decoder
        self.allowed = allowed
        self.cfg = decoder.cfg

    @classmethod
    def for_captions(cls, decoder, restricted: torch.Tensor, seqs: list[list[int]]) -> RestrictedDecoder:
        allowed = (~restricted).unsqueeze(0).repeat(len(seqs), 1)  # (N, V)
        for i, seq in enumerate(seqs):
            if seq:
                allowed[i, torch.tensor(seq, dtype=torch.long)] = True
        return cls(decoder, allowed)

    def init_state(self, grid: torch.Tensor):
        return self.inner.init_state(grid)

    def step(self, tokens: torch.Tensor, state):
        logits, state, alpha = self.inner.step(tokens, state)
        return logits.float().masked_fill(~self.allowed.to(logits.device), float("-inf")), state, alpha
