"""The confidence features of many (photo, caption) pairs at once: teacher-forced log-probabilities
computed in batches, then captioner.confidence.caption_features on them."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from captioner.confidence import caption_features, token_logprobs
from training.confidence_grids import Grids


def _pad(arrs: list[np.ndarray]) -> torch.Tensor:
    out = torch.zeros(len(arrs), max(len(a) for a in arrs))
    for i, a in enumerate(arrs):
        out[i, : len(a)] = torch.from_numpy(np.asarray(a, dtype=np.float32))
    return out


@torch.no_grad()
def pair_logprobs(
    decoder, grids: Grids, rows: list[int], seqs: list[list[int]], batch: int = 256, desc: str = "log-probabilities"
) -> list[np.ndarray]:
    """Teacher-forced token log-probabilities (len + 1 each) of seqs[i] given photo rows[i]; pairs are
    sorted by photo so each photo is projected once per batch."""
    order = np.argsort(rows, kind="stable")
    out: list = [None] * len(rows)
    for s in tqdm(range(0, len(order), batch), desc=desc, unit="batch"):
        sel = order[s : s + batch]
        uniq = sorted({rows[i] for i in sel})
        at = {r: j for j, r in enumerate(uniq)}
        lp = token_logprobs(decoder, grids.get(uniq), [seqs[i] for i in sel], torch.tensor([at[rows[i]] for i in sel]))
        for j, i in enumerate(sel):
            out[i] = lp[j, : len(seqs[i]) + 1].numpy()
    return out


@torch.no_grad()
def fixed_logprobs(decoder, grid: torch.Tensor, seqs: list[list[int]], batch: int = 512) -> list[np.ndarray]:
    """Token log-probabilities of each distinct caption given one grid (P, C), e.g. the average photo."""
    key: dict[tuple, int] = {}
    for q in seqs:
        key.setdefault(tuple(q), len(key))
    uniq = [list(k) for k in key]
    lps: list[np.ndarray] = []
    for s in tqdm(range(0, len(uniq), batch), desc="average-photo log-probabilities", unit="batch"):
        b = uniq[s : s + batch]
        lp = token_logprobs(decoder, grid[None], b, torch.zeros(len(b), dtype=torch.long))
        lps += [lp[j, : len(b[j]) + 1].numpy() for j in range(len(b))]
    return [lps[key[tuple(q)]] for q in seqs]


def features_from_logprobs(
    model, vocab, labelmap, calib, rows, seqs, photo_lp, avg_lp, summaries, tags, chunk: int = 4096
) -> np.ndarray:
    """(N, F) caption_features from precomputed log-probabilities, photo summaries (N, 2, C) and tag probs."""
    out = []
    for s in range(0, len(seqs), chunk):
        r = rows[s : s + chunk]
        out.append(
            caption_features(
                model,
                None,
                seqs[s : s + chunk],
                vocab=vocab,
                labelmap=labelmap,
                calib=calib,
                summary=torch.from_numpy(summaries[r]),
                token_lp=_pad(photo_lp[s : s + chunk]),
                avg_lp=_pad(avg_lp[s : s + chunk]),
                tag_probs=None if tags is None else torch.from_numpy(tags[r]),
            )
        )
    return torch.cat(out).numpy()
