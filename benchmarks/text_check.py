"""Which photos get read: the text probe's two thresholds against the detector on every photo.

For each photo (all 120 coco-mini photos, 60 Flickr8k test photos, the 8 ICDAR 2015 photos in
benchmarks/data/ocr), measured once each, the worker's way, one thread: the caption
(`load_image(bytes, squash_to=224)` + `CaptionEngine.caption`, which also gives the probe's score),
the detector check (`TextReader.has_text` on the full photo) and the full read (`TextReader.read`).
A photo "has text" when the full read finds some. Each policy's cost on a photo is the sum of the
parts it would run: read at once (score >= threshold), detector then maybe read (score in the
"perhaps" band, or every photo for "detector on every photo"), or nothing.

    nice .venv/bin/python benchmarks/text_check.py [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--flickr", type=int, default=60, help="Flickr8k test photos")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if not (SHARED / "coco-mini" / "Images").is_dir():
        sys.exit(f"skipped: {SHARED} is missing (the shared datasets)")
    import numpy as np
    import torch
    from tqdm import tqdm

    from captionbot.images import load_image
    from captioner.inference import CaptionEngine
    from captioner.ocr import TextReader

    torch.set_num_threads(args.threads)
    engine, reader = CaptionEngine.load(device="cpu"), TextReader(threads=args.threads)
    probe = engine.text_probe
    if probe is None:
        sys.exit("skipped: no text probe fits the shipped model")
    f8 = SHARED / "flickr8k"
    names = sorted((f8 / "Flickr_8k.testImages.txt").read_text().split())[: args.flickr]
    sets = {
        "coco-mini": sorted((SHARED / "coco-mini" / "Images").glob("*.jpg")),
        "flickr8k test": [f8 / "Images" / n for n in names],
        "icdar 2015": sorted((ROOT / "benchmarks" / "data" / "ocr").glob("*.jpg")),
    }

    def timed(fn, *a):  # (result, seconds)
        t0 = time.perf_counter()
        out = fn(*a)
        return out, time.perf_counter() - t0

    engine.caption([load_image(sets["coco-mini"][0].read_bytes(), squash_to=224)])  # warm-up
    print(f"threshold {probe.threshold:.3f}, detector band from {probe.check_threshold:.3f}; {args.threads} thread(s)")
    print(f"{'photos':<15}{'policy':<26}{'caption ms':>11}{'no text':>8}{'+ms':>7}{'+%':>8}{'with text read':>16}")
    for name, files in sets.items():
        rows = []
        for path in tqdm(files, desc=name, leave=False):
            data = path.read_bytes()
            result, t_cap = timed(lambda d: engine.caption([load_image(d, squash_to=224)], beam_size=3)[0], data)
            image = load_image(data)
            found, t_det = timed(reader.has_text, image)
            lines, t_read = timed(reader.read, image)
            rows.append((result.text_score, t_cap, found, t_det, bool(lines), t_read))
        cap = float(np.mean([r[1] for r in rows]))
        free = [r for r in rows if not r[4]]
        band = probe.check_threshold if probe.check_threshold is not None else probe.threshold
        for label, check in (
            ("probe only", probe.threshold),
            ("probe + detector band", band),
            ("detector, every photo", -1),
        ):

            def extra(r, check=check):
                if r[0] >= probe.threshold:
                    return r[5]
                return r[3] + (r[5] if r[2] else 0.0) if r[0] >= check else 0.0

            read = sum(r[4] and (r[0] >= probe.threshold or (r[0] >= check and r[2])) for r in rows)
            more = float(np.mean([extra(r) for r in free])) if free else 0.0
            print(
                f"{name:<15}{label:<26}{1000 * cap:11.0f}{len(free):8d}{1000 * more:7.1f}{100 * more / cap:7.1f}%"
                f"{read:>10}/{sum(r[4] for r in rows)}"
            )


if __name__ == "__main__":
    main()
