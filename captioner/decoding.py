"""Greedy, beam and sampled decoding, each batched over all images at once (no loop over images)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from captioner.model import AttentionDecoder, DecoderState
from captioner.vocab import END_ID, PAD_ID, START_ID, UNK_ID


@dataclass
class Decoded:
    tokens: torch.Tensor  # (B, T) word ids; <end> then <pad> after the caption
    token_logprobs: torch.Tensor  # (B, T) log p of each emitted token, 0 after <end>
    lengths: torch.Tensor  # (B,) emitted tokens including <end>
    alphas: torch.Tensor | None  # (B, T, P) attention per emitted token, None without attention
    scores: torch.Tensor  # (B,) length-normalised log-probability (what beam search ranks by)


def _mask_step(logp: torch.Tensor, finished: torch.Tensor, force_end: bool) -> torch.Tensor:
    """Rules shared by every decoder: finished rows only emit <pad> (log p 0); live rows never emit
    <pad>/<start>/<unk>; at the length limit a live row must emit <end>."""
    logp = logp.clone()
    logp[:, PAD_ID] = float("-inf")
    logp[:, START_ID] = float("-inf")
    logp[:, UNK_ID] = float("-inf")
    if force_end:
        end = logp[:, END_ID].clone()
        logp.fill_(float("-inf"))
        logp[:, END_ID] = end
    if finished.any():
        logp[finished] = float("-inf")
        logp[finished, PAD_ID] = 0.0
    return logp


def _normalise(total: torch.Tensor, lengths: torch.Tensor, length_penalty: float) -> torch.Tensor:
    return total / lengths.clamp(min=1).float() ** length_penalty


@torch.no_grad()
def greedy(decoder: AttentionDecoder, grid: torch.Tensor, max_len: int, length_penalty: float = 1.0) -> Decoded:
    """grid (B, P, C) -> the most likely word at every step."""
    return _run_policy(decoder, grid, max_len, length_penalty, sample=False)


def sample(decoder: AttentionDecoder, grid: torch.Tensor, max_len: int, temperature: float = 1.0) -> Decoded:
    """Multinomial sampling with gradients through token_logprobs (for self-critical training)."""
    return _run_policy(decoder, grid, max_len, 1.0, sample=True, temperature=temperature)


def _run_policy(
    decoder: AttentionDecoder,
    grid: torch.Tensor,
    max_len: int,
    length_penalty: float,
    sample: bool,
    temperature: float = 1.0,
) -> Decoded:
    B = grid.shape[0]
    state = decoder.init_state(grid)
    tokens = torch.full((B,), START_ID, dtype=torch.long, device=grid.device)
    finished = torch.zeros(B, dtype=torch.bool, device=grid.device)
    out_tokens, out_logps, out_alphas = [], [], []
    for t in range(max_len + 1):
        logits, state, alpha = decoder.step(tokens, state)
        logp = _mask_step(F.log_softmax(logits.float(), dim=1), finished, force_end=t == max_len)
        if sample:
            probs = torch.softmax(logp.detach() / temperature, dim=1)
            tokens = torch.multinomial(probs, 1).squeeze(1)
        else:
            tokens = logp.argmax(dim=1)
        out_tokens.append(tokens)
        out_logps.append(logp.gather(1, tokens.unsqueeze(1)).squeeze(1))
        if alpha is not None:
            out_alphas.append(torch.where(finished.unsqueeze(1), torch.zeros_like(alpha), alpha))
        finished = finished | (tokens == END_ID)
        if bool(finished.all()):
            break
    toks = torch.stack(out_tokens, 1)  # (B, T)
    logps = torch.stack(out_logps, 1)  # (B, T)
    lengths = (toks != PAD_ID).sum(1)
    alphas = torch.stack(out_alphas, 1) if out_alphas else None
    return Decoded(toks, logps, lengths, alphas, _normalise(logps.sum(1), lengths, length_penalty))


@torch.no_grad()
def beam_search(
    decoder: AttentionDecoder,
    grid: torch.Tensor,
    beam_size: int,
    max_len: int,
    length_penalty: float = 1.0,
    keep_attention: bool = True,
    banned: torch.Tensor | None = None,
) -> Decoded:
    """Beam search over all B images at once: the B*K hypotheses run as one batch.

    Hypotheses are ranked by their summed log-probability while searching and the finished ones by
    sum / length**length_penalty at the end. keep_attention=False skips tracking the per-word
    attention maps (alphas is then None), which nobody but `explain` reads. banned (V,) bool: words
    never emitted (words added by vocabulary expansion, said only under a constraint).
    """
    start = decoder.init_state(grid)  # projected once, shared by the search and the greedy fallback
    if beam_size <= 1:
        return _search(decoder, start, 1, max_len, length_penalty, keep_attention, banned)
    beams = _search(decoder, start, beam_size, max_len, length_penalty, keep_attention, banned)
    # Ranking by the raw sum while searching can prune the greedy path and end below it once lengths
    # are normalised; the greedy caption (a search of width 1) costs 1/K of it, so keep it as a candidate.
    fallback = _search(decoder, start, 1, max_len, length_penalty, keep_attention, banned)
    return _better(beams, fallback)


def _search(
    decoder: AttentionDecoder,
    start: DecoderState,
    K: int,
    max_len: int,
    length_penalty: float,
    keep_attention: bool,
    banned: torch.Tensor | None = None,
) -> Decoded:
    """Beam search of width K (K = 1: greedy) from the images' initial states (B rows)."""
    B, device = start.h.shape[0], start.h.device
    state = start.select(torch.arange(B, device=device).repeat_interleave(K)) if K > 1 else start  # B*K rows
    tokens = torch.full((B * K,), START_ID, dtype=torch.long, device=device)
    scores = torch.zeros(B, K, device=device)
    scores[:, 1:] = float("-inf")  # all K beams start identical: expand only the first
    finished = torch.zeros(B * K, dtype=torch.bool, device=device)
    seqs = torch.zeros(B * K, 0, dtype=torch.long, device=device)
    seq_logps = torch.zeros(B * K, 0, device=device)
    alphas: torch.Tensor | None = None
    # Images whose K hypotheses have all ended leave the batch (their rows would only emit <pad>), so
    # the steps after the shortest captions run on fewer rows. alive[j] = original index of row group j.
    alive = torch.arange(B, device=device)
    done: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}
    for t in range(max_len + 1):
        n = alive.shape[0]
        base = (torch.arange(n, device=device) * K).unsqueeze(1)  # (n, 1) first row of each image
        logits, state, alpha = decoder.step(tokens, state)
        logits = logits.float()
        if banned is not None:  # before the softmax: banned words take no probability from the others
            logits[:, banned] = float("-inf")
        logp = _mask_step(F.log_softmax(logits, dim=1), finished, force_end=t == max_len)  # (n*K, V)
        V = logp.shape[1]
        cand = (scores.reshape(n * K, 1) + logp).reshape(n, K * V)
        scores, flat_idx = cand.topk(K, dim=1)  # (n, K)
        rows = (base + flat_idx // V).reshape(-1)  # (n*K,) which hypothesis each survivor extends
        words = (flat_idx % V).reshape(-1)
        word_logp = logp[rows, words]
        if alpha is not None and keep_attention:
            step_alpha = torch.where(finished.unsqueeze(1), torch.zeros_like(alpha), alpha)[rows]
            alphas = step_alpha.unsqueeze(1) if alphas is None else torch.cat([alphas[rows], step_alpha[:, None]], 1)
        seqs = torch.cat([seqs[rows], words.unsqueeze(1)], 1)
        seq_logps = torch.cat([seq_logps[rows], word_logp.unsqueeze(1)], 1)
        finished = finished[rows] | (words == END_ID)
        # Survivors always extend a hypothesis of their own image, so the per-image features need no
        # reordering: only the LSTM state moves (copying (B*K, P, D) grids every step was the cost).
        state = DecoderState(state.h[rows], state.c[rows], state.features, state.projected)
        tokens = words
        image_done = finished.view(n, K).all(1)  # (n,)
        n_done = int(image_done.sum())
        if n_done == n:
            _retire(done, alive, image_done, K, seqs, seq_logps, alphas)
            break
        # Leaving the batch copies the survivors' (rows, P, D) features: only worth it for a few images at once.
        if n_done and n_done * 8 >= n:
            _retire(done, alive, image_done, K, seqs, seq_logps, alphas)
            keep = ~image_done
            keep_rows = keep.repeat_interleave(K)
            alive, scores, tokens, finished = alive[keep], scores[keep], tokens[keep_rows], finished[keep_rows]
            seqs, seq_logps = seqs[keep_rows], seq_logps[keep_rows]
            alphas = None if alphas is None else alphas[keep_rows]
            state = state.select(keep_rows.nonzero().squeeze(1))
    seqs, seq_logps, alphas = _gather_retired(done, B)
    lengths = (seqs != PAD_ID).sum(1)  # (B*K,)
    norm = _normalise(seq_logps.sum(1), lengths, length_penalty).reshape(B, K)
    first = torch.arange(B, device=device) * K
    best = first + norm.argmax(1)  # (B,) row of each image's best hypothesis
    return Decoded(
        seqs[best], seq_logps[best], lengths[best], None if alphas is None else alphas[best], norm.max(1).values
    )


def _retire(done, alive, image_done, K, seqs, seq_logps, alphas) -> None:
    """Keep the K finished hypotheses of each image flagged in image_done (n,), by original index."""
    for j in image_done.nonzero().flatten().tolist():
        rows = slice(j * K, (j + 1) * K)
        done[int(alive[j])] = (seqs[rows], seq_logps[rows], None if alphas is None else alphas[rows])


def _gather_retired(done, B: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Retired hypotheses back in image order, padded to one length: (B*K, T), (B*K, T), (B*K, T, P)."""
    T = max(done[i][0].shape[1] for i in range(B))
    seqs = torch.cat([_pad_to(done[i][0], T) for i in range(B)])
    logps = torch.cat([_pad_to(done[i][1], T) for i in range(B)])
    alphas = None if done[0][2] is None else torch.cat([_pad_to(done[i][2], T) for i in range(B)])
    return seqs, logps, alphas


def _pad_to(x: torch.Tensor, T: int) -> torch.Tensor:
    pad = [0, 0] * (x.dim() - 2) + [0, T - x.shape[1]]
    return F.pad(x, pad)


def _better(a: Decoded, b: Decoded) -> Decoded:
    """Row-wise pick of whichever decoding scored higher."""
    take_b = b.scores > a.scores  # (B,)
    if not bool(take_b.any()):
        return a
    T = max(a.tokens.shape[1], b.tokens.shape[1])

    def pick(x, y):
        x, y = _pad_to(x, T), _pad_to(y, T)
        mask = take_b.view(-1, *([1] * (x.dim() - 1)))
        return torch.where(mask, y, x)

    alphas = None if a.alphas is None else pick(a.alphas, b.alphas)
    return Decoded(
        pick(a.tokens, b.tokens),
        pick(a.token_logprobs, b.token_logprobs),
        torch.where(take_b, b.lengths, a.lengths),
        alphas,
        torch.where(take_b, b.scores, a.scores),
    )
