"""training/metrics.py against pycocoevalcap on real Flickr8k captions.

Each image's first caption is held out as the candidate and scored against the other four, once by
pycocoevalcap (Java PTBTokenizer, Bleu, METEOR, Rouge, Cider) and once by `training.metrics.evaluate`;
both are printed with their difference.  Also: the tokenizer on every Flickr8k caption against the Java
one, and the time of a CiderD reward for an SCST batch (5 samples x 64 images).

    .venv/bin/python benchmarks/metrics_agreement.py [--data ../shared/datasets/flickr8k] [--split test]
        [--no-meteor]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.cider import CiderD  # noqa: E402
from training.datasets import load_flickr8k  # noqa: E402
from training.metrics import evaluate  # noqa: E402
from training.ptb_tokenizer import ptb_tokenize_lines  # noqa: E402


def pycocoevalcap_scores(cands: dict, refs: dict, meteor: bool) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tokenizer.tokenize({k: [{"caption": c}] for k, c in cands.items()})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"BLEU-{n}": b for n, b in enumerate(bleu, 1)}
    out["ROUGE-L"] = Rouge().compute_score(gts, res)[0]
    out["CIDEr-D"] = Cider().compute_score(gts, res)[0]
    out["METEOR"] = None
    if meteor:
        scorer = Meteor()
        try:
            out["METEOR"] = scorer.compute_score(gts, res)[0]
        finally:  # end the jar now, as its __del__ would
            scorer.meteor_p.stdin.close()
            scorer.meteor_p.kill()
            scorer.meteor_p.wait()
    return out


def tokenizer_mismatches(captions: list[str]) -> list[tuple[str, str, str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    java = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(captions)})
    ours = [" ".join(words) for words in ptb_tokenize_lines(captions)]
    return [(c, java[i][0], ours[i]) for i, c in enumerate(captions) if java[i][0] != ours[i]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[2] / "shared/datasets/flickr8k"
    parser.add_argument("--data", default=str(default_data))
    parser.add_argument("--split", default="test")
    parser.add_argument("--no-meteor", action="store_true")
    args = parser.parse_args()
    if shutil.which("java") is None:
        sys.exit("java not found: pycocoevalcap's tokenizer needs it, nothing to compare against")

    dataset = load_flickr8k(args.data)
    images = dataset.split(args.split)
    cands = {im.name: im.captions[0] for im in images}
    refs = {im.name: im.captions[1:] for im in images}
    meteor = not args.no_meteor

    t0 = time.perf_counter()
    expected = pycocoevalcap_scores(cands, refs, meteor)
    t1 = time.perf_counter()
    got = evaluate(cands, refs, meteor=meteor)
    t2 = time.perf_counter()
    # without METEOR, which is the same jar on both sides: the part this module replaces
    evaluate(cands, refs, meteor=False)
    t3 = time.perf_counter()

    print(f"Flickr8k {args.split}: {len(images)} images, caption 0 held out as the candidate, 4 references")
    print(f"{'metric':8} {'pycocoevalcap':>14} {'ours':>10} {'|diff|':>10}")
    worst = 0.0
    for name, value in expected.items():
        if value is None or got[name] is None:
            print(f"{name:8} {'skipped':>14}")
            continue
        diff = abs(got[name] - value)
        worst = max(worst, diff)
        print(f"{name:8} {value:14.6f} {got[name]:10.6f} {diff:10.2e}")
    print(f"max |diff| = {worst:.2e}   (notes: {got['notes'] or 'none'})")
    print(f"time: pycocoevalcap {t1 - t0:.1f} s, ours {t2 - t1:.1f} s with METEOR, {t3 - t2:.2f} s without")

    every_caption = [c for im in dataset.images for c in im.captions]
    t0 = time.perf_counter()
    bad = tokenizer_mismatches(every_caption)
    print(
        f"tokenizer: {len(bad)} of {len(every_caption)} Flickr8k captions differ from the Java "
        f"PTBTokenizer ({time.perf_counter() - t0:.1f} s for both)"
    )
    for caption, java, ours in bad[:10]:
        print(f"  {caption!r}\n    java: {java!r}\n    ours: {ours!r}")

    train = dataset.split("train")
    t0 = time.perf_counter()
    cider = CiderD({i: im.captions for i, im in enumerate(train)})
    built = time.perf_counter() - t0
    rng = random.Random(0)
    keys = [rng.randrange(len(train)) for _ in range(64) for _ in range(5)]
    samples = [" ".join(rng.choice(train[k].captions).lower().split()[: rng.randint(5, 14)]) for k in keys]
    cider.score_keys(samples, keys)
    runs = []
    for _ in range(10):
        t0 = time.perf_counter()
        cider.score_keys(samples, keys)
        runs.append(time.perf_counter() - t0)
    print(
        f"CiderD: built from {len(train)} training images in {built:.1f} s; "
        f"score_keys on 5 x 64 captions: {min(runs) * 1000:.0f} ms (best of 10)"
    )


if __name__ == "__main__":
    main()
