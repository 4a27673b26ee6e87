"""Does the model learn from people? Simulated people through the real code path, on Flickr8k.

    .venv/bin/python benchmarks/learning_split.py                  # base.jsonl + held_back.json
    .venv/bin/captionbot train --data runs/learning/base.jsonl --out runs/learning/base \\
        --epochs 6 --patience 2 --no-hflip                         # the base model (XE only)
    .venv/bin/python -m benchmarks.learning --scenario learn --rounds 3
    .venv/bin/python -m benchmarks.learning --scenario poison-1
    .venv/bin/python -m benchmarks.learning --scenario poison-5

The base model never saw a bicycle (every training photo whose references mention bike, bicycle,
biker or cyclist is held back) nor 1,000 other training photos. People send those photos to the
running service (SQLite + in-process queue + the worker), rate the captions they get (a rater
calibrated on Flickr8k-Expert, benchmarks/learning_people.py) and about one in five sends one of the
photo's human captions as a correction; then a learning round runs (the code of `captionbot learn`).
After every round the served model is scored on the test split: CIDEr-D (greedy) on all photos, and
the share of bicycle photos whose caption names one. Poisoning: the same honest traffic plus one
person (or five) sending 500 identical bogus corrections each, against a control round without them.

Writes runs/learning/<scenario>/results.json and docs/learning-<scenario>.png. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

from benchmarks.learning_people import Crowd, calibrate_threshold, caption_match
from benchmarks.learning_split import CONCEPT_WORDS

RUNS = Path("runs/learning")
BOGUS = "a purple elephant plays the banjo on the moon"


class Scorer:
    """Test- and dev-split scores of a checkpoint, on grids cached once (the encoder never changes)."""

    def __init__(self, base_ckpt: Path, data: Path) -> None:
        from captioner.checkpoint import load_checkpoint
        from training.data import prepare
        from training.datasets import load_dataset

        model, vocab, _ = load_checkpoint(base_ckpt)
        self.data = prepare(
            load_dataset(data),
            encoder=model.cfg.encoder,
            cache_dir="data/features",
            vocab=vocab,
            encoder_module=model.encoder,
            weights_tag="imagenet",
            size=model.cfg.image_size,
        )

    def score(self, ckpt: Path, split: str = "test") -> dict[str, Any]:
        from benchmarks.learning_split import mentions_concept
        from captioner.checkpoint import load_checkpoint
        from training.evaluate import caption_rows
        from training.metrics import evaluate

        model, vocab, _ = load_checkpoint(ckpt)
        sd = self.data.splits[split]
        caps = caption_rows(model, vocab, self.data, sd.rows, beam_size=1)
        cider = evaluate(
            {im.name: c for im, c in zip(sd.images, caps, strict=True)},
            {im.name: im.captions for im in sd.images},
            meteor=False,
        )["CIDEr-D"]
        concept = [c for im, c in zip(sd.images, caps, strict=True) if mentions_concept(im.captions)]
        named = sum(any(w in c.split() for w in CONCEPT_WORDS) for c in concept)
        bogus = set(BOGUS.split()) - {"a", "the", "on", "plays"}
        return {
            "CIDEr-D": float(cider),
            "concept photos": len(concept),
            "concept named": named,
            "concept recall": named / max(len(concept), 1),
            "bogus captions": sum(bool(bogus & set(c.split())) for c in caps),
        }


def settings_for(run: Path, base_ckpt: Path, args: argparse.Namespace) -> Any:
    from captionbot.settings import Settings

    return Settings(
        data_dir=run,
        model_path=base_ckpt,
        device="cpu",
        beam_size=3,
        batch_size=16,
        metrics_port=0,
        telegram_bot_token=None,
        discord_bot_token=None,
        user_burst=100_000,
        user_rate_per_minute=1e7,
        user_max_pending=100_000,
        queue_max_pending=100_000,
        learn_replay_data=str(RUNS / "base.jsonl"),
        learn_fixed_set=str(RUNS / "base.jsonl"),
        learn_epochs=args.epochs,
        learn_lr=args.lr,
        learn_replay_photos=args.replay,
    )


class Answers:
    """The bot's side of the chat: every answer delivered, and a wait for the n-th one."""

    def __init__(self) -> None:
        self.deliveries: list[Any] = []
        self.changed = asyncio.Event()

    async def __call__(self, delivery: Any) -> str:
        self.deliveries.append(delivery)
        self.changed.set()
        return f"reply-{len(self.deliveries)}"

    async def wait_for(self, n: int) -> None:
        while len(self.deliveries) < n:
            self.changed.clear()
            await self.changed.wait()


async def send(
    stack: Any,
    answers: Answers,
    photos: list[Path],
    crowd: Crowd,
    refs: dict[str, list[str]],
    threshold: float,
    bogus_people: int = 0,
    bogus_each: int = 0,
) -> dict[str, int]:
    """Each photo from one simulated person: they rate the caption and maybe correct it."""
    answers.deliveries.clear()
    sender: dict[str, Any] = {}
    for path in photos:
        person = crowd.pick()
        out = await stack.service.submit(
            platform="telegram",
            platform_chat_id=person.name,
            chat_kind="private",
            platform_user_id=person.name,
            display_name=None,
            image_bytes=path.read_bytes(),
            source_message_id=None,
        )
        sender[out.request_id] = (person, path.name)
    await answers.wait_for(len(photos))
    counts = {"photos": len(photos), "good": 0, "bad": 0, "corrections": 0, "bogus": 0}
    svc = stack.service
    done = [d for d in answers.deliveries if d.ok]
    for d in done:
        person, name = sender[d.request_id]
        good = caption_match(d.text or "", refs[name]) >= threshold
        counts["good" if good else "bad"] += 1
        await svc.rate(
            caption_id=d.caption_id, platform="telegram", platform_user_id=person.name, rating=1 if good else -1
        )
        if person.corrects:
            counts["corrections"] += 1
            text = crowd.rng.choice(refs[name])
            await svc.correct(caption_id=d.caption_id, platform="telegram", platform_user_id=person.name, text=text)
    for k in range(bogus_people):
        for d in random.Random(k).sample(done, min(bogus_each, len(done))):
            await svc.correct(caption_id=d.caption_id, platform="telegram", platform_user_id=f"bogus{k}", text=BOGUS)
            counts["bogus"] += 1
    return counts


