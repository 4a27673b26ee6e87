"""Which encoder should be the default? Dev-split CIDEr-D per millisecond of encoder time.

Times each ImageNet encoder side by side in one run (channels_last, batch 1, 8 and 32, best of 3),
and reads the dev CIDEr-D that a decoder reached on its features after the same training budget
from the runs' metrics.json (same recipe, same number of cross-entropy epochs):

    captionbot train --encoder mobilenet_v2 --out runs/mb ...
    captionbot train --encoder efficientnet_lite0 --epochs 2 --out runs/effnet ...
    .venv/bin/python benchmarks/encoders.py --run mobilenet_v2=runs/mb --run efficientnet_lite0=runs/effnet \\
        [--epoch 2] [--threads 1]

Not a test: nothing asserts, it measures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from captioner.encoders import build_encoder, seed_torch_hub_cache


def ms_per_image(encoder: torch.nn.Module, batch: int, repeats: int = 3, images: int = 64) -> float:
    x = torch.randn(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    runs = max(1, images // batch)
    best = float("inf")
    with torch.inference_mode():
        encoder(x)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(runs):
                encoder(x)
            best = min(best, (time.perf_counter() - t0) / (runs * batch))
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", default=[], help="ENCODER=RUN_DIR")
    ap.add_argument("--epoch", type=int, default=2, help="compare dev CIDEr-D after this many XE epochs")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--weights-dir", default=str(Path(__file__).resolve().parents[2] / "shared/weights"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_torch_hub_cache(args.weights_dir)
    print(f"torch threads {torch.get_num_threads()}")
    print(f"{'encoder':20s} {'ms/img b1':>10s} {'b8':>8s} {'b32':>8s} {'dev CIDEr-D':>12s} {'CIDEr-D per ms':>15s}")
    for spec in args.run:
        name, _, run = spec.partition("=")
        enc = build_encoder(name, pretrained=True).to(memory_format=torch.channels_last)
        ms = {b: ms_per_image(enc, b) for b in (1, 8, 32)}
        history = json.loads((Path(run) / "metrics.json").read_text())
        xe = [h for h in history if h["stage"] == "xe" and h["epoch"] == args.epoch]
        cider = xe[0]["dev"]["CIDEr-D"] if xe else float("nan")
        best_ms = min(ms.values())
        print(f"{name:20s} {ms[1]:10.1f} {ms[8]:8.1f} {ms[32]:8.1f} {cider:12.3f} {cider / best_ms:15.4f}")


if __name__ == "__main__":
    main()
