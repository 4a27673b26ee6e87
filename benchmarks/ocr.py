"""Reading text in photos (captioner.ocr): accuracy on drawn and real text, and what it adds per photo.

(a) Drawn text: training.text_render draws signs (clean: horizontal, on a box, >= 24 px; hard:
    18-64 px, rotated 0/±5/±15 degrees, often straight on the photo), memes and screenshot-like
    pages in 13 DejaVu / Liberation / FreeFont faces and 6 colours, onto coco-mini photos at full
    size and onto Flickr8k photos scaled up to 640 px. Photos can carry text of their own, so only
    lines whose box centre lies inside a drawn box (TOLERANCE px) are scored.
    ``--split test`` (default): coco-mini + Flickr8k test photos, seed 20261205; the figures to report.
    ``--split dev``: Flickr8k dev photos only, another seed; for tuning captioner.ocr.
(b) Real photos: benchmarks/data/ocr (see its README): photos with word transcriptions published
    with them. Only words marked legible are counted; lines overlapping a transcribed word's box
    are scored.
(c) Time, the worker's way, the paths alternated per photo: "today" = load_image(bytes, squash_to=224)
    + CaptionEngine.caption(beam 3, attention); "reading" = the same + read_photo_text on the
    full-size photo as the worker does it: the caption model's text probe decides (text_verdict:
    read / let the detector check a 640 px copy first / skip); "detector check": no probe.
    Photos without text: coco-mini photos in which the reader finds nothing; with text: drawn
    signs on other coco-mini photos, as JPEG bytes.

Metrics: CER = edit distance / reference length (rapidfuzz Levenshtein; lowercased, whitespace
normalised, capped at 100 % per photo); word recall = share of the reference's words (punctuation
stripped) found in the output; both averaged over photos.

    nice .venv/bin/python benchmarks/ocr.py [--threads 1] [--per-kind 40] [--timing 30] [--split dev]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import string
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
os.environ["OMP_NUM_THREADS"] = _THREADS  # before numpy / onnxruntime / torch start their pools

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from training.text_render import font_files, render_meme, render_screenshot, render_sign  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
COCO = SHARED / "coco-mini" / "Images"
FLICKR = SHARED / "flickr8k"
REAL = ROOT / "benchmarks" / "data" / "ocr"
KINDS = ("sign clean", "sign hard", "meme", "screenshot")
TOLERANCE = 6  # px around a drawn box: a read line's centre inside it is scored
SEEDS = {"test": 20261205, "dev": 777}
UPSCALE = 640  # Flickr8k photos are 224 x 224: scaled up to about a phone photo's preview size


@dataclass
class Case:
    kind: str
    image: Image.Image
    text: str
    boxes: tuple[tuple[float, float, float, float], ...]


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    return [w for w in (w.strip(string.punctuation) for w in norm(text).split()) if w]


def score(ref: str, hyp: str) -> tuple[float, float]:
    """(CER capped at 1, word recall) of one photo."""
    ref, hyp = norm(ref), norm(hyp)
    cer = min(1.0, Levenshtein.distance(ref, hyp) / max(1, len(ref)))
    want, got = Counter(words(ref)), Counter(words(hyp))
    return cer, sum((want & got).values()) / max(1, sum(want.values()))


def inside(box: tuple[float, float, float, float], boxes, tol: float = TOLERANCE) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(x0 - tol <= cx <= x1 + tol and y0 - tol <= cy <= y1 + tol for x0, y0, x1, y1 in boxes)


def overlaps(box: tuple[float, float, float, float], boxes) -> bool:
    """The line covers at least half of some reference box (lines hold several words)."""
    for x0, y0, x1, y1 in boxes:
        w, h = min(box[2], x1) - max(box[0], x0), min(box[3], y1) - max(box[1], y0)
        if w > 0 and h > 0 and w * h >= 0.5 * (x1 - x0) * (y1 - y0):
            return True
    return False


# ---------------------------------------------------------------- data
def flickr_photos(split: str) -> list[Path]:
    names = (FLICKR / f"Flickr_8k.{split}Images.txt").read_text().split()
    return [FLICKR / "Images" / n for n in names if (FLICKR / "Images" / n).is_file()]


def upscaled(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB").resize((UPSCALE, UPSCALE), Image.Resampling.BICUBIC)


def drawn_cases(split: str, per_kind: int) -> list[Case]:
    """per_kind photos of each kind; test: half on coco-mini photos, half on Flickr8k test photos."""
    rng = random.Random(SEEDS[split])
    fonts = font_files()
    if split == "test":
        coco, flickr = sorted(COCO.glob("*.jpg")), rng.sample(flickr_photos("test"), per_kind * 3)
        half = per_kind // 2
        pools = {
            k: [("coco", p) for p in rng.sample(coco, half)]
            + [("flickr", p) for p in flickr[i * per_kind :][: per_kind - half]]
            for i, k in enumerate(KINDS[:3])
        }
    else:
        dev = rng.sample(flickr_photos("dev"), per_kind * 3)
        pools = {k: [("flickr", p) for p in dev[i * per_kind : (i + 1) * per_kind]] for i, k in enumerate(KINDS[:3])}
    cases = []
    for kind in KINDS:
        for i in range(per_kind):
            if kind == "screenshot":
                r = render_screenshot(rng, fonts)
            else:
                src, path = pools[kind][i % len(pools[kind])]
                photo = Image.open(path).convert("RGB") if src == "coco" else upscaled(path)
                if kind == "meme":
                    r = render_meme(photo, rng, fonts)
                else:
                    r = render_sign(photo, rng, fonts, clean=kind == "sign clean")
            cases.append(Case(kind, r.image, r.text, tuple(tuple(map(float, b)) for b in r.boxes)))
    return cases


def real_cases() -> list[Case]:
    """benchmarks/data/ocr/*.txt: ICDAR 2015 format (x1,y1,...,x4,y4,text; '###' = not legible)."""
    cases = []
    for gt in sorted(REAL.glob("gt_*.txt")):
        photo = REAL / (gt.stem[3:] + ".jpg")
        legible, boxes = [], []
        for row in gt.read_text(encoding="utf-8-sig").splitlines():
            parts = row.strip().split(",")
            if len(parts) < 9:
                continue
            text = ",".join(parts[8:])
            if text == "###":
                continue
            xy = np.array(parts[:8], dtype=float).reshape(4, 2)
            boxes.append((xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()))
            legible.append(((xy[:, 1].mean(), xy[:, 0].mean()), text))
        if legible and photo.is_file():
            order = sorted(range(len(legible)), key=lambda i: (round(legible[i][0][0] / 20), legible[i][0][1]))
            text = " ".join(legible[i][1] for i in order)
            cases.append(Case(photo.name, Image.open(photo).convert("RGB"), text, tuple(boxes[i] for i in order)))
    return cases


# ---------------------------------------------------------------- accuracy
def read_scored(reader, cases: list[Case], *, real: bool = False, label: str = "") -> dict[str, np.ndarray]:
    out: dict[str, list] = {}
    for case in tqdm(cases, desc=label or "reading", leave=False):
        t0 = time.perf_counter()
        lines = reader.read(case.image)
        dt = time.perf_counter() - t0
        keep = [ln for ln in lines if (overlaps(ln.box, case.boxes) if real else inside(ln.box, case.boxes))]
        cer, rec = score(case.text, " ".join(ln.text for ln in keep))
        out.setdefault("real" if real else case.kind, []).append((cer, rec, dt))
        if os.environ.get("OCR_SHOW"):
            print(f"{case.kind:<11} {cer:5.2f} REF={norm(case.text)!r}\n{'':17} HYP={[ln.text for ln in keep]!r}")
    return {k: np.array(v) for k, v in out.items()}


def accuracy_table(results: dict[str, np.ndarray], title: str) -> None:
    print(f"\n{title}\n{'set':<14}{'photos':>7}{'CER %':>8}{'word recall %':>15}{'read ms':>9}")
    rows = list(results.items())
    drawn = [v for k, v in rows if k in KINDS]
    if len(drawn) > 1:
        rows.append(("all drawn", np.concatenate(drawn)))
    for name, a in rows:
        print(
            f"{name:<14}{len(a):>7}{100 * a[:, 0].mean():8.1f}{100 * a[:, 1].mean():15.1f}{1000 * a[:, 2].mean():9.0f}"
        )


# ---------------------------------------------------------------- time, the worker's way
def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def timing(reader, n: int, threads: int) -> None:
    import torch

    from captionbot.images import load_image
    from captioner.inference import CaptionEngine
    from captioner.ocr import read_photo_text

    torch.set_num_threads(threads)
    engine = CaptionEngine.load()
    probe = engine.text_probe is not None
    rng = random.Random(SEEDS["test"] + 1)
    coco = sorted(COCO.glob("*.jpg"))
    rng.shuffle(coco)
    plain = []
    for path in tqdm(coco, desc="finding photos without text", leave=False):
        if len(plain) < n and not reader.read(Image.open(path).convert("RGB")):
            plain.append(path)
    fonts = font_files()
    others = [p for p in coco if p not in plain][:n]
    texty = [
        jpeg(render_sign(Image.open(p).convert("RGB"), rng, fonts, clean=i % 2 == 0).image)
        for i, p in enumerate(others)
    ]
    plain_bytes = [p.read_bytes() for p in plain]

    def today(data: bytes):
        return engine.caption([load_image(data, squash_to=224)], beam_size=3, with_attention=True)[0]

    def reading(data: bytes, use_probe: bool) -> int:
        result = today(data)
        # The worker's verdict: True read, None the detector decides, False skip.
        likely = engine.text_verdict(result) if use_probe else None
        if likely is False:
            return 0
        return len(read_photo_text(reader, load_image(data), likely=likely))

    paths = {"today": lambda d: today(d) and 0, "reading, detector check": lambda d: reading(d, False)}
    if probe:
        paths["reading, text probe"] = lambda d: reading(d, True)
    today(plain_bytes[0])  # warm-up
    reading(texty[0], False)
    rows = []
    for label, photos in (("without text", plain_bytes), ("with text", texty)):
        times: dict[str, list[float]] = {k: [] for k in paths}
        found: dict[str, int] = {k: 0 for k in paths}
        for i, data in enumerate(tqdm(photos, desc=f"time, {label}", leave=False)):
            names = list(paths)
            for name in names if i % 2 == 0 else names[::-1]:  # alternate which path runs first
                t0 = time.perf_counter()
                lines = paths[name](data)
                times[name].append(time.perf_counter() - t0)
                found[name] += bool(lines)
        base = float(np.mean(times["today"]))
        for name in paths:
            ms = float(np.mean(times[name]))
            over = "" if name == "today" else f"{100 * (ms / base - 1):+.0f} %"
            rows.append(
                (label, name, len(photos), 1000 * ms, over, f"{found[name]}/{len(photos)}" if name != "today" else "")
            )
    print(f"\ntime per photo, {threads} thread(s) (text probe in the caption model: {'yes' if probe else 'no'})")
    print(f"{'photos':<14}{'path':<25}{'n':>4}{'ms/photo':>10}{'overhead':>10}{'text read':>11}")
    for label, name, count, ms, over, fnd in rows:
        print(f"{label:<14}{name:<25}{count:>4}{ms:10.0f}{over:>10}{fnd:>11}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--split", choices=["test", "dev"], default="test")
    ap.add_argument("--per-kind", type=int, default=40, help="drawn photos per kind")
    ap.add_argument("--timing", type=int, default=30, help="photos without text and with text for (c); 0: skip")
    ap.add_argument("--reader", default="{}", help="TextReader keyword arguments as JSON (tuning)")
    args = ap.parse_args()

    if not COCO.is_dir() or not (FLICKR / "Images").is_dir():
        print(f"skipped: the shared datasets are missing ({SHARED})")
        return
    try:
        font_files()
    except RuntimeError as exc:
        print(f"skipped: {exc}")
        return
    from captioner.ocr import OcrUnavailableError, TextReader

    try:
        reader = TextReader(threads=args.threads, **json.loads(args.reader))
    except OcrUnavailableError as exc:
        print(f"skipped: {exc}")
        return
    cases = drawn_cases(args.split, args.per_kind)
    reader.read(cases[0].image)  # warm-up
    where = "coco-mini + Flickr8k test" if args.split == "test" else "Flickr8k dev"
    accuracy_table(read_scored(reader, cases), f"(a) drawn text, {where} photos, seed {SEEDS[args.split]}")
    real = real_cases()
    if real:
        accuracy_table(read_scored(reader, real, real=True), f"(b) real photos ({len(real)}, {REAL})")
    if args.timing and args.split == "test":
        timing(reader, args.timing, args.threads)


if __name__ == "__main__":
    main()
