"""Fit the caption confidence score (captioner.confidence) on Flickr8k train pairs; choose on dev.

Pairs, per photo of a split (train to fit, dev to choose feature sets and regularisation):

- its 5 reference captions (kind 0, grade 1),
- the model's beam caption (kind 1),
- one reference caption of each of its 3 nearest photos in pooled-feature space (kind 2),
- the beam caption of its nearest photo (kind 3),
- reference captions of 2 random photos (kind 4).

The grade of a pair that is not the photo's own reference is min(1, CIDEr-D of the caption against the
photo's 5 references): a neighbour's "a dog runs on the grass" can describe this photo too, a random
caption rarely does. The logistic regression is fitted on these soft grades (each pair twice, as a
positive with weight g and a negative with weight 1 - g), then a monotone (isotonic) map from its logit
to the mean grade is fitted on the same train pairs. The image-text matcher is trained on the train
photos' own captions; its feature on train pairs is cross-fitted (5 folds over photos). Nothing here
reads the test split.

Caveat: the captioner was trained on these very train captions, so their log-probabilities are
inflated (own references: mean log p -2.2 on train against -3.0 on dev; PMI about twice as large).
Dev chooses strong L2 regularisation, which keeps the weights balanced despite that, but the train
fitted recalibration is then somewhat off on unseen captions (see the reliability diagram on dev).

    .venv/bin/python -m training.confidence CHECKPOINT --out calib.pt [--plot reliability.png]
        [--data ../shared/datasets/flickr8k] [--grids GRIDS.npy --names NAMES.json] [--cache DIR]
        [--seed 0] [--no-matcher]
"""

from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from captioner.confidence import FEATURES, TAGGER_FEATURES, caption_features, photo_summary, token_logprobs
from captioner.confidence_calibration import ConfidenceCalibration, Head, Matcher
from captioner.decoding import beam_search

KINDS = ("own", "beam", "neighbour", "neighbour_beam", "random")
# Candidate feature sets; the one (and the regularisation) with the best dev agreement is kept.
FEATURE_SETS = {
    "pmi": ("mean_lp", "avg_mean_lp"),
    "pmi+tokens": ("mean_lp", "avg_mean_lp", "min_tok_pmi", "max_tok_pmi"),
    "pmi+tagger": ("mean_lp", "avg_mean_lp", *TAGGER_FEATURES),
    "pmi+tagger+ood": ("mean_lp", "avg_mean_lp", *TAGGER_FEATURES, "ood"),
    "pmi+match": ("mean_lp", "avg_mean_lp", "match"),
    "pmi+match+tagger": ("mean_lp", "avg_mean_lp", "match", *TAGGER_FEATURES),
    "pmi+match+tagger+ood": ("mean_lp", "avg_mean_lp", "match", *TAGGER_FEATURES, "ood"),
    "all": FEATURES,
}
# Inverse L2 strengths of the logistic regression (sklearn's C; ~70k pairs, each twice). Strong
# regularisation keeps the weights of correlated features (mean_lp, avg_mean_lp, match) balanced.
C_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.1, 1.0)


@dataclass
class Pair:
    split: str
    row: int  # grid row of the photo
    seq: list[int]  # caption word ids, no <start>/<end>
    kind: int  # index into KINDS
    source: int  # grid row of the photo the caption was written for


class Grids:
    """(N, P, C) float16 encoder grids by photo name: a precomputed .npy + names, or extracted and cached."""

    def __init__(self, grids: np.ndarray, names: list[str]) -> None:
        self.grids, self.names = grids, names
        self.index = {n: i for i, n in enumerate(names)}

    @classmethod
    def open(
        cls,
        model,
        paths: list[Path],
        grids: str | None,
        names: str | None,
        cache: Path,
        checkpoint: str | Path | None = None,
    ) -> Grids:
        """From grids/names when given, else the model's encoder on `paths` (cached under cache/grids,
        keyed by the checkpoint file's hash)."""
        if grids and names:
            return cls(np.load(grids, mmap_mode="r"), json.loads(Path(names).read_text()))
        from captioner.checkpoint import file_sha256
        from training.features import load_or_extract

        tag = "checkpoint-" + (file_sha256(checkpoint)[:16] if checkpoint else "unknown")
        fc = load_or_extract(
            paths,
            model.cfg.encoder,
            cache / "grids",
            size=model.cfg.image_size,
            encoder_module=model.encoder,
            weights_tag=tag,
        )
        return cls(fc.grids, fc.names)

    def get(self, rows) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.grids[list(rows)], dtype=np.float32))  # (n, P, C)


