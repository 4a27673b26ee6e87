"""Fit the caption confidence score (captioner.confidence) on Flickr8k train pairs; choose on dev.

Pairs, per photo of a split (train to fit, dev to choose feature sets and regularisation):

- its 5 reference captions (kind 0, grade 1),
- the model's beam caption (kind 1),
- one reference caption of each of its 3 nearest photos in pooled-feature space (kind 2),
- the beam caption of its nearest photo (kind 3),
- reference captions of 2 random photos (kind 4).

The grade of a pair that is not the photo's own reference is min(1, CIDEr-D of the caption against the
photo's 5 references): a neighbour's "a dog runs on the grass" can describe this photo too, a random
caption rarely does. The logistic regression is fitted on these soft grades (each pair twice, as a
positive with weight g and a negative with weight 1 - g), then a monotone (isotonic) map from its logit
to the mean grade is fitted on the same train pairs. The image-text matcher is trained on the train
photos' own captions; its feature on train pairs is cross-fitted (5 folds over photos). Nothing here
reads the test split.

Caveat: the captioner was trained on these very train captions, so their log-probabilities are
inflated (own references: mean log p -2.2 on train against -3.0 on dev; PMI about twice as large).
Dev chooses strong L2 regularisation, which keeps the weights balanced despite that, but the train
fitted recalibration is then somewhat off on unseen captions (see the reliability diagram on dev).

The steps are in training/confidence_grids.py (photos), confidence_pairs.py (pairs and grades),
confidence_features.py, confidence_matcher.py and confidence_heads.py; this module runs them.

    .venv/bin/python -m training.confidence CHECKPOINT --out calib.pt [--plot reliability.png]
        [--data ../shared/datasets/flickr8k] [--grids GRIDS.npy --names NAMES.json] [--cache DIR]
        [--seed 0] [--no-matcher]
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import torch

from captioner.confidence import FEATURES
from captioner.confidence_calibration import Matcher
from training.confidence_features import features_from_logprobs, fixed_logprobs, pair_logprobs
from training.confidence_grids import Grids, average_grid, base_calibration, photo_summaries
from training.confidence_heads import FEATURE_SETS, choose_heads, recalibrate
from training.confidence_matcher import matcher_features
from training.confidence_pairs import KINDS, Pair, beam_captions, build_pairs, grades


def fit(
    checkpoint: str,
    data: str,
    out: str,
    plot: str | None,
    grids_path: str | None,
    names_path: str | None,
    cache: str,
    seed: int = 0,
    matcher: bool = True,
) -> dict:
    """Everything: pairs, features, heads; writes the calibration dict (torch.save) and returns it."""
    from captioner.checkpoint import load_checkpoint
    from captioner.labelmap import LabelMap
    from training.datasets import load_flickr8k

    torch.manual_seed(seed)
    cache_dir = Path(cache)
    cache_dir.mkdir(parents=True, exist_ok=True)
    model, vocab, _ = load_checkpoint(checkpoint)
    labelmap = LabelMap.load() if model.tagger is not None else None
    dataset = load_flickr8k(data)
    splits = {s: dataset.split(s) for s in ("train", "dev")}
    grids = Grids.open(
        model, [im.path for s in splits.values() for im in s], grids_path, names_path, cache_dir, checkpoint
    )
    rows = {s: [grids.index[im.name] for im in ims] for s, ims in splits.items()}
    summaries = photo_summaries(grids)  # (N, 2, C)
    pooled = np.ascontiguousarray(summaries[:, 0])  # (N, C)
    avg_grid = average_grid(grids, rows["train"])  # (P, C) the average photo
    calib = base_calibration(avg_grid, rows["train"], pooled)
    tags = None
    if model.tagger is not None:
        with torch.no_grad():
            tags = np.concatenate(
                [
                    model.tag(torch.from_numpy(pooled[s : s + 1024])[:, None, :]).numpy()
                    for s in range(0, len(pooled), 1024)
                ]
            )
    raw_file = cache_dir / f"pairs-{Path(checkpoint).stem}-{seed}.pkl"
    pairs: list[Pair]  # imported here also for caches pickled when Pair lived in this module
    if raw_file.is_file():
        pairs, photo_lp, avg_lp = pickle.loads(raw_file.read_bytes())
    else:
        beams = beam_captions(model, grids, rows["train"] + rows["dev"], model.cfg.max_len)
        rng = np.random.default_rng(seed)
        pairs = [p for s in ("train", "dev") for p in build_pairs(splits[s], rows[s], s, pooled, beams, vocab, rng)]
        photo_lp = pair_logprobs(model.decoder, grids, [p.row for p in pairs], [p.seq for p in pairs])
        avg_lp = fixed_logprobs(model.decoder, avg_grid, [p.seq for p in pairs])
        raw_file.write_bytes(pickle.dumps((pairs, photo_lp, avg_lp)))
    x = features_from_logprobs(
        model, vocab, labelmap, calib, [p.row for p in pairs], [p.seq for p in pairs], photo_lp, avg_lp, summaries, tags
    )
    refs = {grids.index[im.name]: im.captions for s in splits.values() for im in s}
    y = grades(pairs, refs, vocab)
    kind = np.array([p.kind for p in pairs])
    split = np.array([p.split for p in pairs])
    if matcher:
        match_file = cache_dir / f"matcher-{Path(checkpoint).stem}-{seed}.pt"
        if match_file.is_file():
            saved = torch.load(match_file, weights_only=True)
            calib.matcher, match = Matcher.from_dict(saved["matcher"]), saved["match"].numpy()
        else:
            calib.matcher, match = matcher_features(pairs, summaries, len(vocab), seed=seed)
            torch.save({"matcher": calib.matcher.to_dict(), "match": torch.from_numpy(match)}, match_file)
        x[:, FEATURES.index("match")] = match
    np.savez(
        cache_dir / f"features-{Path(checkpoint).stem}-{seed}.npz",
        x=x,
        y=y,
        kind=kind,
        split=split,
        features=np.array(FEATURES),
    )  # for analysis
    sets = {k: v for k, v in FEATURE_SETS.items() if matcher or "match" not in v}
    heads, report = choose_heads(x, y, kind, split, sets)
    tr = split == "train"
    calib.heads = {g: recalibrate(h, x[tr], y[tr]) for g, h in heads.items()}
    calib.info = {
        "data": "Flickr8k train (fit) / dev (choice)",
        "pairs": {s: int((split == s).sum()) for s in splits},
        "kinds": list(KINDS),
        **report,
    }
    d = calib.to_dict()
    torch.save(d, out)
    if plot:
        from training.plots import reliability_plot  # matplotlib only when asked for

        head = calib.head_for(labelmap is not None)
        assert head is not None  # choose_heads always fits a "tagger" and a "plain" head
        dv = split == "dev"
        s = head(torch.from_numpy(x[dv][:, [FEATURES.index(n) for n in head.features]]).float()).numpy()
        reliability_plot(s, y[dv], plot)
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[2] / "shared/datasets/flickr8k"
    parser.add_argument("checkpoint")
    parser.add_argument("--out", required=True, help="where to torch.save the calibration dict")
    parser.add_argument("--plot", help="reliability diagram PNG of the fitted score on dev pairs")
    parser.add_argument("--data", default=str(default_data))
    parser.add_argument("--grids", help="precomputed (N, P, C) float16 .npy of every photo's encoder grid")
    parser.add_argument("--names", help="JSON list of the photo names of --grids, in order")
    parser.add_argument("--cache", default="runs/confidence-cache")
    parser.add_argument("--no-matcher", action="store_true", help="no learned image-text matcher feature")
    parser.add_argument("--seed", type=int, default=0, help="pairs (neighbours, random captions) and matcher seed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    d = fit(
        args.checkpoint,
        args.data,
        args.out,
        args.plot,
        args.grids,
        args.names,
        args.cache,
        seed=args.seed,
        matcher=not args.no_matcher,
    )
    print(json.dumps(d["info"]["chosen"], indent=1))
    for g, h in d["heads"].items():
        print(
            g,
            dict(zip(h["features"], [round(c, 3) for c in h["coef"].tolist()], strict=False)),
            "bias",
            round(h["bias"], 3),
        )


if __name__ == "__main__":
    main()
