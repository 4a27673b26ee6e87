"""The (photo, caption) pairs the confidence score is fitted on, and their soft grades; see
training/confidence.py for what each kind of pair is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from captioner.decoding import beam_search
from training.confidence_grids import Grids

KINDS = ("own", "beam", "neighbour", "neighbour_beam", "random")


@dataclass
class Pair:
    split: str
    row: int  # grid row of the photo
    seq: list[int]  # caption word ids, no <start>/<end>
    kind: int  # index into KINDS
    source: int  # grid row of the photo the caption was written for


@torch.no_grad()
def beam_captions(model, grids: Grids, rows: list[int], max_len: int, batch: int = 64) -> dict[int, list[int]]:
    """Beam-3 caption (word ids) of each photo row."""
    out = {}
    for s in tqdm(range(0, len(rows), batch), desc="beam captions", unit="batch"):
        chunk = rows[s : s + batch]
        dec = beam_search(model.decoder, grids.get(chunk), 3, max_len, keep_attention=False)
        for j, r in enumerate(chunk):
            out[r] = dec.tokens[j, : int(dec.lengths[j]) - 1].tolist()
    return out


def build_pairs(
    images,
    rows: list[int],
    split: str,
    pooled: np.ndarray,
    beams: dict,
    vocab,
    rng: np.random.Generator,
    n_neighbours: int = 3,
    n_random: int = 2,
) -> list[Pair]:
    """The pairs of one split (see the module docstring); neighbours come from the same split."""
    z = pooled[rows] / np.linalg.norm(pooled[rows], axis=1, keepdims=True)
    pairs = []
    for s in range(0, len(rows), 512):
        sim = z[s : s + 512] @ z.T  # (b, n) cosine
        for a in range(sim.shape[0]):
            i = s + a
            sim[a, i] = -np.inf
            near = np.argsort(-sim[a])[:n_neighbours]
            r = rows[i]
            pairs += [Pair(split, r, vocab.encode(c)[1:-1], 0, r) for c in images[i].captions]
            pairs.append(Pair(split, r, beams[r], 1, r))
            for j in near:
                pairs.append(Pair(split, r, vocab.encode(images[j].captions[rng.integers(5)])[1:-1], 2, rows[j]))
            pairs.append(Pair(split, r, beams[rows[near[0]]], 3, rows[near[0]]))
            for j in rng.choice(len(rows), n_random, replace=False):
                if j != i:
                    pairs.append(Pair(split, r, vocab.encode(images[j].captions[rng.integers(5)])[1:-1], 4, rows[j]))
    return pairs


def grades(pairs: list[Pair], refs_by_row: dict[int, list[str]], vocab) -> np.ndarray:
    """Soft grade of each pair: 1 for the photo's own references, else min(1, CIDEr-D vs its references)."""
    from training.cider import CiderD

    cider = CiderD(refs_by_row)
    texts = [" ".join(vocab.decode_tokens(p.seq)) for p in pairs]
    c = cider.score_keys(texts, [p.row for p in pairs])
    return np.where(np.array([p.kind for p in pairs]) == 0, 1.0, np.clip(c, 0.0, 1.0))
