"""The confidence score's logistic regression heads: fitted on train pairs' soft grades, chosen
(feature set, regularisation) by agreement on dev, then recalibrated monotonically."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from captioner.confidence import FEATURES, TAGGER_FEATURES
from captioner.confidence_calibration import Head

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
