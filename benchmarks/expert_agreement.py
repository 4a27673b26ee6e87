"""Does the confidence score agree with people? Flickr8k-Expert and Flickr8k-CrowdFlower.

Flickr8k-Expert: 5,822 test photo / caption pairs, each with 3 expert scores (1-4). As in the caption
metric literature (CLIPScore, Hessel et al. 2021), every pair counts once per expert judgment (17,466
points) and the agreement is Kendall tau-c x100. CrowdFlower: 47,830 pairs with the share of crowd
workers who said yes; Kendall tau-b x100 (as CLIPScore reports it) and tau-c. No reference captions
are used by any score here. Reference figures on Flickr8k-Expert: BLEU-4 30.8, CIDEr 43.9,
CLIPScore 51.2, PAC-S 54.3, Polos 56.4.

Rows: mean token log-probability (words and <end>), PMI (the same minus the caption's mean
log-probability given the average photo), and the fitted score of captioner.confidence with its
tagger head and with its plain head. The fitted score goes through captioner.confidence.score's own
code; a sample of pairs is checked against score() end to end.

    .venv/bin/python benchmarks/expert_agreement.py [CHECKPOINT] [--calib CALIB.pt]
        [--grids GRIDS.npy --names NAMES.json] [--data ../shared/datasets/flickr8k] [--json OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from captioner.checkpoint import DEFAULT_CHECKPOINT, file_sha256, load_checkpoint  # noqa: E402
from captioner.confidence import FEATURES, caption_features, photo_summary, score  # noqa: E402
from captioner.confidence_calibration import ConfidenceCalibration  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def read_annotations(data: Path) -> tuple[list[tuple[str, str]], np.ndarray, list[tuple[str, str]], np.ndarray]:
    """-> Expert (photo, caption text) pairs and their (n, 3) scores; CrowdFlower pairs and share of yes."""
    text = {}
    for line in (data / "Flickr8k.token.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            key, caption = line.split("\t", 1)
            text[key] = caption.strip()
    ex = [line.split("\t") for line in (data / "ExpertAnnotations.txt").read_text().splitlines() if line.strip()]
    cf = [line.split("\t") for line in (data / "CrowdFlowerAnnotations.txt").read_text().splitlines() if line.strip()]
    return (
        [(r[0], text[r[1]]) for r in ex],
        np.array([[int(v) for v in r[2:5]] for r in ex]),
        [(r[0], text[r[1]]) for r in cf],
        np.array([float(r[2]) for r in cf]),
    )


def agreement(x: np.ndarray, n_expert: int, expert: np.ndarray, crowd: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau

    xe, xc = x[:n_expert], x[n_expert:]
    return {
        "expert_tau_c": kendalltau(np.repeat(xe, expert.shape[1]), expert.reshape(-1), variant="c")[0] * 100,
        "crowd_tau_b": kendalltau(xc, crowd, variant="b")[0] * 100,
        "crowd_tau_c": kendalltau(xc, crowd, variant="c")[0] * 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--calib", help="calibration dict (torch.save); default: the checkpoint's own")
    parser.add_argument("--data", default=str(SHARED / "datasets/flickr8k"))
    parser.add_argument("--grids", help="precomputed (N, P, C) .npy encoder grids (default: encode the photos)")
    parser.add_argument("--names", help="JSON list of the photo names of --grids")
    parser.add_argument("--cache", default="runs/confidence-cache")
    parser.add_argument("--json", help="write the table as JSON here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "ExpertAnnotations.txt").is_file():
        print(f"skipped: no Flickr8k annotations at {data} (needs ../shared)")
        return
    torch.set_num_threads(args.threads)
    from captioner.labelmap import LabelMap
    from training.confidence_features import fixed_logprobs, pair_logprobs
    from training.confidence_grids import Grids

    model, vocab, payload = load_checkpoint(args.checkpoint)
    calib_dict = (
        torch.load(args.calib, weights_only=True)
        if args.calib
        else (payload.get("calibration") or {}).get("confidence")
    )
    calib = ConfidenceCalibration.from_dict(calib_dict)
    labelmap = LabelMap.load() if model.tagger is not None else None
    ex_pairs, ex_scores, cf_pairs, cf_share = read_annotations(data)
    pairs = ex_pairs + cf_pairs
    photos = sorted({p for p, _ in pairs})
    grids = Grids.open(
        model, [data / "Images" / p for p in photos], args.grids, args.names, Path(args.cache), args.checkpoint
    )
    rows = [grids.index[p] for p, _ in pairs]
    seqs = [vocab.encode(c)[1:-1][: 2 * model.cfg.max_len] for _, c in pairs]
    # the log-probabilities depend only on the model and the average photo: kept between runs
    tag = file_sha256(args.checkpoint)[:12]
    if calib is not None and calib.avg_grid is not None:
        tag += "-" + hashlib.sha256(calib.avg_grid.half().numpy().tobytes()).hexdigest()[:12]
    lp_file = Path(args.cache) / f"expert-logprobs-{tag}.pkl"
    if lp_file.is_file():
        photo_lp, avg = pickle.loads(lp_file.read_bytes())
    else:
        photo_lp = pair_logprobs(model.decoder, grids, rows, seqs, desc="pairs")
        avg = None if calib is None or calib.avg_grid is None else fixed_logprobs(model.decoder, calib.avg_grid, seqs)
        lp_file.parent.mkdir(parents=True, exist_ok=True)
        lp_file.write_bytes(pickle.dumps((photo_lp, avg)))
    pad = max(len(a) for a in photo_lp)
    token_lp = torch.zeros(len(seqs), pad)
    for i, a in enumerate(photo_lp):
        token_lp[i, : len(a)] = torch.from_numpy(a)
    lengths = torch.tensor([len(s) + 1 for s in seqs], dtype=torch.float32)
    mean_lp = (token_lp.sum(1) / lengths).numpy()
    table = {"mean log-probability": agreement(mean_lp, len(ex_pairs), ex_scores, cf_share)}
    if avg is not None:
        avg_lp = torch.zeros(len(seqs), pad)
        for i, a in enumerate(avg):
            avg_lp[i, : len(a)] = torch.from_numpy(a)
        pmi = mean_lp - (avg_lp.sum(1) / lengths).numpy()
        table["PMI (minus average photo)"] = agreement(pmi, len(ex_pairs), ex_scores, cf_share)
        uniq = sorted(set(rows))
        at = {r: j for j, r in enumerate(uniq)}
        summary = torch.cat([photo_summary(grids.get(uniq[s : s + 256])) for s in range(0, len(uniq), 256)])
        x = caption_features(
            model,
            None,
            seqs,
            vocab=vocab,
            labelmap=labelmap,
            calib=calib,
            token_lp=token_lp,
            avg_lp=avg_lp,
            summary=summary[[at[r] for r in rows]],
        )  # (N, F)
        for name, head in calib.heads.items():
            s = head(x[:, [FEATURES.index(f) for f in head.features]]).numpy()
            table[f"fitted score, {name} head"] = agreement(s, len(ex_pairs), ex_scores, cf_share)
        # the fast path above must be what score() gives, end to end, from the full grids
        idx = np.random.default_rng(0).choice(len(seqs), 64, replace=False)
        full = score(
            model,
            grids.get([rows[i] for i in idx]),
            [seqs[i] for i in idx],
            vocab=vocab,
            labelmap=labelmap,
            calib=calib,
        )
        head = calib.head_for(labelmap is not None)
        fast = head(x[idx][:, [FEATURES.index(f) for f in head.features]])
        gap = float((full - fast).abs().max())
        print(f"score() end to end vs the table's path on 64 pairs: max |diff| {gap:.2e}")
    else:
        print("no calibration (average photo, fitted heads): only the mean log-probability row")
    print(f"Flickr8k-Expert: {len(ex_pairs)} pairs x 3 judgments; CrowdFlower: {len(cf_pairs)} pairs; no references")
    print(f"{'score':32} {'Expert tau-c':>12} {'CF tau-b':>9} {'CF tau-c':>9}")
    for name, r in table.items():
        print(f"{name:32} {r['expert_tau_c']:12.1f} {r['crowd_tau_b']:9.1f} {r['crowd_tau_c']:9.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