def photo_summaries(grids: Grids, chunk: int = 512) -> np.ndarray:
    """(N, 2, C) float32: every photo's grid mean and max over positions (captioner.confidence.photo_summary)."""
    out = np.zeros((len(grids.names), 2, grids.grids.shape[2]), np.float32)
    for s in tqdm(range(0, len(out), chunk), desc="photo summaries", unit="chunk"):
        out[s : s + chunk] = photo_summary(grids.get(range(s, min(s + chunk, len(out))))).numpy()
    return out


def average_grid(grids: Grids, rows: list[int], chunk: int = 512) -> torch.Tensor:
    """(P, C) the mean grid of the given photos: the "average photo"."""
    total = np.zeros(grids.grids.shape[1:], np.float64)
    for s in range(0, len(rows), chunk):
        total += np.asarray(grids.grids[sorted(rows[s : s + chunk])], dtype=np.float32).sum(0)
    return torch.from_numpy((total / len(rows)).astype(np.float32))


def kmeans(x: torch.Tensor, k: int, iters: int = 30, seed: int = 0) -> torch.Tensor:
    """(N, C) -> (k, C) centroids (Lloyd's algorithm from k random points)."""
    g = torch.Generator().manual_seed(seed)
    cent = x[torch.randperm(len(x), generator=g)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(x, cent).argmin(1)
        for j in range(k):
            members = assign == j
            if members.any():
                cent[j] = x[members].mean(0)
    return cent


def base_calibration(grids: Grids, train_rows: list[int], pooled: np.ndarray, k: int = 32) -> ConfidenceCalibration:
    """Average photo and OOD centroids of the training photos (no heads yet)."""
    x = torch.from_numpy(pooled[train_rows])
    cent = kmeans(x, k)
    d2 = torch.cdist(x, cent).pow(2).min(1).values
    return ConfidenceCalibration(average_grid(grids, train_rows), cent, float(torch.log(d2 + 1e-6).median()))


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


def grades(pairs: list[Pair], refs_by_row: dict[int, list[str]], vocab) -> np.ndarray:
    """Soft grade of each pair: 1 for the photo's own references, else min(1, CIDEr-D vs its references)."""
    from training.cider import CiderD

    cider = CiderD(refs_by_row)
    texts = [" ".join(vocab.decode_tokens(p.seq)) for p in pairs]
    c = cider.score_keys(texts, [p.row for p in pairs])
    return np.where(np.array([p.kind for p in pairs]) == 0, 1.0, np.clip(c, 0.0, 1.0))


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


def recalibrate(head: Head, x: np.ndarray, y: np.ndarray, knots: int = 24) -> Head:
    """A monotone map from the head's logit to the mean grade, fitted on (x, y) by isotonic regression at
    `knots` logit quantiles and made strictly increasing, so the ranking (and Kendall's tau) is kept."""
    from sklearn.isotonic import IsotonicRegression

    z = head.logit(torch.from_numpy(x[:, [FEATURES.index(n) for n in head.features]]).float()).numpy()
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, y)
    xp = np.unique(np.quantile(z, np.linspace(0, 1, knots)))
    fp = iso.predict(xp)
    fp = np.clip(fp, 1e-3, 1 - 1e-3) * (1 - 1e-3 * len(fp)) + 1e-3 * np.arange(len(fp))  # strictly increasing
    head.knots, head.values = torch.tensor(xp).float(), torch.tensor(np.clip(fp, 0.0, 1.0)).float()
    return head


def fit_head(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], C: float = 1.0) -> Head:
    """Logistic regression on soft grades y in [0, 1] over the named columns of x (N, len(FEATURES))."""
    from sklearn.linear_model import LogisticRegression

    cols = [FEATURES.index(n) for n in names]
    xs = x[:, cols]
    mean, std = xs.mean(0), xs.std(0) + 1e-6
    z = (xs - mean) / std
    n = len(z)
    lr = LogisticRegression(C=C, max_iter=5000).fit(
        np.concatenate([z, z]), np.r_[np.ones(n), np.zeros(n)], sample_weight=np.r_[y, 1 - y]
    )
    return Head(
        tuple(names),
        torch.tensor(mean).float(),
        torch.tensor(std).float(),
        torch.tensor(lr.coef_[0]).float(),
        float(lr.intercept_[0]),
    )


