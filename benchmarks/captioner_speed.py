"""Captioner speed on this machine, all measured side by side in one run.

- encoder only, at batch 1, 8 and 32 (its best is the floor of the cost: the practical limit);
- end to end (preprocess + encode + batched beam search) at batch 1, 8 and 32;
- a naive loop: one image at a time, encoder then beam search per image, as simple projects do;
- per photo, the cost of each part: preprocess, encoder, free beam search, tagger, constrained
  search (only for photos whose caption misses the tagger's confident word), confidence scoring.

Targets: end to end at its best batch >= 60 % of the encoder-only best, and >= 2x the naive loop.

    .venv/bin/python benchmarks/captioner_speed.py [--images 96] [--beam 3] [--model PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from PIL import Image

from captioner.checkpoint import DEFAULT_CHECKPOINT
from captioner.decoding import beam_search
from captioner.inference import CaptionEngine
from captioner.preprocess import to_batch

FLICKR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "flickr8k" / "Images"


def photos(n: int) -> list[Image.Image]:
    files = sorted(FLICKR.glob("*.jpg"))[:n] if FLICKR.is_dir() else []
    if len(files) < n:  # no dataset: synthetic photos of the same size
        g = torch.Generator().manual_seed(0)
        return [Image.fromarray((torch.rand(224, 224, 3, generator=g) * 255).byte().numpy()) for _ in range(n)]
    return [Image.open(f).convert("RGB") for f in files]


def rate(fn, n_images: int, repeats: int = 2) -> float:
    """Best images/s over `repeats` runs (the least disturbed by other load on the machine)."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = max(best, n_images / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--model", type=Path, default=DEFAULT_CHECKPOINT)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = CaptionEngine.load(args.model, device="cpu")
    imgs = photos(args.images)
    n = len(imgs)
    enc = engine.model.encoder
    cfg = engine.cfg
    engine.caption(imgs[:8], beam_size=args.beam)  # warm-up

    def encoder_only(bs: int):
        def run():
            with torch.inference_mode():
                for s in range(0, n, bs):
                    x = to_batch(imgs[s : s + bs], cfg.encoder, cfg.image_size)
                    enc(x.contiguous(memory_format=torch.channels_last))

        return run

    def end_to_end(bs: int):
        def run():
            for s in range(0, n, bs):
                engine.caption(imgs[s : s + bs], beam_size=args.beam)

        return run

    def naive():
        # No channels_last, no batching: each image is encoded, then beam-searched, on its own.
        model = engine.model
        with torch.inference_mode():
            for im in imgs:
                grid = model.encode(to_batch([im], cfg.encoder, cfg.image_size))
                beam_search(model.decoder, grid, args.beam, cfg.max_len)

    rows = []
    enc_rates = {bs: rate(encoder_only(bs), n) for bs in (1, 8, 32)}
    e2e_rates = {bs: rate(end_to_end(bs), n) for bs in (1, 8, 32)}
    naive_rate = rate(naive, n, repeats=1)
    for bs in (1, 8, 32):
        rows.append((f"encoder only, batch {bs}", enc_rates[bs]))
    for bs in (1, 8, 32):
        rows.append((f"end to end, beam {args.beam}, batch {bs}", e2e_rates[bs]))
    rows.append((f"naive loop (one image at a time), beam {args.beam}", naive_rate))
    print(f"model {engine.version}, {n} images, torch threads {torch.get_num_threads()}")
    print(f"{'what':48s} images/s")
    for what, r in rows:
        print(f"{what:48s} {r:8.1f}")
    best_enc, best_e2e = max(enc_rates.values()), max(e2e_rates.values())
    print(f"end-to-end best / encoder-only best = {best_e2e / best_enc:.2f} (target >= 0.60)")
    print(f"end-to-end best / naive loop        = {best_e2e / naive_rate:.2f} (target >= 2.0)")
    # What each part of an honest caption costs, per photo, at batch 32 (the engine times its parts).
    totals: dict[str, float] = {}
    for s in range(0, n, 32):
        res = engine.caption(imgs[s : s + 32], beam_size=args.beam)
        for k, v in res[0].timings_ms.items():
            if k != "batch_size":
                totals[k] = totals.get(k, 0.0) + v
    forced = totals.pop("forced", 0.0)
    print("per photo, batch 32: " + ", ".join(f"{k[:-3]} {v / n:.2f} ms" for k, v in totals.items()))
    print(f"captions re-decoded under a tagger constraint: {forced:.0f} of {n}")


if __name__ == "__main__":
    main()
