"""The fitted parts of the caption confidence score (captioner.confidence), as stored in a checkpoint.

A logistic regression head per feature set (with an optional monotone recalibration), the image-text
matcher, the average photo and the OOD centroids; fitted by training/confidence.py, stored as
payload["calibration"]["confidence"] in plain dicts of tensors.

Shapes: P = 49 grid positions, C = encoder channels, F = features, M = OOD centroids, S = matcher seeds,
D = matcher dimension, V = vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class Head:
    """One logistic regression: sigmoid(bias + coef . z), z = the standardised named features and, for
    each pair in `products`, the product of those two standardised features."""

    features: tuple[str, ...]
    mean: torch.Tensor  # (F,)
    std: torch.Tensor  # (F,)
    coef: torch.Tensor  # (F + len(products),)
    bias: float
    products: tuple[tuple[int, int], ...] = ()
    knots: torch.Tensor | None = None  # (Q,) increasing logits; with `values`, a monotone recalibration
    values: torch.Tensor | None = None  # (Q,) increasing probabilities at the knots (linear in between)

    def design(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features (N, F) in this head's order -> standardised design matrix (N, F + products)."""
        z = (x.float() - self.mean.to(x.device)) / self.std.to(x.device)
        extra = [z[:, i] * z[:, j] for i, j in self.products]
        return torch.cat([z, torch.stack(extra, 1)], 1) if extra else z

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        """(N, F) -> (N,) the regression's logit."""
        return self.design(x) @ self.coef.to(x.device).float() + self.bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(N, F) -> (N,) probability in [0, 1]."""
        z = self.logit(x)
        if self.knots is None or self.values is None:
            return torch.sigmoid(z)
        return interp(z, self.knots.to(z.device), self.values.to(z.device))

    def to_dict(self) -> dict:
        d = {
            "features": list(self.features),
            "mean": self.mean.float(),
            "std": self.std.float(),
            "coef": self.coef.float(),
            "bias": float(self.bias),
            "products": [list(p) for p in self.products],
        }
        if self.knots is not None and self.values is not None:
            d |= {"knots": self.knots.float(), "values": self.values.float()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Head:
        return cls(
            tuple(d["features"]),
            torch.as_tensor(d["mean"]).float(),
            torch.as_tensor(d["std"]).float(),
            torch.as_tensor(d["coef"]).float(),
            float(d["bias"]),
            tuple(tuple(p) for p in d.get("products", ())),
            _tensor(d.get("knots")),
            _tensor(d.get("values")),
        )


def interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """numpy.interp for increasing xp (Q,): piecewise linear, constant beyond the ends."""
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, len(xp) - 1)
    x0, x1, y0, y1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    w = ((x - x0) / (x1 - x0).clamp(min=1e-12)).clamp(0.0, 1.0)
    return y0 + w * (y1 - y0)


@dataclass
class Matcher:
    """Image-text agreement: the mean over S seeds of cos(W_img z + b_img, W_txt t + b_txt), z = the
    standardised photo summary (the grid's mean and max over positions, 2C; or the mean only, C),
    t = the caption's bag of (distinct, non-special) word ids / count. Trained contrastively on
    Flickr8k train captions (training/confidence.py)."""

    mu: torch.Tensor  # (Z,) Z = 2C (mean and max) or C (mean)
    sd: torch.Tensor  # (Z,)
    img_w: torch.Tensor  # (S, D, Z)
    img_b: torch.Tensor  # (S, D)
    txt_w: torch.Tensor  # (S, D, V)
    txt_b: torch.Tensor  # (S, D)

    def bags(self, seqs: list[list[int]]) -> torch.Tensor:
        """N word-id lists -> (N, V) normalised bags of words (ids outside the vocabulary are ignored)."""
        V = self.txt_w.shape[2]
        out = torch.zeros(len(seqs), V)
        for i, s in enumerate(seqs):
            ids = [w for w in s if 4 <= w < V]
            if ids:
                out[i, ids] = 1.0
        return out / out.sum(1, keepdim=True).clamp(min=1.0)

    def __call__(self, summary: torch.Tensor, seqs: list[list[int]]) -> torch.Tensor:
        """summary (N, 2, C) (photo_summary) or (N, Z), N captions -> (N,) cosine in [-1, 1]."""
        summary = summary.float().cpu()
        if summary.dim() == 3:
            summary = summary.flatten(1) if summary.shape[1] * summary.shape[2] == len(self.mu) else summary[:, 0]
        z = (summary - self.mu) / self.sd  # (N, Z)
        t = self.bags(seqs)  # (N, V)
        fi = F.normalize(torch.einsum("nc,sdc->snd", z, self.img_w) + self.img_b[:, None], dim=2)  # (S, N, D)
        ft = F.normalize(torch.einsum("nv,sdv->snd", t, self.txt_w) + self.txt_b[:, None], dim=2)
        return (fi * ft).sum(2).mean(0)

    def to_dict(self) -> dict:
        return {k: getattr(self, k).half() for k in ("mu", "sd", "img_w", "img_b", "txt_w", "txt_b")}

    @classmethod
    def from_dict(cls, d: dict | None) -> Matcher | None:
        if not d:
            return None
        return cls(**{k: torch.as_tensor(d[k]).float() for k in ("mu", "sd", "img_w", "img_b", "txt_w", "txt_b")})


@dataclass
class ConfidenceCalibration:
    """What the fitted score needs besides the model: stored as payload["calibration"]["confidence"]."""

    avg_grid: torch.Tensor | None = None  # (P, C) mean encoder grid of the training photos
    centroids: torch.Tensor | None = None  # (M, C) k-means centroids of training photos' pooled features
    ood_median: float = 0.0  # median over training photos of log(min squared distance to a centroid)
    heads: dict[str, Head] = field(default_factory=dict)  # "tagger": all features, "plain": no tagger ones
    matcher: Matcher | None = None
    info: dict = field(default_factory=dict)  # how it was fitted (data, sizes, dev figures): plain values

    def head_for(self, with_tagger: bool) -> Head | None:
        if with_tagger and "tagger" in self.heads:
            return self.heads["tagger"]
        return self.heads.get("plain")

    def to_dict(self) -> dict:
        """Plain dict of tensors, floats, strings and lists (loads with torch.load(weights_only=True))."""
        return {
            "version": 1,
            "avg_grid": None if self.avg_grid is None else self.avg_grid.half(),
            "centroids": None if self.centroids is None else self.centroids.half(),
            "ood_median": float(self.ood_median),
            "heads": {k: h.to_dict() for k, h in self.heads.items()},
            "matcher": None if self.matcher is None else self.matcher.to_dict(),
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> ConfidenceCalibration | None:
        if not d:
            return None
        return cls(
            _tensor(d.get("avg_grid")),
            _tensor(d.get("centroids")),
            float(d.get("ood_median", 0.0)),
            {k: Head.from_dict(h) for k, h in (d.get("heads") or {}).items()},
            Matcher.from_dict(d.get("matcher")),
            dict(d.get("info") or {}),
        )


def _tensor(v) -> torch.Tensor | None:
    return None if v is None else torch.as_tensor(v).float()
