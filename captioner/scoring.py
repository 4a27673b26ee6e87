"""Teacher-forced log-probabilities of given captions: how likely the decoder finds a sentence.

Used to score captions the model did not write (`captionbot judge`, a person's correction) and a
caption's likelihood given an "average photo" (the PMI correction of the confidence score).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from captioner.model import StepDecoder
from captioner.vocab import END_ID, PAD_ID, START_ID


def pad_captions(seqs: list[list[int]], device: torch.device | str = "cpu") -> torch.Tensor:
    """Word ids (without <start>/<end>) -> (N, T+2) = <start> w1..wn <end> <pad>.."""
    T = max((len(s) for s in seqs), default=0) + 2
    out = torch.full((len(seqs), T), PAD_ID, dtype=torch.long, device=device)
    for i, s in enumerate(seqs):
        row = [START_ID, *s, END_ID]
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


@torch.no_grad()
def caption_logprobs(
    decoder: StepDecoder, grid: torch.Tensor, seqs: list[list[int]], owner: torch.Tensor | None = None
) -> torch.Tensor:
    """grid (B, P, C), N word-id lists, owner (N,) the grid row of each caption (None: B == N) ->
    (N, T+1) log p of each word and of <end>; 0 after <end>. A photo with many captions is projected once."""
    tokens = pad_captions(seqs, grid.device)  # (N, T+2)
    state = decoder.init_state(grid)
    if owner is not None:
        state = state.select(owner.to(grid.device))
    out = []
    for t in range(tokens.shape[1] - 1):
        logits, state, _ = decoder.step(tokens[:, t], state)
        logp = F.log_softmax(logits.float(), dim=1)  # (N, V)
        out.append(logp.gather(1, tokens[:, t + 1 : t + 2]).squeeze(1))
    logps = torch.stack(out, 1)  # (N, T+1)
    return logps.masked_fill(tokens[:, 1:] == PAD_ID, 0.0)
