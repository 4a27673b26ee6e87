"""How likely a person accepts a caption for a photo: a calibrated score in [0, 1], without references.

The score is a logistic regression (fitted by training/confidence.py on Flickr8k train pairs) over what
the model itself knows about a (photo, caption) pair:

- how likely the decoder finds the caption given the photo (mean / min token log-probability, length),
- the same given the "average photo" (the mean training grid): a generic caption ("a man is standing")
  is likely for any photo, and the difference is its pointwise mutual information with this photo,
- whether the caption names what the ImageNet tagger sees (label map words it mentions, and the
  tagger's top word when the caption does not mention it),
- how sure the tagger is and how unusual the photo is (distance of its pooled feature to training
  clusters),
- a small image-text matcher learned contrastively on Flickr8k train (cosine between a projection of
  the photo's pooled feature and one of the caption's bag of words).

At caption time it is plain torch arithmetic on stored coefficients (captioner/confidence_calibration.py).
Without a calibration the score falls back to the geometric-mean token probability; without a tagger,
to a fit without tagger features.

Shapes: N captions, B photos, P = 49 grid positions, C = encoder channels, T = longest caption in words,
K = tagger classes, W = the label map's sayable words, F = features, M = OOD centroids.
"""

from __future__ import annotations

import math
from typing import TypeVar

import torch

from captioner.confidence_calibration import ConfidenceCalibration
from captioner.mentions import mention_index
from captioner.model import StepDecoder
from captioner.scoring import caption_logprobs

# Every feature caption_features can compute, in column order. A head uses a subset by name.
FEATURES = (
    "mean_lp",  # mean log p of the words and <end> given the photo
    "min_lp",  # the least likely token given the photo
    "log_len",  # log(words + 1)
    "avg_mean_lp",  # mean log p given the average photo (PMI = mean_lp - avg_mean_lp, weight fitted)
    "min_tok_pmi",  # min over tokens of log p(w | photo) - log p(w | average photo)
    "max_tok_pmi",  # max of the same
    "mention_mass",  # tagger probability of the label-map words the caption names
    "claim_logp",  # log tagger probability of the most probable word the caption names (0 if none)
    "has_claim",  # 1 if the caption names any label-map word
    "contradiction",  # tagger probability of its top word when the caption does not name it
    "tag_max",  # the tagger's largest class probability
    "tag_entropy",  # the tagger's entropy / log K
    "ood",  # log squared distance of the pooled feature to its nearest training centroid, minus the median
    "match",  # the matcher's cosine between photo and caption (0 without a matcher)
)
TAGGER_FEATURES = ("mention_mass", "claim_logp", "has_claim", "contradiction", "tag_max", "tag_entropy")
_CLAIM_FLOOR = 1e-4


# Teacher-forced log p of each word and of <end> (captioner.scoring): one implementation for both.
token_logprobs = caption_logprobs

_T = TypeVar("_T")


def photo_summary(grid: torch.Tensor) -> torch.Tensor:
    """grid (N, P, C) -> (N, 2, C): the mean and the max over grid positions, all that the photo-level
    features (tagger, OOD, matcher) read."""
    grid = grid.float()
    return torch.stack([grid.mean(1), grid.amax(1)], 1)


def _ood(pooled: torch.Tensor, calib: ConfidenceCalibration | None) -> torch.Tensor:
    """pooled (N, C) -> (N,) log min squared distance to a training centroid, minus the training median."""
    if calib is None or calib.centroids is None:
        return torch.zeros(pooled.shape[0])
    d2 = torch.cdist(pooled.float().cpu(), calib.centroids.float()).pow(2).min(1).values  # (N,)
    return torch.log(d2 + 1e-6) - calib.ood_median


def _needed(value: _T | None, what: str) -> _T:
    """`value`, which caption_features cannot do without given the other arguments."""
    if value is None:
        raise ValueError(f"caption_features needs {what}")
    return value