async def run_scenario(args: argparse.Namespace) -> dict[str, Any]:
    from captionbot.service import LearningService
    from captionbot.storage.db import upgrade_async
    from captionbot_cli.runtime import Stack
    from training.datasets import load_flickr8k
    from training.learning.round import run_round

    flickr = Path(args.data)
    dataset = load_flickr8k(flickr)
    refs = {im.name: im.captions for im in dataset.images}
    paths = {im.name: im.path for im in dataset.images}
    held = json.loads((RUNS / "held_back.json").read_text())
    threshold, accuracy = calibrate_threshold(flickr)
    base_ckpt = RUNS / "base" / "best.pt"
    scorer = Scorer(base_ckpt, RUNS / "base.jsonl")
    run = RUNS / (args.name or args.scenario)
    run.mkdir(parents=True, exist_ok=True)
    for f in run.glob("captionbot.db*"):
        f.unlink()
    settings = settings_for(run, base_ckpt, args)
    # Every scenario starts from the same encoder: one feature cache for all of them.
    shared = RUNS / "features"
    shared.mkdir(parents=True, exist_ok=True)
    settings.learning_dir.mkdir(parents=True, exist_ok=True)
    if not (settings.learning_dir / "features").exists():
        (settings.learning_dir / "features").symlink_to(shared.resolve())
    await upgrade_async(settings.db_url)
    results: dict[str, Any] = {
        "scenario": args.scenario,
        "rater threshold": threshold,
        "rater accuracy": accuracy,
        "settings": {"epochs": args.epochs, "lr": args.lr, "replay": args.replay},
        "rounds": [{"round": 0, "test": scorer.score(base_ckpt), "dev": scorer.score(base_ckpt, "dev")}],
    }
    print(json.dumps(results["rounds"][0]))
    rng = random.Random(0)
    if args.scenario == "learn":
        photos = held["concept"] + held["general"]
        rng.shuffle(photos)
        batches = [photos[i :: args.rounds] for i in range(args.rounds)]
        bogus_people = 0
    else:
        batches = [rng.sample(held["general"], 600)]
        bogus_people = int(args.scenario.split("-")[1]) if args.scenario != "control" else 0
    if args.limit:
        batches = [b[: args.limit] for b in batches]
    answers = Answers()
    stack = await Stack.open(
        settings,
        "all",
        adapters=False,
        before_start=lambda st: st.service.register_delivery_handler("telegram", answers),
    )
    try:
        service = LearningService(settings, stack.session_factory, stack.image_store)
        for r, batch in enumerate(batches, 1):
            t0 = time.perf_counter()
            counts = await send(
                stack,
                answers,
                [paths[n] for n in batch],
                Crowd(400, seed=r),
                refs,
                threshold,
                bogus_people=bogus_people,
                bogus_each=500,
            )
            t1 = time.perf_counter()
            outcome = await run_round(settings, service, progress=True)
            t2 = time.perf_counter()
            print(outcome.report, flush=True)
            promoted = await service.promoted_model()
            ckpt = Path(promoted.path) if promoted else base_ckpt
            row = {
                "round": r,
                "traffic": counts,
                "send minutes": (t1 - t0) / 60,
                "round minutes": (t2 - t1) / 60,
                "decision": outcome.record.decision,
                "counts": outcome.record.counts,
                "gate": {k: outcome.record.metrics.get(k) for k in ("before", "after")},
                "test": scorer.score(ckpt),
                "dev": scorer.score(ckpt, "dev"),
            }
            results["rounds"].append(row)
            print(json.dumps({k: row[k] for k in ("round", "test", "dev", "round minutes", "decision")}), flush=True)
            (run / "results.json").write_text(json.dumps(results, indent=1))
    finally:
        await stack.close()
    return results


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in results["rounds"]]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(rounds, [r["test"]["CIDEr-D"] for r in results["rounds"]], "o-", label="test CIDEr-D")
    ax.set_xlabel("learning round (0 = base model)")
    ax.set_xticks(rounds)
    ax.set_ylabel("test CIDEr-D")
    ax2 = ax.twinx()
    ax2.plot(
        rounds,
        [r["test"]["concept recall"] for r in results["rounds"]],
        "s--",
        color="tab:orange",
        label="bicycle photos named",
    )
    ax2.set_ylabel("share of bicycle photos named")
    ax2.set_ylim(0, 1)
    fig.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Learning from people: {results['scenario']}")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="learn", help="learn | control | poison-1 | poison-5")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default="../shared/datasets/flickr8k")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--replay", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--name", default="", help="run folder under runs/learning (default: the scenario)")
    parser.add_argument("--limit", type=int, default=0, help="photos per round at most (a quick smoke run)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = asyncio.run(run_scenario(args))
    plot(results, Path("docs") / f"learning-{args.name or args.scenario}.png")


if __name__ == "__main__":
    main()
