"""A round's fine-tuning: weighted cross-entropy towards what people want, unlikelihood away from
captions they rated bad, on cached grids (the encoder stays frozen, so a CPU round takes minutes).

Unlikelihood (Welleck et al., "Neural Text Generation with Unlikelihood Training", ICLR 2020) at the
token level: for a bad caption, each of its content words w at step t adds -log(1 - p(w | prefix)).
Function words ("a", "on") are left alone: a bad caption is wrong in what it names, not in its grammar.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from captioner.model import Captioner
from captioner.vocab import Vocabulary
from training.data import pad_batch
from training.learning.hygiene import FUNCTION_WORDS
from training.learning.photo_features import GridBank
from training.learning.policy import Policy
from training.learning.targets import Example


class RoundStopped(RuntimeError):
    """The round lost its lease (another machine took it over) and stopped training."""


def content_mask(vocab: Vocabulary) -> torch.Tensor:
    """(V,) bool: True for words unlikelihood may push down (not specials, not function words)."""
    mask = torch.ones(len(vocab), dtype=torch.bool)
    mask[:4] = False
    for w in FUNCTION_WORDS:
        i = vocab.id_of(w)
        if i is not None:
            mask[i] = False
    return mask


def token_logp(
    model: Captioner, bank: GridBank, keys: list[str], seqs: list[list[int]], device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher-forced log-probability of every word of ``seqs`` (each <start> .. <end>) on the grids of
    ``keys`` -> (logp (B, T-1), targets (B, T-1), order (B,)): rows sorted longest first, row i is
    ``seqs[order[i]]``; padding targets are 0."""
    caps, lengths, order = pad_batch(seqs)
    grid = bank.grid([keys[int(i)] for i in order]).to(device)  # (B, P, C)
    caps, lengths = caps.to(device), lengths.to(device)
    logits, _ = model.decoder(grid, caps, lengths)  # (B, T-1, V)
    targets = caps[:, 1 : logits.shape[1] + 1]  # (B, T-1)
    logp = F.log_softmax(logits.float(), dim=-1).gather(2, targets.unsqueeze(2)).squeeze(2)  # (B, T-1)
    return logp, targets, order


def batch_loss(
    model: Captioner, bank: GridBank, batch: list[Example], content: torch.Tensor, bad_weight: float, device: str
) -> torch.Tensor:
    """(Weighted NLL of the positive examples' words + bad_weight x unlikelihood of the negative ones'
    content words) / their total weight."""
    logp, targets, order = token_logp(model, bank, [e.key for e in batch], [list(e.ids) for e in batch], device)
    ordered = [batch[int(i)] for i in order]
    real = targets != 0
    weight = torch.tensor([e.weight for e in ordered], device=device)
    negative = torch.tensor([e.negative for e in ordered], device=device)
    pos_w = (real & ~negative[:, None]).float() * weight[:, None]  # (B, T-1)
    neg_w = (real & negative[:, None] & content.to(device)[targets]).float() * weight[:, None]
    # One denominator for both terms: a token of a bad caption weighs what a token of a good one does,
    # so a few bad captions in a batch cannot outweigh everything else in it.
    total = (pos_w.sum() + neg_w.sum()).clamp(min=1e-6)
    loss = -(logp * pos_w).sum() / total
    if bad_weight > 0 and neg_w.sum() > 0:
        p = logp.exp().clamp(max=1 - 1e-6)
        loss = loss - bad_weight * (torch.log1p(-p) * neg_w).sum() / total
    return loss


def fine_tune(
    model: Captioner,
    vocab: Vocabulary,
    bank: GridBank,
    examples: list[Example],
    policy: Policy,
    *,
    device: str = "cpu",
    progress: bool = True,
    stop: threading.Event | None = None,
    on_step: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Train the decoder in place; -> {"loss": last epoch's mean, "seconds": ...}."""
    if not examples:
        return {"loss": 0.0, "seconds": 0.0, "steps": 0}
    model.to(device).train()
    model.encoder.eval()
    opt = torch.optim.Adam(model.decoder.parameters(), lr=policy.lr)
    content = content_mask(vocab)
    rng = random.Random(policy.seed)
    t0, steps, mean = time.perf_counter(), 0, 0.0
    for epoch in range(1, policy.epochs + 1):
        order = examples[:]
        rng.shuffle(order)
        total, n = 0.0, 0
        starts = range(0, len(order), policy.batch_size)
        bar = tqdm(starts, desc=f"fine-tuning {epoch}/{policy.epochs}", unit="batch", disable=not progress)
        for start in bar:
            if stop is not None and stop.is_set():
                raise RoundStopped("the round lost its lease")
            loss = batch_loss(model, bank, order[start : start + policy.batch_size], content, policy.bad_weight, device)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.decoder.parameters(), 5.0)
            opt.step()
            total, n, steps = total + loss.item(), n + 1, steps + 1
            bar.set_postfix(loss=f"{total / n:.3f}")
            if on_step is not None:
                on_step()
        mean = total / max(n, 1)
    model.eval()
    return {"loss": mean, "seconds": time.perf_counter() - t0, "steps": steps}
