"""Train the "is there text in this photo?" probe on the caption model's encoder grid.

    python -m training.text_probe [--data ../shared/datasets/flickr8k] [--out captioner/assets/text_probe.pt]

Data: Flickr8k photos, upscaled to a phone-photo size (640x480 or 480x640) so that text drawn on
them has a real photo's scale once the engine squashes them back to 224x224. Positives: the same
photos with signs (clean / hard), meme lines, or screenshot-like pages drawn on them
(training.text_render). Negatives: the plain photos, except those in which the OCR engine reads
text itself (shop signs, shirts): those count as positives. Grids are computed once and cached.

The threshold is chosen on Flickr8k dev: the highest one that still flags ``--recall`` of the
clean signs, meme lines and screenshots; COCO-mini (own photos, own sizes) checks the figures.
Nothing trains on COCO-mini, and the Flickr8k test split is not used here.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from captioner.inference import CaptionEngine
from captioner.text_probe import DEFAULT_TEXT_PROBE, TextProbe
from training.text_render import font_files, render_meme, render_screenshot, render_sign

KINDS = ("clean", "hard", "meme")  # drawn onto photos; "screenshot" pages have no photo
CACHE = Path("/tmp/text_probe_cache")


def _sizes(rng: random.Random) -> tuple[int, int]:
    return (640, 480) if rng.random() < 0.7 else (480, 640)


def render(kind: str, photo: Image.Image, rng: random.Random, fonts: list[Path]) -> Image.Image:
    if kind == "clean" or kind == "hard":
        return render_sign(photo, rng, fonts, clean=kind == "clean").image
    if kind == "meme":
        return render_meme(photo, rng, fonts).image
    return render_screenshot(rng, fonts, size=_sizes(rng)).image


class Encoder:
    """Photos -> float16 grids (N, P, C), in batches, as the engine computes them."""

    def __init__(self, engine: CaptionEngine) -> None:
        self.engine = engine

    @torch.inference_mode()
    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        return self.engine._encode(self.engine._preprocess(images)).half()


def build_set(
    name: str, photos: list[Path], kinds_per_photo: int, screenshots: int, encode: Encoder, *, upscale: bool
) -> dict:
    """Grids of each photo plain and with text drawn on (cached under CACHE by name and size)."""
    path = CACHE / f"{name}-{len(photos)}-{kinds_per_photo}-{screenshots}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    rng, fonts = random.Random(name), font_files()
    grids: dict[str, list[torch.Tensor]] = {k: [] for k in ("plain", *KINDS, "screenshot")}
    pending: dict[str, list[Image.Image]] = {k: [] for k in grids}

    def flush(kind: str, least: int = 16) -> None:
        if len(pending[kind]) >= least:
            grids[kind].append(encode(pending[kind]))
            pending[kind] = []

    sizes = []
    for i, p in enumerate(tqdm(photos, desc=f"{name}: drawing + encoding")):
        photo = Image.open(p).convert("RGB")
        if upscale:
            photo = photo.resize(_sizes(rng), Image.Resampling.BICUBIC)
        sizes.append(photo.size)
        pending["plain"].append(photo)
        kinds = KINDS if kinds_per_photo >= len(KINDS) else (KINDS[i % len(KINDS)],)
        for kind in kinds:
            pending[kind].append(render(kind, photo, rng, fonts))
        for kind in grids:
            flush(kind)
    for _ in range(screenshots):
        pending["screenshot"].append(render("screenshot", Image.new("RGB", (1, 1)), rng, fonts))
        flush("screenshot")
    for kind in grids:
        flush(kind, 1)
    out = {k: torch.cat(v) if v else torch.zeros(0) for k, v in grids.items()}
    out["sizes"] = torch.tensor(sizes)  # (N, 2): each plain photo's width and height as encoded
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return out


class OcrLabels:
    """Does the OCR engine read text in a plain photo? (>= 4 letters/digits at score >= 0.8), cached."""

    def __init__(self) -> None:
        self.path = CACHE / "ocr_labels.json"
        self.labels: dict[str, bool] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self._ocr: Any = None  # the engine, loaded on first use (it takes a while)

    def __call__(self, key: str, photo: Path, *, size: tuple[int, int]) -> bool:
        if key not in self.labels:
            if self._ocr is None:
                from rapidocr_onnxruntime import RapidOCR

                self._ocr = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
            img = Image.open(photo).convert("RGB")
            if img.size != size:
                img = img.resize(size, Image.Resampling.BICUBIC)
            found, _ = self._ocr(np.asarray(img)[:, :, ::-1].copy())
            chars = sum(sum(ch.isalnum() for ch in text) for _, text, score in found or [] if float(score) >= 0.8)
            self.labels[key] = chars >= 4
            CACHE.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.labels))
        return self.labels[key]


def features(grids: torch.Tensor, pooling: str) -> torch.Tensor:
    """(N, P, C) -> (N, P, C) for "mil", (N, 1, 2C) for "meanmax" (one 'position': the pooled photo)."""
    g = grids.float()
    if pooling == "mil":
        return g
    return torch.cat([g.mean(dim=1), g.amax(dim=1)], dim=1).unsqueeze(1)


def fit(x_pos: torch.Tensor, x_neg: torch.Tensor, pooling: str, *, decay: float, steps: int = 300) -> TextProbe:
    """Logistic regression with max pooling over positions (classes weighted equally); standardising
    is folded into the weights, so the probe reads raw grids."""
    x = torch.cat([features(x_pos, pooling), features(x_neg, pooling)])  # (N, P', F)
    y = torch.cat([torch.ones(len(x_pos)), torch.zeros(len(x_neg))])
    flat = x.reshape(-1, x.shape[-1])
    mean, std = flat.mean(dim=0), flat.std(dim=0).clamp_min(1e-3)
    x = (x - mean) / std
    w = torch.zeros(x.shape[-1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.01)
    class_w = torch.where(y > 0, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    for _ in range(steps):
        opt.zero_grad()
        logit = (x @ w).amax(dim=1) + b  # (N,)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, weight=class_w)
        (loss + decay * w.square().sum()).backward()
        opt.step()
    with torch.no_grad():
        weight = w / std
        bias = float(b - (weight * mean).sum())  # valid under max pooling: the shift is the same everywhere
    return TextProbe("", 0.5, weight, bias, pooling=pooling)


def recall(scores: torch.Tensor, threshold: float) -> float:
    return float((scores >= threshold).float().mean()) if len(scores) else float("nan")


def choose_threshold(scores: dict[str, torch.Tensor], target: float) -> float:
    """The highest threshold that flags `target` of each easy kind (clean signs, memes, screenshots)."""
    return min(float(torch.quantile(scores[k].float(), 1 - target)) for k in ("clean", "meme", "screenshot"))


def evaluate(probe: TextProbe, data: dict, text_in_plain: torch.Tensor, threshold: float) -> dict[str, float]:
    scores = {k: probe.score(data[k].float()) for k in ("plain", *KINDS, "screenshot") if len(data[k])}
    out = {f"recall_{k}": recall(s, threshold) for k, s in scores.items() if k != "plain"}
    plain = scores["plain"]
    out["flagged_plain"] = recall(plain, threshold)
    out["flagged_plain_textfree"] = recall(plain[~text_in_plain], threshold)
    out["recall_plain_with_ocr_text"] = recall(plain[text_in_plain], threshold)
    out["plain_with_ocr_text"] = int(text_in_plain.sum())
    out["n_plain"] = len(plain)
    return out


def trade_off(probe: TextProbe, sets: dict[str, tuple[dict, torch.Tensor]], shares: tuple[float, ...]) -> list[str]:
    """What lower thresholds buy: each flags `share` of dev's text-free plain photos; figures per set."""
    data, text = sets["dev"]
    free = probe.score(data["plain"][~text].float())
    lines = []
    for share in shares:
        threshold = float(torch.quantile(free, 1 - share))
        for name, (d, t) in sets.items():
            figs = evaluate(probe, d, t, threshold)
            lines.append(f"  {threshold:.3f} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in figs.items()))
    return lines


def speed(probe: TextProbe, channels: int) -> float:
    grid = torch.randn(1, 49, channels).abs()
    with torch.inference_mode():
        for _ in range(20):
            probe.score(grid)
        t = time.perf_counter()
        for _ in range(500):
            probe.score(grid)
    return (time.perf_counter() - t) / 500 * 1e3


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/flickr8k"))
    ap.add_argument("--coco", type=Path, default=Path("../shared/datasets/coco-mini/Images"))
    ap.add_argument("--out", type=Path, default=DEFAULT_TEXT_PROBE)
    ap.add_argument("--train-photos", type=int, default=4000)
    ap.add_argument("--dev-photos", type=int, default=1000)
    ap.add_argument("--recall", type=float, default=0.95, help="share of easy rendered text to flag on dev")
    ap.add_argument(
        "--check-share",
        type=float,
        default=0.02,
        help="share of dev's text-free photos whose scores may fall in the 'perhaps' band (detector check)",
    )
    ap.add_argument("--ocr-top", type=float, default=0.2, help="share of train photos, the highest scored, to OCR")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    engine = CaptionEngine.load(device="cpu")
    encode = Encoder(engine)

    def split(name: str, n: int) -> list[Path]:
        names = (args.data / f"Flickr_8k.{name}Images.txt").read_text().split()
        return [args.data / "Images" / x for x in sorted(names)[:n]]

    train_photos, dev_photos = split("train", args.train_photos), split("dev", args.dev_photos)
    train = build_set("train", train_photos, 1, args.train_photos // 6, encode, upscale=True)
    dev = build_set("dev", dev_photos, 3, args.dev_photos // 2, encode, upscale=True)
    coco_photos = sorted(args.coco.glob("*.jpg")) if args.coco.is_dir() else []
    coco = build_set("coco", coco_photos, 3, 0, encode, upscale=False) if coco_photos else None
    ocr = OcrLabels()

    def ocr_labels(name: str, photos: list[Path], data: dict, idx: list[int]) -> torch.Tensor:
        """OCR the plain photos idx (at the size they were encoded at); the others count as text-free."""
        found = torch.zeros(len(photos), dtype=torch.bool)
        for i in tqdm(idx, desc=f"{name}: OCR on plain photos"):
            w, h = data["sizes"][i].tolist()
            found[i] = ocr(f"{name}/{photos[i].name}", photos[i], size=(w, h))
        return found

    dev_text = ocr_labels("dev", dev_photos, dev, list(range(len(dev_photos))))
    coco_text = ocr_labels("coco", coco_photos, coco, list(range(len(coco_photos)))) if coco else None
    pos = torch.cat([train[k] for k in (*KINDS, "screenshot")])
    best: tuple[float, TextProbe, dict] | None = None
    for pooling in ("mil", "meanmax"):
        for decay in (1e-4, 1e-3):
            probe = fit(pos, train["plain"], pooling, decay=decay)
            # Plain train photos the probe scores highest may really show text: ask the OCR, refit.
            s = probe.score(train["plain"].float())
            top = s.argsort(descending=True)[: int(args.ocr_top * len(s))].tolist()
            text = ocr_labels("train", train_photos, train, top)
            probe = fit(torch.cat([pos, train["plain"][text]]), train["plain"][~text], pooling, decay=decay)
            dev_scores = {k: probe.score(dev[k].float()) for k in ("plain", *KINDS, "screenshot")}
            threshold = choose_threshold(dev_scores, args.recall)
            figures = evaluate(probe, dev, dev_text, threshold)
            print(f"{pooling:8s} decay {decay:g}: threshold {threshold:.3f} {json.dumps(figures)}")
            key = figures["flagged_plain_textfree"] - 0.1 * figures["recall_hard"]
            if best is None or key < best[0]:
                probe.threshold = threshold
                best = (key, probe, {"pooling": pooling, "decay": decay, "train_plain_with_ocr_text": int(text.sum())})
    assert best is not None
    _, probe, made = best
    probe.encoder = engine.cfg.encoder
    # Below the threshold, the scores of the top `check_share` of text-free dev photos and up form
    # the "perhaps" band: the OCR's detector (about 70 ms) looks there, to find more incidental text.
    free = probe.score(dev["plain"].float())[~dev_text]
    probe.check_threshold = min(probe.threshold, float(torch.quantile(free, 1 - args.check_share)))
    report = {"dev": evaluate(probe, dev, dev_text, probe.threshold)}
    report["dev_check_band"] = evaluate(probe, dev, dev_text, probe.check_threshold)
    if coco and coco_text is not None:
        report["coco"] = evaluate(probe, coco, coco_text, probe.threshold)
    ms = speed(probe, probe.channels)
    probe.info = {
        "made_by": "python -m training.text_probe",
        "model": engine.version,
        "data": f"Flickr8k train, {len(train_photos)} photos at 640x480 / 480x640, text by training.text_render",
        "threshold_rule": f"highest with >= {args.recall:.0%} of clean signs, memes, screenshots flagged (dev)",
        "check_threshold_rule": f"flags {args.check_share:.0%} of text-free plain photos (dev)",
        **made,
        "report": report,
        "ms_per_photo": ms,
    }
    probe.save(args.out)
    print(
        f"\nwrote {args.out} ({args.out.stat().st_size / 1024:.1f} kB): {made}, threshold {probe.threshold:.4f},"
        f" detector check from {probe.check_threshold:.4f}"
    )
    for name, figs in report.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in figs.items()))
    print(f"probe: {ms:.3f} ms per photo (CPU, one photo)")
    print("trade-off on dev (thresholds that flag 1%, 2%, 5%, 10% of text-free plain photos):")
    sets = {"dev": (dev, dev_text)} | ({"coco": (coco, coco_text)} if coco and coco_text is not None else {})
    print("\n".join(trade_off(probe, sets, (0.01, 0.02, 0.05, 0.10))))


if __name__ == "__main__":
    main()
