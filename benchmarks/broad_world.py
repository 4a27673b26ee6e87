"""Broad-world benchmark: caption the 120 everyday COCO photos of coco-mini end to end and score them.

Each photo file goes through `CaptionEngine.caption` as the bots use it (photo -> caption, the engine's
defaults: int8 decoder on a CPU, tagger hint and constrained search where the checkpoint has them).
Per model it reports:

- CIDEr-D, BLEU-4 and METEOR against the 5 human captions, as pycocoevalcap computes them (PTB
  tokenizer; `training.metrics`, which reproduces pycocoevalcap exactly: benchmarks/metrics_agreement.py;
  `--crosscheck` also scores with pycocoevalcap itself and prints the difference). METEOR needs Java:
  `--no-meteor` skips it.
- "names the main thing": the share of photos whose caption uses a noun that at least 3 of the 5
  references use (training.main_thing; "dogs" = "dog").

    .venv/bin/python benchmarks/broad_world.py [NAME=CHECKPOINT ...] [--beam 3] [--no-meteor] \\
        [--data ../shared/datasets/coco-mini] [--out runs/broad_world.json]

Default model: the shipped one (captioner/assets/captionbot-flickr8k.pt). The JSON file holds, per
model, the figures and every photo's caption, confidence, band, hint, labels and whether it names the
main thing. coco-mini is a TEST set: never train or tune on it.

Skips with a one-line message when the coco-mini folder is absent. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "coco-mini"
DEFAULT_MODEL = f"shipped={REPO / 'captioner' / 'assets' / 'captionbot-flickr8k.pt'}"


def load_coco_mini(folder: Path) -> list[dict]:
    """The rows of captions.jsonl, each with "path" (the photo file) added."""
    rows = []
    with open(folder / "captions.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                row["path"] = folder / "Images" / row["image"]
                rows.append(row)
    return rows


def caption_photos(engine, rows: list[dict], *, beam: int, batch: int, desc: str) -> list:
    """One CaptionResult per row, photo file -> caption, in batches like the worker's."""
    from tqdm import tqdm

    from captionbot.images import load_image

    results = []
    with tqdm(total=len(rows), desc=desc, unit="photo") as bar:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            results += engine.caption([load_image(r["path"]) for r in chunk], beam_size=beam)
            bar.update(len(chunk))
    return results


def per_photo_cider(cands: dict[str, str], refs: dict[str, list[str]]) -> dict[str, float]:
    """Each photo's CIDEr-D (document frequencies over all of coco-mini's references, as the corpus score)."""
    from training.cider import cider_d_scores
    from training.ptb_tokenizer import ptb_tokenize_lines

    keys = list(refs)
    flat = [" ".join(w) for w in ptb_tokenize_lines([c for k in keys for c in refs[k]])]
    toks = [" ".join(w) for w in ptb_tokenize_lines([cands[k] for k in keys])]
    grouped, at = [], 0
    for k in keys:
        grouped.append(flat[at : at + len(refs[k])])
        at += len(refs[k])
    return dict(zip(keys, (float(s) for s in cider_d_scores(toks, grouped)), strict=True))


