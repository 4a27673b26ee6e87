"""How strongly should the tagger steer captions? A sweep of the force threshold.

For each threshold on the tagger's summed word probability, the photos are captioned with
constrained beam search wherever the tagger is that sure and the caption misses its word, and
scored: Flickr8k dev (CIDEr-D, BLEU-4; where thresholds are chosen) and coco-mini (CIDEr-D and
"names the main thing", training.main_thing). Flickr8k test is left alone: it is for reporting.

    .venv/bin/python benchmarks/guidance_sweep.py MODEL [--thresholds 1.01 0.8 0.6 0.5 0.4 0.3] \\
        [--flickr8k ../shared/datasets/flickr8k] [--coco ../shared/datasets/coco-mini] [--out sweep.json]

A threshold above 1 means "never force" (the model's free captions). Not a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from captionbot.images import load_image  # noqa: E402
from captioner.inference import CaptionEngine  # noqa: E402
from captioner.preprocess import to_batch  # noqa: E402
from training.main_thing import names_main_thing  # noqa: E402
from training.metrics import evaluate  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared/datasets"


@torch.inference_mode()
def encode(engine: CaptionEngine, paths: list[Path], what: str) -> torch.Tensor:
    grids = []
    for p in tqdm(paths, desc=f"encoding {what}", unit="photo"):
        # Decoded straight to the model's size, as the worker does (JPEG DCT scaling).
        x = to_batch([load_image(p, squash_to=engine.cfg.image_size)], engine.cfg.encoder, engine.cfg.image_size)
        grids.append(engine.model.encode(x.contiguous(memory_format=torch.channels_last)).float())
    return torch.cat(grids)  # (N, P, C)


def caption_all(engine: CaptionEngine, grid: torch.Tensor, batch: int = 100) -> list:
    out = []
    for s in range(0, grid.shape[0], batch):
        out.extend(engine.caption_grid(grid[s : s + batch]))
    return out


def flickr8k_dev(root: Path) -> tuple[list[Path], list[list[str]]]:
    from training.datasets import load_flickr8k

    dev = load_flickr8k(root).split("dev")
    return [root / "Images" / im.name for im in dev], [im.captions for im in dev]


def coco_mini(root: Path) -> tuple[list[Path], list[list[str]]]:
    rows = [json.loads(line) for line in (root / "captions.jsonl").read_text().splitlines() if line.strip()]
    return [root / "Images" / r["image"] for r in rows], [r["captions"] for r in rows]


def selection_sets(flickr8k: Path, coco: Path) -> dict[str, tuple[list[Path], list[list[str]]]]:
    """The sets thresholds may be chosen on, those that are there: {name: (photos, references)}."""
    sets = {}
    if (flickr8k / "Flickr8k.token.txt").is_file():
        sets["flickr8k-dev"] = flickr8k_dev(flickr8k)
    if (coco / "captions.jsonl").is_file():
        sets["coco-mini"] = coco_mini(coco)
    return sets


def score(results: list, refs: list[list[str]]) -> dict:
    cands = {i: r.text for i, r in enumerate(results)}
    m = evaluate(cands, dict(enumerate(refs)), meteor=False)
    named = sum(names_main_thing(r.text, rs) for r, rs in zip(results, refs, strict=True))
    return {"CIDEr-D": m["CIDEr-D"], "BLEU-4": m["BLEU-4"], "main_thing": named / len(refs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--thresholds", nargs="+", type=float, default=[1.01, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    ap.add_argument(
        "--max-drops",
        nargs="+",
        type=float,
        default=[float("inf")],
        help="largest drop in mean log-probability per word a forced caption may cost",
    )
    ap.add_argument(
        "--always-above",
        type=float,
        default=1.01,
        help="tagger probability from which the word is forced whatever the drop",
    )
    ap.add_argument("--flickr8k", type=Path, default=SHARED / "flickr8k")
    ap.add_argument("--coco", type=Path, default=SHARED / "coco-mini")
    ap.add_argument("--out", type=Path, default=Path("runs/guidance_sweep.json"))
    args = ap.parse_args()
    sets = selection_sets(args.flickr8k, args.coco)
    if not sets:
        print(f"skipped: neither {args.flickr8k} nor {args.coco} is there")
        return
    engine = CaptionEngine.load(args.model, device="cpu")
    engine.guidance.always_above = args.always_above
    grids = {name: encode(engine, paths, name) for name, (paths, _) in sets.items()}
    table = []
    for th, drop in ((t, d) for t in args.thresholds for d in args.max_drops):
        if th > 1 and drop != args.max_drops[0]:
            continue  # never forcing: the drop does not matter
        engine.guidance.force_above, engine.guidance.max_drop = th, drop
        row = {"force_above": th, "max_drop": drop, "always_above": args.always_above}
        for name, (_, refs) in sets.items():
            t0 = time.perf_counter()
            results = caption_all(engine, grids[name])
            row[name] = score(results, refs) | {"ms_per_photo": (time.perf_counter() - t0) * 1e3 / len(refs)}
        table.append(row)
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
