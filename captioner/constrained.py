"""Constrained beam search: the caption must contain one of a set of words.

Anderson et al., "Guided Open Vocabulary Image Captioning with Constrained Beam Search" (EMNLP 2017),
for one disjunctive constraint per image ("cat" or "kitten"): a finite-state machine with two
states, "not yet said" (0) and "said" (1), each keeping its own K hypotheses. A hypothesis in state 0
that emits a constraint word moves to state 1; the answer is the best finished hypothesis of state 1.
All images and both states run as one batch of B * 2 * K rows, like the unconstrained search.

Words added by vocabulary expansion (captioner.vocab_expansion) may only be said where they are the
image's constraint: their weights are borrowed from a related word, so the model has no evidence
of its own for them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from captioner.decoding import Decoded, _mask_step, _normalise
from captioner.model import AttentionDecoder, DecoderState
from captioner.vocab import END_ID, PAD_ID, START_ID

NEG_INF = float("-inf")


def constraint_mask(word_sets: list[list[int]], vocab_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-image word-id sets -> (B, V) bool, True where the word satisfies the image's constraint."""
    mask = torch.zeros(len(word_sets), vocab_size, dtype=torch.bool, device=device)
    for b, ids in enumerate(word_sets):
        if ids:
            mask[b, torch.tensor(ids, dtype=torch.long, device=device)] = True
    return mask


@torch.no_grad()
def constrained_beam_search(
    decoder: AttentionDecoder,
    grid: torch.Tensor,
    constraints: torch.Tensor,
    beam_size: int,
    max_len: int,
    *,
    length_penalty: float = 1.0,
    restricted: torch.Tensor | None = None,
) -> tuple[Decoded, torch.Tensor]:
    """grid (B, P, C); constraints (B, V) bool (see constraint_mask); restricted (V,) bool: words
    emitted only as a constraint word. -> (best caption per image, met (B,) bool). An image whose
    constraint could not be met (or that has none) gets its best unconstrained hypothesis."""
    B, device = grid.shape[0], grid.device
    K = max(1, beam_size)
    G = 2 * K  # rows per image: K in state 0, then K in state 1
    start = decoder.init_state(grid)
    state = start.select(torch.arange(B, device=device).repeat_interleave(G))  # (B*G rows)
    tokens = torch.full((B * G,), START_ID, dtype=torch.long, device=device)
    scores = torch.full((B, G), NEG_INF, device=device)
    scores[:, 0] = 0.0  # only the first hypothesis of state 0 is live at the start
    finished = torch.zeros(B * G, dtype=torch.bool, device=device)
    seqs = torch.zeros(B * G, 0, dtype=torch.long, device=device)
    seq_logps = torch.zeros(B * G, 0, device=device)
    allowed = None if restricted is None else constraints | ~restricted.unsqueeze(0)  # (B, V)
    for t in range(max_len + 1):
        logits, state, _ = decoder.step(tokens, state)
        V = logits.shape[1]
        logits = logits.float()
        if allowed is not None:  # before the softmax, as in free decoding: see beam_search's `banned`
            logits = logits.view(B, G, V).masked_fill(~allowed.unsqueeze(1), NEG_INF).view(B * G, V)
        logp = _mask_step(F.log_softmax(logits, dim=1), finished, force_end=t == max_len)  # (B*G, V)
        logp = logp.view(B, G, V)
        total = scores.unsqueeze(2) + logp  # (B, G, V)
        hit = constraints.unsqueeze(1)  # (B, 1, V)
        # State 0 keeps the words that don't meet the constraint; state 1 takes the rest of state 0
        # (constraint words) and every word from hypotheses already in state 1.
        stay0 = total[:, :K].masked_fill(hit, NEG_INF).reshape(B, K * V)
        into1 = torch.cat([total[:, :K].masked_fill(~hit, NEG_INF), total[:, K:]], dim=1).reshape(B, G * V)
        s0, i0 = stay0.topk(K, dim=1)  # (B, K); i0 indexes rows 0..K-1 of the image
        s1, i1 = into1.topk(K, dim=1)  # (B, K); i1 indexes rows 0..G-1 of the image
        scores = torch.cat([s0, s1], dim=1)  # (B, G)
        flat = torch.cat([i0, i1], dim=1)  # (B, G)
        base = (torch.arange(B, device=device) * G).unsqueeze(1)
        rows = (base + flat // V).reshape(-1)  # (B*G,) the hypothesis each survivor extends
        words = (flat % V).reshape(-1)
        word_logp = logp.reshape(B * G, V)[rows, words]
        seqs = torch.cat([seqs[rows], words.unsqueeze(1)], 1)
        seq_logps = torch.cat([seq_logps[rows], word_logp.unsqueeze(1)], 1)
        finished = finished[rows] | (words == END_ID) | ~torch.isfinite(scores.reshape(-1))
        state = DecoderState(state.h[rows], state.c[rows], state.features, state.projected)
        tokens = torch.where(torch.isfinite(word_logp), words, torch.full_like(words, PAD_ID))
        if bool(finished.all()):
            break
    lengths = (seqs != PAD_ID).sum(1)  # (B*G,)
    norm = _normalise(seq_logps.sum(1), lengths, length_penalty)
    norm = torch.where(torch.isfinite(scores.reshape(-1)), norm, torch.full_like(norm, NEG_INF)).view(B, G)
    best1 = norm[:, K:].max(1)
    best0 = norm[:, :K].max(1)
    met = torch.isfinite(best1.values)
    pick = torch.where(met, K + best1.indices, best0.indices)  # (B,)
    best = torch.arange(B, device=device) * G + pick
    return (
        Decoded(seqs[best], seq_logps[best], lengths[best], None, norm.gather(1, pick.unsqueeze(1)).squeeze(1)),
        met,
    )