@torch.no_grad()
def caption_features(
    model,
    grid: torch.Tensor | None,
    seqs: list[list[int]],
    *,
    vocab=None,
    labelmap=None,
    calib: ConfidenceCalibration | None = None,
    token_lp: torch.Tensor | None = None,
    avg_lp: torch.Tensor | None = None,
    tag_probs: torch.Tensor | None = None,
    decoder: StepDecoder | None = None,
    summary: torch.Tensor | None = None,
) -> torch.Tensor:
    """Features (N, len(FEATURES)) of caption i (word ids, no <start>/<end>) for its photo grid[i] (N, P, C).

    token_lp / avg_lp (N, T+1): teacher-forced log-probabilities given the photo / the average photo, when
    already known (0 after <end>); tag_probs (N, K) the tagger's class probabilities (None: computed when
    the model has a tagger and a label map is given). decoder: the decoder to score with (default
    model.decoder; the engine passes its int8 copy). summary (N, 2, C): photo_summary(grid), when known
    (then grid may be None if token_lp and avg_lp are given too). Tagger features are 0 without tagger or
    label map; avg features equal the photo ones without calibration; match is 0 without a matcher.
    """
    if decoder is None and model is not None:
        decoder = model.decoder
    if summary is None:
        summary = photo_summary(_needed(grid, "the grid or its summary"))  # (N, 2, C)
    N = len(seqs)
    lengths = torch.tensor([len(s) + 1 for s in seqs], dtype=torch.float32)  # tokens incl. <end>
    if token_lp is None:
        token_lp = token_logprobs(_needed(decoder, "a model or decoder"), _needed(grid, "the grid or token_lp"), seqs)
    token_lp = token_lp.float().cpu()  # (N, T+1)
    valid = torch.arange(token_lp.shape[1])[None, :] < lengths[:, None]  # (N, T+1)
    if avg_lp is None:
        if calib is not None and calib.avg_grid is not None:
            device = grid.device if grid is not None else summary.device
            avg = calib.avg_grid.to(device)[None]  # (1, P, C)
            owner = torch.zeros(N, dtype=torch.long, device=device)
            avg_lp = token_logprobs(_needed(decoder, "a model or decoder"), avg, seqs, owner)
        else:
            avg_lp = token_lp
    avg_lp = avg_lp.float().cpu()
    big = torch.tensor(1e9)
    mean_lp = token_lp.sum(1) / lengths
    tok_pmi = token_lp - avg_lp  # (N, T+1)
    cols = {
        "mean_lp": mean_lp,
        "min_lp": torch.where(valid, token_lp, big).min(1).values,
        "log_len": torch.log(lengths),
        "avg_mean_lp": avg_lp.sum(1) / lengths,
        "min_tok_pmi": torch.where(valid, tok_pmi, big).min(1).values,
        "max_tok_pmi": torch.where(valid, tok_pmi, -big).max(1).values,
    }
    if tag_probs is None and labelmap is not None and getattr(model, "tagger", None) is not None:
        tag_probs = model.tag(grid if grid is not None else summary[:, :1])  # (N, K); summary: its mean
    if tag_probs is not None and labelmap is not None and vocab is not None:
        tag_probs = tag_probs.float().cpu()  # (N, K)
        wp = labelmap.word_probs(tag_probs)  # (N, W)
        named = mention_index(vocab, labelmap).mask(seqs)  # (N, W)
        claim = (wp * named).max(1).values  # (N,)
        has = named.max(1).values
        top_p, top_w = wp.max(1)
        top_named = named.gather(1, top_w[:, None]).squeeze(1)
        cols |= {
            "mention_mass": (wp * named).sum(1),
            "claim_logp": has * torch.log(claim + _CLAIM_FLOOR),
            "has_claim": has,
            "contradiction": top_p * (1 - top_named),
            "tag_max": tag_probs.max(1).values,
            "tag_entropy": -(tag_probs * torch.log(tag_probs + 1e-12)).sum(1) / math.log(tag_probs.shape[1]),
        }
    else:
        cols |= {name: torch.zeros(N) for name in TAGGER_FEATURES}
    cols["ood"] = _ood(summary[:, 0], calib)
    if calib is not None and calib.matcher is not None:
        cols["match"] = calib.matcher(summary, seqs)
    else:
        cols["match"] = torch.zeros(N)
    return torch.stack([cols[name] for name in FEATURES], 1)  # (N, F)


def select(x: torch.Tensor, names: tuple[str, ...] | list[str]) -> torch.Tensor:
    """Columns of caption_features' (N, F) output by feature name -> (N, len(names))."""
    return x[:, [FEATURES.index(n) for n in names]]


def fallback_score(x: torch.Tensor) -> torch.Tensor:
    """Features (N, F) -> (N,) the geometric-mean token probability: the score without a calibration."""
    return torch.exp(select(x, ["mean_lp"])[:, 0]).clamp(0.0, 1.0)


@torch.no_grad()
def score(
    model,
    grid: torch.Tensor,
    seqs: list[list[int]],
    *,
    vocab=None,
    labelmap=None,
    calib: ConfidenceCalibration | dict | None = None,
    token_lp: torch.Tensor | None = None,
    tag_probs: torch.Tensor | None = None,
    decoder: StepDecoder | None = None,
) -> torch.Tensor:
    """(N,) probability in [0, 1] that a person accepts caption i for photo grid[i] (N, P, C).

    calib: a ConfidenceCalibration or its dict (payload["calibration"]["confidence"]); None or empty:
    the geometric-mean token probability. The tagger head is used when the model has one, a label map
    and the vocabulary are given and the calibration has a "tagger" head; otherwise the "plain" head.
    """
    if isinstance(calib, dict) or calib is None:
        calib = ConfidenceCalibration.from_dict(calib)
    if not seqs:
        return torch.zeros(0)
    tagger_ok = (
        labelmap is not None
        and vocab is not None
        and (tag_probs is not None or getattr(model, "tagger", None) is not None)
    )
    head = calib.head_for(tagger_ok) if calib is not None else None
    x = caption_features(
        model,
        grid,
        seqs,
        vocab=vocab,
        labelmap=labelmap if tagger_ok else None,
        calib=calib,
        token_lp=token_lp,
        tag_probs=tag_probs if tagger_ok else None,
        decoder=decoder,
    )  # (N, F)
    if head is None:
        return fallback_score(x)
    return head(select(x, head.features)).clamp(0.0, 1.0)
