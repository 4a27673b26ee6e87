"""The image-text matcher of the confidence score (captioner.confidence_calibration.Matcher): trained
contrastively on train photos' own captions, and its cross-fitted "match" feature of every pair."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from captioner.confidence_calibration import Matcher
from training.confidence_pairs import Pair


def train_matcher(
    pooled: np.ndarray,
    seqs: list[list[int]],
    photos: np.ndarray,
    vocab_size: int,
    *,
    dim: int = 128,
    epochs: int = 4,
    seeds: int = 3,
    batch: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 1e-3,
    desc: str = "matcher",
) -> Matcher:
    """Contrastive (InfoNCE, both directions) image-text matcher on (photo, its own caption) pairs:
    pooled (n, Z) the photo feature of each caption (flattened photo summary), seqs its word ids, photos (n,)
    which photo it is.
    Other photos' captions in the batch are the negatives; captions of the same photo are masked out.
    S = seeds models, averaged."""
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(pooled, dtype=np.float32))
    photo_ids = torch.as_tensor(np.asarray(photos))
    mu, sd = x.mean(0), x.std(0) + 1e-3
    z = (x - mu) / sd
    proto = Matcher(
        mu,
        sd,
        torch.zeros(1, dim, x.shape[1]),
        torch.zeros(1, dim),
        torch.zeros(1, dim, vocab_size),
        torch.zeros(1, dim),
    )
    t = proto.bags(seqs)  # (n, V)
    parts = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        img, txt = torch.nn.Linear(x.shape[1], dim), torch.nn.Linear(vocab_size, dim)
        scale = torch.nn.Parameter(torch.tensor(2.3))
        opt = torch.optim.AdamW([*img.parameters(), *txt.parameters(), scale], lr, weight_decay=weight_decay)
        for _ in tqdm(range(epochs), desc=f"{desc} {seed + 1}/{seeds}", unit="epoch", leave=False):
            perm = torch.randperm(len(z))
            for s in range(0, len(perm), batch):
                b = perm[s : s + batch]
                fi = F.normalize(img(F.dropout(z[b], 0.2)), dim=1)
                ft = F.normalize(txt(F.dropout(t[b], 0.1)), dim=1)
                logits = scale.exp().clamp(max=100) * fi @ ft.T  # (b, b)
                same = photo_ids[b][:, None] == photo_ids[b][None, :]
                logits = logits.masked_fill(same & ~torch.eye(len(b), dtype=torch.bool), -1e4)
                target = torch.arange(len(b))
                loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
                opt.zero_grad()
                loss.backward()
                opt.step()
        parts.append((img.weight.detach(), img.bias.detach(), txt.weight.detach(), txt.bias.detach()))
    return Matcher(mu, sd, *(torch.stack([p[i] for p in parts]) for i in range(4)))


def matcher_features(
    pairs: list[Pair], summaries: np.ndarray, vocab_size: int, folds: int = 5, seed: int = 0, **kw
) -> tuple[Matcher, np.ndarray]:
    """The matcher trained on every train photo's own captions, and the "match" feature of every pair:
    cross-fitted for train pairs (the model that scores a photo's pairs never saw that photo's
    captions), from the full model for dev pairs."""
    pooled = summaries.reshape(len(summaries), -1)  # (N, 2C)
    own = [i for i, p in enumerate(pairs) if p.kind == 0 and p.split == "train"]
    photos = np.array(sorted({pairs[i].row for i in own}))
    fold_of = dict(zip(photos, np.random.default_rng(seed).permutation(len(photos)) % folds, strict=True))
    out = np.zeros(len(pairs), np.float32)
    for k in range(folds):
        fit_on = [i for i in own if fold_of[pairs[i].row] != k]
        m = train_matcher(
            pooled[[pairs[i].row for i in fit_on]],
            [pairs[i].seq for i in fit_on],
            np.array([pairs[i].row for i in fit_on]),
            vocab_size,
            desc=f"matcher fold {k + 1}/{folds}",
            **kw,
        )
        sel = [i for i, p in enumerate(pairs) if p.split == "train" and fold_of.get(p.row) == k]
        out[sel] = _match(m, pooled, pairs, sel)
    full = train_matcher(
        pooled[[pairs[i].row for i in own]],
        [pairs[i].seq for i in own],
        np.array([pairs[i].row for i in own]),
        vocab_size,
        desc="matcher",
        **kw,
    )
    sel = [i for i, p in enumerate(pairs) if p.split != "train"]
    out[sel] = _match(full, pooled, pairs, sel)
    return full, out


def _match(m: Matcher, pooled: np.ndarray, pairs: list[Pair], sel: list[int], chunk: int = 4096) -> np.ndarray:
    out = [np.zeros(0, np.float32)]
    for s in range(0, len(sel), chunk):
        part = sel[s : s + chunk]
        out.append(m(torch.from_numpy(pooled[[pairs[i].row for i in part]]), [pairs[i].seq for i in part]).numpy())
    return np.concatenate(out)