def dev_agreement(score: np.ndarray, grade: np.ndarray, kind: np.ndarray) -> float:
    """Kendall tau-c x100 between score and grade on human-written captions (kinds own, neighbour,
    random): the dev stand-in for agreement with people."""
    from scipy.stats import kendalltau

    human = np.isin(kind, [0, 2, 4])
    return float(kendalltau(score[human], grade[human], variant="c")[0] * 100)


def choose_heads(
    x: np.ndarray, y: np.ndarray, kind: np.ndarray, split: np.ndarray, feature_sets: dict = FEATURE_SETS, c_grid=C_GRID
) -> tuple[dict[str, Head], dict]:
    """Fit every (feature set, C) on train, keep the best on dev, with and without tagger features,
    then refit the winners on train. -> heads {"tagger", "plain"}, dev table."""
    tr, dv = split == "train", split == "dev"
    table: dict[str, float] = {}
    best: dict[str, tuple[float, str, float]] = {}
    for name, feats in tqdm(feature_sets.items(), desc="feature sets", unit="set"):
        group = "tagger" if set(feats) & set(TAGGER_FEATURES) else "plain"
        for C in c_grid:
            head = fit_head(x[tr], y[tr], feats, C)
            cols = [FEATURES.index(n) for n in feats]
            s = head(torch.from_numpy(x[dv][:, cols]).float()).numpy()
            tau = dev_agreement(s, y[dv], kind[dv])
            table[f"{name} C={C}"] = round(tau, 2)
            for g in {group, "tagger"}:  # a plain set may win the tagger slot too
                if g not in best or tau > best[g][0]:
                    best[g] = (tau, name, C)
    heads = {g: fit_head(x[tr], y[tr], feature_sets[name], C) for g, (_, name, C) in best.items()}
    return heads, {
        "dev_tau_c": table,
        "chosen": {g: {"set": n, "C": C, "dev_tau_c": round(t, 2)} for g, (t, n, C) in best.items()},
    }


