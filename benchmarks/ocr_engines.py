"""OCR engines for reading text in photos, compared on this CPU (all offline: models ship in packages).

Engines: rapidocr-onnxruntime 1.4 (PP-OCRv4 det+rec ONNX in the wheel), rapidocr 3.x (PP-OCRv6
small det+rec ONNX in the wheel) and Debian's tesseract 5 through pytesseract (psm 3 and psm 11).

Data, generated here with a fixed seed:
- rendered: English words, signs, menu lines and numbers drawn with Pillow onto coco-mini photos
  (../shared/datasets/coco-mini/Images; plain generated backgrounds if it is missing) in DejaVu and
  Liberation fonts, 18-64 px, rotated 0/±5/±15 degrees, with or without a box behind the text.
  "clean" = horizontal, box behind, size >= 24 px; "hard" = the rest.
- plain: other coco-mini photos as they are (no text drawn): time, and how often text comes back.

Metrics: CER (edit distance / reference length, lowercased, whitespace normalised; "no-space": the
same with spaces removed, as the Chinese+English PP-OCR models often drop the space between words),
word recall (share of reference words found in the output), ms per photo (perf_counter, after one warm-up).
Detection only ("is there text?") for the rapidocr detectors: ms per photo and how often a box is found.

    apt-get install -y tesseract-ocr tesseract-ocr-eng fonts-dejavu-core fonts-liberation
    .venv/bin/pip install -e '.[ocr]'
    nice .venv/bin/python benchmarks/ocr_engines.py [--text 60] [--plain 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

# Threads are fixed before numpy / onnxruntime / tesseract start their pools.
_THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
os.environ["OMP_NUM_THREADS"] = _THREADS
os.environ["OMP_THREAD_LIMIT"] = _THREADS  # tesseract's OpenMP

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.text_render import font_files, render_sign  # noqa: E402

COCO = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "coco-mini" / "Images"
# The faces this comparison was measured with (training.text_render knows a few more).
OLD_FONTS = (
    "DejaVuSans DejaVuSans-Bold DejaVuSerif DejaVuSansMono LiberationSans-Regular LiberationSans-Bold"
    " LiberationSerif-Regular LiberationSansNarrow-Regular"
).split()


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def fonts() -> list[Path]:
    try:
        found = font_files()
    except RuntimeError as exc:
        sys.exit(str(exc))
    return sorted(
        (f for f in found if f.stem in OLD_FONTS), key=lambda f: (f.parent.name != "dejavu", OLD_FONTS.index(f.stem))
    )


def backgrounds(n: int, offset: int, rng: random.Random) -> tuple[list[Image.Image], str]:
    files = sorted(COCO.glob("*.jpg")) if COCO.is_dir() else []
    if len(files) >= offset + n:
        return [Image.open(f).convert("RGB") for f in files[offset : offset + n]], f"coco-mini ({COCO})"
    out = []  # no dataset: smooth random gradients with noise, photo-sized
    for _ in range(n):
        a, b = np.array([rng.randrange(256) for _ in range(3)]), np.array([rng.randrange(256) for _ in range(3)])
        t = np.linspace(0, 1, 640)[None, :, None]
        noise = np.random.default_rng(rng.randrange(9999)).normal(0, 12, (480, 640, 3))
        img = (a * (1 - t) + b * t).repeat(480, axis=0) + noise
        out.append(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)))
    return out, "generated gradients (coco-mini missing)"


def render(photo: Image.Image, rng: random.Random, font_files: list[Path], clean: bool) -> tuple[Image.Image, str]:
    drawn = render_sign(photo, rng, font_files, clean=clean)
    return drawn.image, drawn.text


# ---------------------------------------------------------------- engines (name -> photo -> text)
def rapidocr_v1(threads: int, det_side: int = 0):
    from rapidocr_onnxruntime import RapidOCR

    small = {"det_limit_side_len": det_side, "det_limit_type": "max"} if det_side else {}
    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, **small)

    def read(img: Image.Image) -> str:
        result, _ = engine(np.asarray(img)[:, :, ::-1].copy())  # BGR, like cv2.imread
        return " ".join(r[1] for r in result or [])

    def detect(img: Image.Image) -> bool:
        boxes, _ = engine(np.asarray(img)[:, :, ::-1].copy(), use_det=True, use_cls=False, use_rec=False)
        return bool(boxes is not None and len(boxes))

    return read, detect


def rapidocr_v3(threads: int, det_side: int = 0):
    from rapidocr import RapidOCR

    small = {"Det.limit_side_len": det_side, "Det.limit_type": "max"} if det_side else {}
    engine = RapidOCR(
        params={
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            **small,
        }
    )

    def read(img: Image.Image) -> str:
        return " ".join(engine(np.asarray(img)[:, :, ::-1].copy()).txts or [])

    def detect(img: Image.Image) -> bool:
        out = engine(np.asarray(img)[:, :, ::-1].copy(), use_det=True, use_cls=False, use_rec=False)
        return bool(out.boxes is not None and len(out.boxes))

    return read, detect


def tesseract(psm: int):
    import pytesseract

    def read(img: Image.Image) -> str:
        return pytesseract.image_to_string(img, lang="eng", config=f"--psm {psm}")

    return read, None


ENGINES = {
    "rapidocr-ort 1.4": rapidocr_v1,
    "rapidocr 3": rapidocr_v3,
    "tesseract psm3": lambda threads: tesseract(3),
    "tesseract psm11": lambda threads: tesseract(11),
}


# ---------------------------------------------------------------- sizes and languages
def dist_mb(*names: str) -> float:
    total = 0
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        total += sum(p.stat().st_size for f in dist.files or [] if (p := Path(dist.locate_file(f))).is_file())
    return total / 1e6


def apt_mb(*pkgs: str) -> float:
    out = subprocess.run(["dpkg-query", "-Wf", "${Installed-Size}\n", *pkgs], capture_output=True, text=True).stdout
    return sum(int(x) for x in out.split() if x.isdigit()) / 1024


def tesseract_langs() -> str:
    if not shutil.which("tesseract"):
        return "not installed"
    out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout
    return ", ".join(out.split("\n", 1)[1].split())


# ---------------------------------------------------------------- measuring
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", type=int, default=60, help="photos with rendered text (half clean, half hard)")
    ap.add_argument("--plain", type=int, default=30, help="photos as they are")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--engines", default=",".join(ENGINES))
    args = ap.parse_args()

    rng = random.Random(20261204)
    font_files = fonts()
    photos, source = backgrounds(args.text + args.plain, 0, rng)
    rendered = []
    for i, photo in enumerate(photos[: args.text]):
        clean = i % 2 == 0
        img, ref = render(photo, rng, font_files, clean)
        rendered.append(("clean" if clean else "hard", img, norm(ref)))
    plain = photos[args.text :]
    print(f"backgrounds: {source}; {len(rendered)} rendered, {len(plain)} plain; threads {args.threads}")

    rows, det_rows, failed = [], [], []
    for name in args.engines.split(","):
        try:
            read, detect = ENGINES[name](args.threads)
            read(rendered[0][1])  # warm-up (sessions, first allocations)
        except Exception as exc:  # noqa: BLE001 - an engine that can't run is a row, not a crash
            failed.append((name, f"{type(exc).__name__}: {exc}"[:90]))
            continue
        per_set: dict[str, list] = {"clean": [], "hard": []}
        for kind, img, ref in rendered:
            t0 = time.perf_counter()
            hyp = norm(read(img))
            dt = time.perf_counter() - t0
            cer = Levenshtein.distance(ref, hyp) / max(1, len(ref))
            hyp_words = [w.strip(".,:;!?'\"()|-_") for w in hyp.split()]
            recall = sum(1 for w in ref.split() if w in hyp_words) / len(ref.split())
            squeezed = Levenshtein.distance(ref.replace(" ", ""), hyp.replace(" ", "")) / max(1, len(ref))
            per_set[kind].append((min(cer, 1.0), recall, dt, min(squeezed, 1.0)))
        for kind, vals in per_set.items():
            if vals:
                a = np.array(vals)
                cer, rec, ms, sq = (
                    100 * a[:, 0].mean(),
                    100 * a[:, 1].mean(),
                    1000 * a[:, 2].mean(),
                    100 * a[:, 3].mean(),
                )
                rows.append((name, kind, len(vals), cer, sq, rec, ms, ""))
        times, spurious = [], 0
        for img in plain:
            t0 = time.perf_counter()
            hyp = norm(read(img))
            times.append(time.perf_counter() - t0)
            spurious += sum(c.isalnum() for c in hyp) >= 2
        rows.append((name, "no text", len(plain), None, None, None, 1000 * np.mean(times), f"{spurious}/{len(plain)}"))
        print(f"  {name} done", file=sys.stderr, flush=True)
    for name in args.engines.split(","):
        if not name.startswith("rapidocr") or any(f[0] == name for f in failed):
            continue
        for side in (0, 640):  # default input (min side 736, as the reader) and max side 640
            detect = ENGINES[name](args.threads, side)[1]
            detect(rendered[0][1])
            t_text, found_text = [], 0
            for _, img, _ in rendered:
                t0 = time.perf_counter()
                found_text += detect(img)
                t_text.append(time.perf_counter() - t0)
            t_plain, found_plain = [], 0
            for img in plain:
                t0 = time.perf_counter()
                found_plain += detect(img)
                t_plain.append(time.perf_counter() - t0)
            label = f"{name} det" + (f" {side}" if side else "")
            ms = 1000 * np.mean(t_text + t_plain)
            det_rows.append((label, ms, f"{found_text}/{len(rendered)}", f"{found_plain}/{len(plain)}"))

    head = f"{'CER %':>8}{'CER no-space %':>16}{'word recall %':>15}{'ms/photo':>10}{'spurious':>10}"
    print(f"\n{'engine':<18}{'set':<9}{'photos':>6}{head}")
    for name, kind, n, cer, sq, rec, ms, sp in rows:
        c = f"{cer:8.1f}{sq:16.1f}" if cer is not None else f"{'-':>8}{'-':>16}"
        r = f"{rec:15.1f}" if rec is not None else f"{'-':>15}"
        print(f"{name:<18}{kind:<9}{n:>6}{c}{r}{ms:10.0f}{sp:>10}")
    for name, reason in failed:
        print(f"{name:<18}could not run: {reason}")
    print(
        "spurious: plain photos where the engine returned >= 2 letters/digits (some coco photos do show"
        " real text: watermarks, signs, shirts, so this is an upper bound)"
    )
    if det_rows:
        print(f"\n{'detection only':<26}{'ms/photo':>10}{'text found (rendered)':>23}{'text found (plain)':>20}")
        for name, ms, ft, fp in det_rows:
            print(f"{name:<26}{ms:10.0f}{ft:>23}{fp:>20}")

    ort = dist_mb("onnxruntime")
    extra = dist_mb("omegaconf", "requests", "colorlog", "urllib3", "charset-normalizer")
    common = dist_mb("numpy", "Pillow", "PyYAML", "Shapely", "pyclipper", "six", "flatbuffers", "protobuf")
    print("\ninstall size (MB, on disk):")
    print(
        f"  rapidocr-onnxruntime {dist_mb('rapidocr-onnxruntime'):.0f} (models) + onnxruntime {ort:.0f}"
        f" + opencv-python {dist_mb('opencv-python'):.0f} + numpy/pillow/shapely/pyclipper/... {common:.0f}"
    )
    print(
        f"  rapidocr {dist_mb('rapidocr'):.0f} (models) + onnxruntime {ort:.0f} (not a dependency: install it)"
        f" + opencv-python-headless {dist_mb('opencv-python-headless'):.0f} + the same numpy/pillow/..."
        f" + omegaconf/requests/colorlog {extra:.0f}"
    )
    engine = apt_mb("tesseract-ocr", "libtesseract5", "liblept5")
    print(
        f"  tesseract apt: tesseract-ocr+libtesseract5+liblept5 {engine:.0f} + eng {apt_mb('tesseract-ocr-eng'):.0f}"
        f" + osd {apt_mb('tesseract-ocr-osd'):.0f}; pytesseract {dist_mb('pytesseract'):.1f}"
    )
    print("languages offline:")
    print(
        "  rapidocr (both): one Chinese+English recognition model (Latin letters, digits, CJK); other"
        " languages are separate model downloads"
    )
    print(f"  tesseract: {tesseract_langs()} (more: apt-get install tesseract-ocr-<lang>, ~1-15 MB each)")


if __name__ == "__main__":
    main()
