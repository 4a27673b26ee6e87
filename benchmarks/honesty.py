"""Are captions phrased as honestly as they deserve? Bands against "names the main thing".

Each photo of Flickr8k dev and coco-mini is captioned end to end; its caption's band (sure, probable,
unsure) is compared with whether the caption names the main thing (a noun that 3 of the 5 reference
captions use; training.main_thing). Two shares matter:

- of captions that miss the main thing, the share phrased unsure or probable (goal >= 70 %);
- of captions that name it, the share stated plainly, band "sure" (goal >= 80 %).

`--choose` sweeps the band thresholds on these two sets (the only data thresholds may be chosen on)
and prints the pair that best meets both goals, as JSON for the checkpoint's calibration ("bands").
It also draws a reliability diagram: confidence bins against the share that names the main thing.

    .venv/bin/python benchmarks/honesty.py MODEL [--choose] [--plot docs/reliability.png] [--out runs/honesty.json]
        [--grids GRIDS.npy --names NAMES.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.guidance_sweep import SHARED, caption_all, encode, selection_sets  # noqa: E402
from captioner.inference import CaptionEngine  # noqa: E402
from training.main_thing import names_main_thing  # noqa: E402

GOAL_HEDGED_MISSES, GOAL_PLAIN_HITS = 0.70, 0.80
# "unsure" says nothing as fact: only where captions are more often wrong than right, on enough photos.
UNSURE_NAMES_AT_MOST, MIN_UNSURE = 0.4, 10


def shares(conf: np.ndarray, named: np.ndarray, probable_from: float, sure_from: float) -> dict:
    sure = conf >= sure_from
    unsure = conf < probable_from
    misses, hits = ~named, named
    return {
        "hedged_misses": float((~sure & misses).sum() / max(misses.sum(), 1)),
        "plain_hits": float((sure & hits).sum() / max(hits.sum(), 1)),
        "unsure_misses": float((unsure & misses).sum() / max(misses.sum(), 1)),
        "unsure_that_name_it": float((unsure & hits).sum() / max(unsure.sum(), 1)),
        "bands": {"sure": int(sure.sum()), "probable": int((~sure & ~unsure).sum()), "unsure": int(unsure.sum())},
    }


def choose(conf: np.ndarray, named: np.ndarray) -> dict:
    """sure_from: the threshold with the best worse-of-two ratio to the goals; probable_from: the
    highest threshold below it under which at most 40 % of (at least 10) captions name the main thing."""
    grid = np.unique(np.round(conf, 3))
    best = max(
        grid,
        key=lambda t: min(
            shares(conf, named, 0.0, t)["hedged_misses"] / GOAL_HEDGED_MISSES,
            shares(conf, named, 0.0, t)["plain_hits"] / GOAL_PLAIN_HITS,
        ),
    )
    probable_from = 0.0
    for t in grid[grid <= best]:
        below = conf < t
        if below.sum() >= MIN_UNSURE and named[below].mean() <= UNSURE_NAMES_AT_MOST:
            probable_from = float(t)
    return {"probable_from": probable_from, "sure_from": float(best)}


def reliability(conf: np.ndarray, named: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(conf, edges) - 1, 0, 9)
    mids, rates, counts = [], [], []
    for b in range(10):
        m = idx == b
        if m.sum():
            mids.append(conf[m].mean())
            rates.append(named[m].mean())
            counts.append(int(m.sum()))
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=120)
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfectly calibrated")
    ax.plot(mids, rates, "o-", label="captions")
    for x, y, n in zip(mids, rates, counts, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("confidence")
    ax.set_ylabel("share that names the main thing")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--flickr8k", type=Path, default=SHARED / "flickr8k")
    ap.add_argument("--coco", type=Path, default=SHARED / "coco-mini")
    ap.add_argument("--choose", action="store_true", help="sweep and print the best band thresholds")
    ap.add_argument("--plot", type=Path, help="reliability diagram PNG")
    ap.add_argument("--out", type=Path, default=Path("runs/honesty.json"))
    ap.add_argument("--grids", type=Path, help="cached Flickr8k grids (.npy) of the same encoder, end to end")
    ap.add_argument("--names", type=Path, help="JSON list of the photo file names of --grids")
    args = ap.parse_args()
    sets = selection_sets(args.flickr8k, args.coco)
    if not sets:
        print(f"skipped: neither {args.flickr8k} nor {args.coco} is there")
        return
    engine = CaptionEngine.load(args.model, device="cpu")
    report, all_conf, all_named = {}, [], []
    for name, (paths, refs) in sets.items():
        if name == "flickr8k-dev" and args.grids:
            index = {n: i for i, n in enumerate(json.loads(args.names.read_text()))}
            cache = np.load(args.grids, mmap_mode="r")
            grid = torch.from_numpy(np.stack([cache[index[p.name]] for p in paths]).astype(np.float32))
        else:
            grid = encode(engine, paths, name)
        results = caption_all(engine, grid)
        conf = np.array([r.confidence for r in results])
        named = np.array([names_main_thing(r.text, rs) for r, rs in zip(results, refs, strict=True)])
        bands = [r.band for r in results]
        report[name] = {
            "names_main_thing": float(named.mean()),
            "hedged_misses": float(np.mean([b != "sure" for b, n in zip(bands, named, strict=True) if not n])),
            "plain_hits": float(np.mean([b == "sure" for b, n in zip(bands, named, strict=True) if n])),
            "bands": {b: bands.count(b) for b in ("sure", "probable", "unsure")},
        }
        print(name, json.dumps(report[name]))
        all_conf.append(conf)
        all_named.append(named)
    conf, named = np.concatenate(all_conf), np.concatenate(all_named)
    if args.choose:
        th = choose(conf, named)
        report["chosen"] = th | shares(conf, named, th["probable_from"], th["sure_from"])
        print("chosen on", " + ".join(sets), json.dumps(report["chosen"]))
    if args.plot:
        reliability(conf, named, args.plot, f"{engine.version} on {' + '.join(sets)}")
        print(f"wrote {args.plot}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
