"""Simulated people for benchmarks/learning.py: who sends which photo, how they rate, what they type.

A rater calls a caption good when it shares enough content words with the photo's human references
(:func:`caption_match`, the F1 of content words against the closest reference). The threshold is set
once on Flickr8k-Expert (``ExpertAnnotations.txt``: 5,822 image/caption pairs judged 1-4 by three
experts): the value that best separates pairs the experts scored 3 or more on average from the rest.
Only the simulated raters are tuned on that file; nothing the model learns from or is selected on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from captioner.vocab import tokenize
from training.learning.hygiene import agreement


def caption_match(caption: str, references: list[str]) -> float:
    words = tokenize(caption)
    return max((agreement(words, tokenize(r)) for r in references), default=0.0)


def calibrate_threshold(flickr8k: Path) -> tuple[float, float]:
    """-> (threshold, accuracy on Flickr8k-Expert) for "good" = experts' mean score >= 3."""
    captions: dict[str, list[str]] = {}
    by_id: dict[str, str] = {}
    for line in (flickr8k / "Flickr8k.token.txt").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            key, text = line.split("\t", 1)
            by_id[key] = text
            captions.setdefault(key.rsplit("#", 1)[0], []).append(text)
    pairs: list[tuple[float, bool]] = []
    for line in (flickr8k / "ExpertAnnotations.txt").read_text().splitlines():
        image, cap_id, *scores = line.split("\t")
        refs = [c for k, c in ((f"{image}#{i}", c) for i, c in enumerate(captions.get(image, []))) if k != cap_id]
        if cap_id in by_id and refs:
            pairs.append((caption_match(by_id[cap_id], refs), sum(map(int, scores)) / 3 >= 3))
    best = max(
        ((t / 100, sum((s >= t / 100) == good for s, good in pairs) / len(pairs)) for t in range(5, 95)),
        key=lambda x: x[1],
    )
    return best


@dataclass
class Person:
    name: str
    corrects: bool  # about one in five people sends a better caption


class Crowd:
    """A pool of people; each photo is sent (and its caption rated) by one of them."""

    def __init__(self, size: int, seed: int, correct_share: float = 0.2) -> None:
        rng = random.Random(seed)
        self.people = [Person(f"sim{seed}-{i}", rng.random() < correct_share) for i in range(size)]
        self.rng = rng

    def pick(self) -> Person:
        return self.rng.choice(self.people)
