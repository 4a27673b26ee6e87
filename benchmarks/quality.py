"""Caption quality of checkpoints on Flickr8k dev and test, greedy and beam search, side by side.

Each split's photos go end to end through each checkpoint's own encoder once; the grid is then
decoded greedily and with beam search, and scored as pycocoevalcap scores it (training.metrics,
exact to pycocoevalcap; METEOR through its Java jar when Java is present).

    .venv/bin/python benchmarks/quality.py NAME=CHECKPOINT [NAME=CHECKPOINT ...] \\
        [--data ../shared/datasets/flickr8k] [--splits dev test] [--beams 1 3] [--decoders fp32 int8] \\
        [--out results.json] [--grids GRIDS.npy --names NAMES.json]

--decoders int8 also scores the int8 decoder that CPU workers run (captioner.inference), on the same grids.
A model with an image tagger is scored with and without tagger-guided constrained search.

Skips with a clear message when the dataset is absent. Not a test: nothing asserts, it measures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from captionbot.images import load_image
from captioner.inference import CaptionEngine, quantize_decoder
from captioner.preprocess import to_batch
from training.datasets import load_flickr8k
from training.metrics import evaluate

KEYS = ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")


@torch.inference_mode()
def encode_split(engine: CaptionEngine, paths: list[Path], batch: int = 50) -> torch.Tensor:
    grids = []
    for s in tqdm(range(0, len(paths), batch), desc="encoding", unit="batch", leave=False):
        x = to_batch([load_image(p) for p in paths[s : s + batch]], engine.cfg.encoder, engine.cfg.image_size)
        grids.append(engine.model.encode(x.contiguous(memory_format=torch.channels_last)).float())
    return torch.cat(grids)  # (N, P, C)


def cached_grids(args, images) -> torch.Tensor:
    """Grids of `images` from a cache made end to end by the same encoder (saves the CNN pass)."""
    import numpy as np

    index = {n: i for i, n in enumerate(json.loads(args.names.read_text()))}
    cache = np.load(args.grids, mmap_mode="r")
    return torch.from_numpy(np.stack([cache[index[im.name]] for im in images]).astype(np.float32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="NAME=CHECKPOINT")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/datasets/flickr8k"))
    ap.add_argument("--splits", nargs="+", default=["dev", "test"])
    ap.add_argument("--beams", nargs="+", type=int, default=[1, 3])
    ap.add_argument("--decoders", nargs="+", choices=["fp32", "int8"], default=["fp32"])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--grids", type=Path, help="cached (N, 49, C) encoder grids (.npy) of the same encoder")
    ap.add_argument("--names", type=Path, help="JSON list of the photo file names of --grids, in order")
    args = ap.parse_args()
    if not (Path(args.data) / "Flickr8k.token.txt").is_file():
        print(f"skipped: no Flickr8k at {args.data} (needs ../shared/datasets/flickr8k)")
        return
    dataset = load_flickr8k(args.data)
    rows = []
    for spec in args.models:
        name, _, path = spec.partition("=")
        engine = CaptionEngine.load(path, device="cpu", int8_decoder=False)
        decoders = {"fp32": engine.decoder}
        if "int8" in args.decoders:
            decoders["int8"] = quantize_decoder(engine.decoder)
        for split in args.splits:
            images = dataset.split(split)
            t0 = time.perf_counter()
            grid = cached_grids(args, images) if args.grids else encode_split(engine, [im.path for im in images])
            refs = {im.name: im.captions for im in images}
            # A model with an image tagger is scored with and without tagger guidance, side by side.
            guidance = (False, True) if engine.labelmap is not None else (False,)
            for kind, beam, guided in ((k, b, g) for k in args.decoders for b in args.beams for g in guidance):
                engine.decoder = decoders[kind]
                captions = []
                for s in range(0, len(images), 100):
                    captions += [r.text for r in engine.caption_grid(grid[s : s + 100], beam_size=beam, guided=guided)]
                metrics = evaluate({im.name: c for im, c in zip(images, captions, strict=True)}, refs)
                label = name if kind == "fp32" else f"{name} (int8 decoder)"
                label += " + tagger guidance" if guided else ""
                row = {"model": label, "split": split, "beam": beam, **{k: metrics[k] for k in KEYS}}
                rows.append(row)
                print(json.dumps(row), flush=True)
            print(f"  ({name} {split}: {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    print(f"\n| model | split | beam | {' | '.join(KEYS)} |")
    print("|---|---|---|" + "---|" * len(KEYS))
    for r in rows:
        vals = " | ".join("n/a" if r[k] is None else f"{r[k]:.3f}" for k in KEYS)
        print(f"| {r['model']} | {r['split']} | {r['beam']} | {vals} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
