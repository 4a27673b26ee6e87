"""A round's data: what it trains on and the held-out sets that judge it.

Photos are split by their digest alone (as :func:`training.feedback.dev_split` does), so a photo
keeps its role from round to round: the first ``holdout_fraction`` of the digest range is the
feedback slice, the next ``fixed_fraction`` is reserved for the frozen fixed set; neither is ever
trained on. Training takes the new feedback on the other photos, the earlier feedback again (replay),
and a sample of a configured dataset (replay, so the model keeps what it knew).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from captioner.vocab import Vocabulary
from training.datasets import CaptionDataset
from training.learning.hygiene import Screened, Text
from training.learning.policy import Policy

_BITS = 32


def photo_bucket(sha256: str) -> float:
    """A photo's place in [0, 1), from its digest."""
    return int(sha256[: _BITS // 4], 16) / (1 << _BITS)


def photo_role(sha256: str, policy: Policy) -> str:
    """ "holdout" (judges candidates), "fixed" (reserved for the fixed set) or "train"."""
    b = photo_bucket(sha256)
    if b < policy.holdout_fraction:
        return "holdout"
    if b < policy.holdout_fraction + policy.fixed_fraction:
        return "fixed"
    return "train"


@dataclass(frozen=True)
class Example:
    """One caption to train on: ``ids`` are <start> .. <end>; a negative example is pushed away from."""

    key: str  # GridBank key of the photo
    ids: tuple[int, ...]
    weight: float
    negative: bool = False
    source: str = "feedback"  # feedback | replay


@dataclass
class EvalSet:
    """Photos with reference captions, for scoring (keys into the GridBank)."""

    name: str
    refs: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.refs)


@dataclass
class RoundData:
    examples: list[Example]
    feedback_photos: dict[str, str]  # sha256 -> file, every feedback photo the round needs a grid of
    slice: EvalSet
    fixed: EvalSet
    counts: dict[str, int]


def positive_refs(texts: list[Text]) -> dict[str, list[str]]:
    refs: dict[str, list[str]] = defaultdict(list)
    for t in texts:
        if t.kind != "bad" and t.text not in refs[t.photo]:
            refs[t.photo].append(t.text)
    return dict(refs)


def build(
    screened: Screened,
    vocab: Vocabulary,
    policy: Policy,
    *,
    max_len: int,
    fixed_photos: list[str],
    replay: CaptionDataset | None,
    fixed_dataset: CaptionDataset | None,
    seed: int,
) -> RoundData:
    """The round's examples and held-out sets. ``fixed_photos`` is the frozen feedback fixed set
    (used when no ``fixed_dataset``); ``replay`` a dataset sampled for replay."""
    texts = screened.texts
    roles = {t.photo: photo_role(t.photo, policy) for t in texts}
    paths = {t.photo: t.path for t in texts}
    examples: list[Example] = []
    counts: defaultdict[str, int] = defaultdict(int)
    positives_of = positive_refs(texts)
    for t in texts:
        if roles[t.photo] != "train":
            continue
        ids = tuple(vocab.encode(t.text, max_len))
        if t.kind == "bad":
            if t.text in positives_of.get(t.photo, []):  # someone else said this caption is right
                continue
            examples.append(Example(t.photo, ids, t.weight, negative=True))
        else:
            # Earlier feedback comes back as replay at half weight; new feedback is what the round is for,
            # shown ``feedback_repeats`` times so a few hundred items are not lost among the replay.
            repeats = policy.feedback_repeats if t.new else 1
            examples.extend([Example(t.photo, ids, t.weight if t.new else 0.5 * t.weight)] * repeats)
        counts[f"train {t.kind}" + ("" if t.new else " (earlier)")] += 1
    rng = random.Random(seed)
    if replay is not None and policy.replay_photos:
        pool = replay.split("train")
        for im in rng.sample(pool, min(policy.replay_photos, len(pool))):
            caption = rng.choice(im.captions)
            examples.append(
                Example(str(im.path.resolve()), tuple(vocab.encode(caption, max_len)), 1.0, source="replay")
            )
        counts["train replay"] = min(policy.replay_photos, len(pool))
    # The slice is judged on what people wrote themselves: a caption rated good was written by the
    # serving model, and would favour it over any candidate.
    corrected = positive_refs([t for t in texts if t.kind == "correction"])
    slice_set = EvalSet("feedback slice", {p: r for p, r in corrected.items() if roles[p] == "holdout"})
    if fixed_dataset is not None:
        fixed = EvalSet("fixed set (dev)", {str(im.path.resolve()): im.captions for im in fixed_dataset.split("dev")})
    else:
        fixed = EvalSet("fixed set (frozen feedback)", {p: positives_of[p] for p in fixed_photos if p in positives_of})
    needed = {t.photo for t in texts if roles[t.photo] == "train"} | set(slice_set.refs)
    needed |= {p for p in fixed.refs if p in paths}
    counts["held-out photos"] = len(slice_set)
    counts["fixed-set photos"] = len(fixed)
    return RoundData(examples, {p: paths[p] for p in needed}, slice_set, fixed, dict(counts))


def choose_fixed_photos(screened: Screened, policy: Policy) -> list[str]:
    """The frozen fixed set, chosen once: reserved photos with at least one positive text."""
    refs = positive_refs(screened.texts)
    chosen = sorted(p for p in refs if photo_role(p, policy) == "fixed")
    return chosen[: policy.fixed_max_photos]


def dataset_paths(dataset: CaptionDataset) -> list[Path]:
    """Train + dev photos of a dataset, in file order: the list its feature cache is keyed by."""
    return [im.path for im in dataset.images if im.split in ("train", "dev")]