def pycocoevalcap_cider_bleu(cands: dict[str, str], refs: dict[str, list[str]]) -> dict:
    """CIDEr-D and BLEU-4 from pycocoevalcap itself (Java PTB tokenizer), for --crosscheck."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": cands[k]}] for k in refs})
    return {"CIDEr-D": Cider().compute_score(gts, res)[0], "BLEU-4": Bleu(4).compute_score(gts, res, verbose=0)[0][3]}


def run_model(name: str, path: str, rows: list[dict], args) -> dict:
    from captioner.inference import CaptionEngine
    from training.main_thing import named_main_nouns
    from training.metrics import evaluate

    engine = CaptionEngine.load(path, device=args.device)
    t0 = time.perf_counter()
    results = caption_photos(engine, rows, beam=args.beam, batch=args.batch, desc=name)
    seconds = time.perf_counter() - t0
    refs = {r["image"]: r["captions"] for r in rows}
    # Scored on the engine's tokens, as `captionbot eval` scores them (the text is the same words
    # with a capital and a full stop, which the PTB tokenizer lower-cases and drops anyway).
    cands = {r["image"]: " ".join(res.tokens) for r, res in zip(rows, results, strict=True)}
    metrics = evaluate(cands, refs, meteor=not args.no_meteor)
    cider = per_photo_cider(cands, refs)
    photos = []
    for r, res in zip(rows, results, strict=True):
        named = named_main_nouns(res.text, r["captions"])
        photos.append(
            {
                "image": r["image"],
                "caption": res.text,
                "confidence": round(float(res.confidence), 4),
                "band": res.band,
                "hint": res.hint,
                "labels": res.labels,
                "names_main_thing": bool(named),
                "named_nouns": sorted(named),
                "cider_d": round(cider[r["image"]], 4),
            }
        )
    hits = sum(p["names_main_thing"] for p in photos)
    out = {
        "name": name,
        "checkpoint": str(path),
        "version": engine.version,
        "int8_decoder": bool(engine.int8_decoder),
        "device": str(engine.device),
        "beam": args.beam,
        "seconds": round(seconds, 1),
        "metrics": {k: metrics[k] for k in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")},
        "notes": metrics["notes"],
        "names_main_thing": {"n": hits, "of": len(photos), "share": round(hits / len(photos), 4)},
        "mean_confidence": round(sum(p["confidence"] for p in photos) / len(photos), 4),
        "photos": photos,
    }
    if args.crosscheck:
        ref_scores = pycocoevalcap_cider_bleu(cands, refs)
        out["pycocoevalcap"] = ref_scores
        print(
            f"{name}: pycocoevalcap CIDEr-D {ref_scores['CIDEr-D']:.6f} (ours {metrics['CIDEr-D']:.6f}), "
            f"BLEU-4 {ref_scores['BLEU-4']:.6f} (ours {metrics['BLEU-4']:.6f})",
            flush=True,
        )
    return out


def print_table(models: list[dict], n_photos: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"coco-mini broad world ({n_photos} COCO photos, beam {models[0]['beam']})")
    for col in ("model", "CIDEr-D", "BLEU-4", "METEOR", "names main thing", "mean confidence", "s/photo"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for m in models:
        mt = m["names_main_thing"]
        meteor = m["metrics"]["METEOR"]
        table.add_row(
            m["name"],
            f"{m['metrics']['CIDEr-D']:.3f}",
            f"{m['metrics']['BLEU-4']:.3f}",
            "skipped" if meteor is None else f"{meteor:.3f}",
            f"{mt['n']}/{mt['of']} ({mt['share']:.0%})",
            f"{m['mean_confidence']:.3f}",
            f"{m['seconds'] / mt['of']:.2f}",
        )
    Console(width=None if sys.stdout.isatty() else 110).print(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "models",
        nargs="*",
        default=[DEFAULT_MODEL],
        help="NAME=CHECKPOINT (a bare path is named after its file); default: the shipped model",
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the coco-mini folder")
    ap.add_argument("--beam", type=int, default=3, help="beam size (1 = greedy)")
    ap.add_argument("--batch", type=int, default=16, help="photos per engine call")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-meteor", action="store_true", help="skip METEOR (needs Java)")
    ap.add_argument(
        "--crosscheck", action="store_true", help="also score CIDEr-D and BLEU-4 with pycocoevalcap itself (needs Java)"
    )
    ap.add_argument("--out", type=Path, default=Path("runs/broad_world.json"))
    args = ap.parse_args(argv)

    if not (args.data / "captions.jsonl").is_file():
        print(f"skipped: no coco-mini at {args.data} (needs ../shared/datasets/coco-mini)")
        return 0
    rows = load_coco_mini(args.data)
    missing = [str(r["path"]) for r in rows if not r["path"].is_file()]
    if missing:
        print(f"error: {len(missing)} photos of {args.data} are missing, e.g. {missing[0]}", file=sys.stderr)
        return 1

    specs = []
    for spec in args.models:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).stem, spec
        specs.append((name, path))
    models = [run_model(name, path, rows, args) for name, path in specs]

    from training.main_thing import main_nouns

    report = {
        "benchmark": "broad_world",
        "data": str(args.data),
        "images": len(rows),
        "beam": args.beam,
        "references": {r["image"]: r["captions"] for r in rows},
        "main_nouns": {r["image"]: sorted(main_nouns(r["captions"])) for r in rows},
        "models": models,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=float) + "\n")
    print_table(models, len(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
