"""What each part of a round is worth: replay alone, and the bad ratings' unlikelihood term.

    .venv/bin/python -m benchmarks.learning_ablation --run runs/learning/learn

- replay only: the base model fine-tuned as ``--rounds`` rounds would, on the replay data alone
  (no feedback): how much of a round's gain is just more training;
- with and without unlikelihood: the feedback a finished `benchmarks/learning.py` run left in its
  database, one candidate from the base model on all of it (the round's own code,
  `train_candidate`), ``learn_bad_weight`` 0 against the default. Both are scored on the test split
  (CIDEr-D, bicycle photos named) and on the held-out feedback photos people rated bad: how often
  the candidate says again a content word that was in the bad caption and in none of the photo's
  references.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.learning import RUNS, Scorer
from captioner.vocab import tokenize
from training.learning.hygiene import FUNCTION_WORDS


async def feedback(run: Path) -> list[Any]:
    from captionbot.service import LearningService
    from captionbot.settings import Settings
    from captionbot.storage.db import create_engine, make_session_factory
    from captionbot.storage.imagestore import ImageStore

    settings = Settings(data_dir=run)
    engine = create_engine(settings.db_url)
    try:
        service = LearningService(settings, make_session_factory(engine), ImageStore(settings.photos_dir))
        return await service.usable_feedback()
    finally:
        await engine.dispose()


def repeats(ckpt: Path, items: list[Any], refs: dict[str, list[str]]) -> dict[str, float]:
    """On held-out photos rated bad: share of captions that repeat a wrong content word."""
    from PIL import Image

    from captioner.inference import CaptionEngine
    from training.learning.policy import Policy, rating_kind
    from training.learning.targets import photo_role

    policy = Policy()
    bad = [i for i in items if rating_kind(i.rating) == "bad" and photo_role(i.image_sha256, policy) == "holdout"]
    engine = CaptionEngine.load(ckpt, device="cpu")
    hits = 0
    for i in bad:
        wrong = (
            set(tokenize(i.caption_text))
            - FUNCTION_WORDS
            - {w for r in refs.get(i.image_sha256, []) for w in tokenize(r)}
        )
        with Image.open(i.image_path) as im:
            said = set(tokenize(engine.caption([im.convert("RGB")], beam_size=1)[0].text))
        hits += bool(wrong & said)
    return {"held-out bad photos": len(bad), "repeat a wrong word": hits / max(len(bad), 1)}


def replay_only(settings: Any, base: Path, rounds: int, out: Path) -> Path:
    """The base model after ``rounds`` rounds' worth of fine-tuning on replay data alone."""
    from captioner.checkpoint import load_checkpoint, save_checkpoint
    from training.datasets import load_dataset
    from training.learning import targets
    from training.learning.hygiene import Screened
    from training.learning.photo_features import GridBank, add_dataset_photos
    from training.learning.policy import Policy
    from training.learning.tuning import fine_tune

    model, vocab, payload = load_checkpoint(base)
    policy = Policy.from_settings(settings)
    dataset = load_dataset(settings.learn_replay_data)
    for r in range(1, rounds + 1):
        data = targets.build(
            Screened([]),
            vocab,
            policy,
            max_len=model.cfg.max_len,
            fixed_photos=[],
            replay=dataset,
            fixed_dataset=None,
            seed=r,
        )
        bank = GridBank()
        add_dataset_photos(
            bank,
            model,
            targets.dataset_paths(dataset),
            {e.key for e in data.examples},
            settings.learning_dir / "features",
        )
        fine_tune(model, vocab, bank, data.examples, policy)
    return save_checkpoint(out, model, vocab, extra={"version": "replay-only"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUNS / "learn")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--replay", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from captionbot.service.learning_results import RoundLease
    from captionbot.settings import Settings
    from training.datasets import load_flickr8k
    from training.learning.candidate import train_candidate
    from training.learning.hygiene import screen
    from training.learning.policy import Policy

    items = asyncio.run(feedback(args.run))
    base = RUNS / "base" / "best.pt"
    flickr = load_flickr8k("../shared/datasets/flickr8k")
    # The service stores photos by the sha256 of their bytes: find each one's human captions that way.
    refs = {hashlib.sha256(im.path.read_bytes()).hexdigest(): im.captions for im in flickr.images}
    scorer = Scorer(base, RUNS / "base.jsonl")
    results: dict[str, Any] = {"base": scorer.score(base)}
    for weight in (None, 0.0, 0.5):
        out = args.run / f"ablation-bad{weight}"
        settings = Settings(
            data_dir=out,
            model_path=base,
            device="cpu",
            learn_bad_weight=weight or 0.0,
            learn_epochs=args.epochs,
            learn_lr=args.lr,
            learn_replay_data=str(RUNS / "base.jsonl"),
            learn_fixed_set=str(RUNS / "base.jsonl"),
        )
        settings.learning_dir.mkdir(parents=True, exist_ok=True)
        if not (settings.learning_dir / "features").exists():
            (settings.learning_dir / "features").symlink_to((RUNS / "features").resolve())
        if weight is None:
            ckpt = replay_only(settings, base, args.rounds, out / "replay-only.pt")
            results["replay only"] = scorer.score(ckpt)
            print(json.dumps(results, indent=1), flush=True)
            continue
        policy = Policy.from_settings(settings)
        now = datetime.now(UTC)
        lease = RoundLease(0, 1, now, now, None, [])
        trained = train_candidate(settings, policy, lease, screen(items, policy), [], stop=threading.Event())
        assert trained.candidate is not None, trained.decision
        ckpt = Path(trained.candidate.path)
        results[f"bad weight {weight}"] = scorer.score(ckpt) | repeats(ckpt, items, refs)
        print(json.dumps(results, indent=1), flush=True)
    (args.run / "ablation.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