def reliability_plot(
    score: np.ndarray,
    grade: np.ndarray,
    path: str | Path,
    bins: int = 10,
    title: str = "Confidence on Flickr8k dev pairs",
) -> Path:
    """Reliability diagram: mean score against mean grade per score bin, with the pair counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(score, edges) - 1, 0, bins - 1)
    centres, means, counts = [], [], []
    for b in range(bins):
        m = which == b
        if m.any():
            centres.append(score[m].mean())
            means.append(grade[m].mean())
            counts.append(int(m.sum()))
    fig, (ax, axc) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(centres, means, "o-", label="fitted score")
    ax.set_ylabel("mean grade (1 = own reference)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left")
    axc.bar(centres, counts, width=0.08)
    axc.set_xlabel("confidence")
    axc.set_ylabel("pairs")
    ece = sum(c * abs(a - b) for a, b, c in zip(centres, means, counts, strict=True)) / max(sum(counts), 1)
    ax.text(0.6, 0.1, f"ECE {ece:.3f}", transform=ax.transAxes)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fit(
    checkpoint: str,
    data: str,
    out: str,
    plot: str | None,
    grids_path: str | None,
    names_path: str | None,
    cache: str,
    seed: int = 0,
    matcher: bool = True,
) -> dict:
    """Everything: pairs, features, heads; writes the calibration dict (torch.save) and returns it."""
    from captioner.checkpoint import load_checkpoint
    from captioner.labelmap import LabelMap
    from training.datasets import load_flickr8k

    torch.manual_seed(seed)
    cache_dir = Path(cache)
    cache_dir.mkdir(parents=True, exist_ok=True)
    model, vocab, _ = load_checkpoint(checkpoint)
    labelmap = LabelMap.load() if model.tagger is not None else None
    dataset = load_flickr8k(data)
    splits = {s: dataset.split(s) for s in ("train", "dev")}
    grids = Grids.open(
        model, [im.path for s in splits.values() for im in s], grids_path, names_path, cache_dir, checkpoint
    )
    rows = {s: [grids.index[im.name] for im in ims] for s, ims in splits.items()}
    summaries = photo_summaries(grids)  # (N, 2, C)
    pooled = np.ascontiguousarray(summaries[:, 0])  # (N, C)
    calib = base_calibration(grids, rows["train"], pooled)
    tags = None
    if model.tagger is not None:
        with torch.no_grad():
            tags = np.concatenate(
                [
                    model.tag(torch.from_numpy(pooled[s : s + 1024])[:, None, :]).numpy()
                    for s in range(0, len(pooled), 1024)
                ]
            )
    raw_file = cache_dir / f"pairs-{Path(checkpoint).stem}-{seed}.pkl"
    if raw_file.is_file():
        pairs, photo_lp, avg_lp = pickle.loads(raw_file.read_bytes())
    else:
        beams = beam_captions(model, grids, rows["train"] + rows["dev"], model.cfg.max_len)
        rng = np.random.default_rng(seed)
        pairs = [p for s in ("train", "dev") for p in build_pairs(splits[s], rows[s], s, pooled, beams, vocab, rng)]
        photo_lp = pair_logprobs(model.decoder, grids, [p.row for p in pairs], [p.seq for p in pairs])
        avg_lp = fixed_logprobs(model.decoder, calib.avg_grid, [p.seq for p in pairs])
        raw_file.write_bytes(pickle.dumps((pairs, photo_lp, avg_lp)))
    x = features_from_logprobs(
        model, vocab, labelmap, calib, [p.row for p in pairs], [p.seq for p in pairs], photo_lp, avg_lp, summaries, tags
    )
    refs = {grids.index[im.name]: im.captions for s in splits.values() for im in s}
    y = grades(pairs, refs, vocab)
    kind = np.array([p.kind for p in pairs])
    split = np.array([p.split for p in pairs])
    if matcher:
        match_file = cache_dir / f"matcher-{Path(checkpoint).stem}-{seed}.pt"
        if match_file.is_file():
            saved = torch.load(match_file, weights_only=True)
            calib.matcher, match = Matcher.from_dict(saved["matcher"]), saved["match"].numpy()
        else:
            calib.matcher, match = matcher_features(pairs, summaries, len(vocab), seed=seed)
            torch.save({"matcher": calib.matcher.to_dict(), "match": torch.from_numpy(match)}, match_file)
        x[:, FEATURES.index("match")] = match
    np.savez(
        cache_dir / f"features-{Path(checkpoint).stem}-{seed}.npz",
        x=x,
        y=y,
        kind=kind,
        split=split,
        features=np.array(FEATURES),
    )  # for analysis
    sets = {k: v for k, v in FEATURE_SETS.items() if matcher or "match" not in v}
    heads, report = choose_heads(x, y, kind, split, sets)
    tr = split == "train"
    calib.heads = {g: recalibrate(h, x[tr], y[tr]) for g, h in heads.items()}
    calib.info = {
        "data": "Flickr8k train (fit) / dev (choice)",
        "pairs": {s: int((split == s).sum()) for s in splits},
        "kinds": list(KINDS),
        **report,
    }
    d = calib.to_dict()
    torch.save(d, out)
    if plot:
        head = calib.head_for(labelmap is not None)
        dv = split == "dev"
        s = head(torch.from_numpy(x[dv][:, [FEATURES.index(n) for n in head.features]]).float()).numpy()
        reliability_plot(s, y[dv], plot)
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[2] / "shared/datasets/flickr8k"
    parser.add_argument("checkpoint")
    parser.add_argument("--out", required=True, help="where to torch.save the calibration dict")
    parser.add_argument("--plot", help="reliability diagram PNG of the fitted score on dev pairs")
    parser.add_argument("--data", default=str(default_data))
    parser.add_argument("--grids", help="precomputed (N, P, C) float16 .npy of every photo's encoder grid")
    parser.add_argument("--names", help="JSON list of the photo names of --grids, in order")
    parser.add_argument("--cache", default="runs/confidence-cache")
    parser.add_argument("--no-matcher", action="store_true", help="no learned image-text matcher feature")
    parser.add_argument("--seed", type=int, default=0, help="pairs (neighbours, random captions) and matcher seed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    d = fit(
        args.checkpoint,
        args.data,
        args.out,
        args.plot,
        args.grids,
        args.names,
        args.cache,
        seed=args.seed,
        matcher=not args.no_matcher,
    )
    print(json.dumps(d["info"]["chosen"], indent=1))
    for g, h in d["heads"].items():
        print(
            g,
            dict(zip(h["features"], [round(c, 3) for c in h["coef"].tolist()], strict=False)),
            "bias",
            round(h["bias"], 3),
        )


if __name__ == "__main__":
    main()
