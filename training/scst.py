"""Self-critical sequence training (Rennie et al. 2017): optimise CIDEr-D directly.

For each image K captions are sampled; each sample's reward is its CIDEr-D against the image's
references, minus a baseline (the mean reward of the image's other samples, or the greedy caption's
reward), so only captions better than the model's usual output are reinforced.

Rewards count an end-of-caption token as a word (appended to candidates and references), as in
Luo's self-critical.pytorch: otherwise a caption cut off after "... in front of a" loses almost no
reward for its broken ending, and SCST learns such endings.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from captioner.decoding import greedy, sample
from captioner.model import Captioner
from captioner.vocab import PAD_ID
from training.cider import CiderD
from training.data import TrainingData
from training.ptb_tokenizer import ptb_tokenize_lines

EOS = "<eos>"


def with_eos(texts: list[str]) -> list[list[str]]:
    """PTB-tokenised captions, each ending with the end-of-caption token."""
    return [words + [EOS] for words in ptb_tokenize_lines(texts)]


def train_cider(data: TrainingData) -> CiderD[int]:
    """CIDEr-D whose document frequencies come from the training references (keyed by train index)."""
    refs = data.splits["train"].references
    flat = iter(" ".join(words) for words in with_eos([c for caps in refs for c in caps]))
    return CiderD({i: [next(flat) for _ in caps] for i, caps in enumerate(refs)}, tokenize=False)


def scst_epoch(
    model: Captioner, data: TrainingData, opt, tc, cider: CiderD[int], epoch: int, part: int = 0, parts: int = 1
) -> float:
    """Part `part` of `parts` of one pass over the training images; returns the mean sampled reward.

    An epoch comes in parts so that dev CIDEr-D is checked between them: on a dataset as small as
    Flickr8k the best SCST model can come well before the end of an epoch.
    """
    K = tc.scst_samples
    vocab = data.vocab
    rows = data.splits["train"].rows
    # The epoch's order depends only on (seed, epoch), so a run resumed between parts sees each image once.
    order = np.random.RandomState(tc.seed * 1009 + epoch).permutation(len(rows))
    order = np.array_split(order, parts)[part]
    total, count = 0.0, 0
    desc = f"epoch {epoch} scst" + (f" {part + 1}/{parts}" if parts > 1 else "")
    bar = tqdm(range(0, len(order), tc.batch_images), desc=desc, unit="batch")
    for start in bar:
        idx = order[start : start + tc.batch_images]
        grid = data.grid(rows[idx]).to(tc.device)  # (b, P, C)
        keys = [int(i) for i in idx for _ in range(K)]
        model.train(tc.scst_dropout)  # False: sample (and learn) with dropout off
        dec = sample(model.decoder, grid.repeat_interleave(K, dim=0), model.cfg.max_len)  # b*K samples
        texts = [vocab.decode(seq.tolist()) for seq in dec.tokens]
        rewards = torch.from_numpy(cider.score_keys(with_eos(texts), keys)).float().view(-1, K)  # (b, K)
        if tc.scst_baseline == "greedy":
            model.eval()
            with torch.no_grad():
                g = greedy(model.decoder, grid, model.cfg.max_len)
            base_texts = [vocab.decode(seq.tolist()) for seq in g.tokens]
            base_rewards = cider.score_keys(with_eos(base_texts), [int(i) for i in idx])
            baseline = torch.from_numpy(base_rewards).float()[:, None]
            model.train(tc.scst_dropout)
        else:  # mean of the image's other samples: no extra decoding needed
            baseline = (rewards.sum(1, keepdim=True) - rewards) / (K - 1)
        advantage = (rewards - baseline).view(-1, 1).to(tc.device)  # (b*K, 1)
        mask = (dec.tokens != PAD_ID).float()  # the caption's words and its <end>
        loss = -(advantage * dec.token_logprobs * mask).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.decoder.parameters(), tc.grad_clip)
        opt.step()
        total += float(rewards.sum())
        count += rewards.numel()
        bar.set_postfix(reward=f"{total / count:.3f}")
    return total / max(count, 1)
