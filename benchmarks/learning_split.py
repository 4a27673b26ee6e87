"""The data split behind benchmarks/learning.py: Flickr8k with the bicycle photos and 1,000 other
training photos held back from the base model (people send them later, as feedback).

    .venv/bin/python benchmarks/learning_split.py --out runs/learning/base.jsonl

writes the base model's dataset (train minus held-back photos; dev and test unchanged) and
``held_back.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

CONCEPT = re.compile(r"\b(bikes?|bicycles?|bikers?|cyclists?)\b", re.IGNORECASE)
CONCEPT_WORDS = ("bike", "bikes", "bicycle", "bicycles", "biker", "bikers", "cyclist", "cyclists")


def mentions_concept(captions: list[str]) -> bool:
    return any(CONCEPT.search(c) for c in captions)


def split(data: Path, *, general: int = 1000, seed: int = 0) -> tuple[list[dict], dict[str, list[str]]]:
    """-> (base dataset rows, {"concept": [names], "general": [names]}) of the held-back train photos."""
    from training.datasets import load_flickr8k

    dataset = load_flickr8k(data)
    concept = [im.name for im in dataset.split("train") if mentions_concept(im.captions)]
    others = sorted(im.name for im in dataset.split("train") if not mentions_concept(im.captions))
    general_names = random.Random(seed).sample(others, general)
    held = set(concept) | set(general_names)
    rows = [
        {"image": str(im.path.resolve()), "captions": im.captions, "split": im.split}
        for im in dataset.images
        if not (im.split == "train" and im.name in held)
    ]
    return rows, {"concept": sorted(concept), "general": sorted(general_names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/flickr8k")
    parser.add_argument("--out", type=Path, default=Path("runs/learning/base.jsonl"))
    parser.add_argument("--general", type=int, default=1000)
    args = parser.parse_args()
    rows, held = split(Path(args.data), general=args.general)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (args.out.parent / "held_back.json").write_text(json.dumps(held, indent=1))
    train = sum(r["split"] == "train" for r in rows)
    print(
        f"{args.out}: {train} train photos; held back {len(held['concept'])} bicycle and {len(held['general'])} other"
    )


if __name__ == "__main__":
    main()
