"""Caption a split and score it against its references."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from captioner.decoding import beam_search, greedy
from captioner.model import Captioner
from captioner.vocab import Vocabulary
from training.data import TrainingData
from training.metrics import evaluate


class GridSource(Protocol):
    """Anything that hands out (b, P, C) grids for a slice of rows: TrainingData, a round's GridBank."""

    def grid(self, rows: Any) -> torch.Tensor: ...


@torch.no_grad()
def caption_rows(
    model: Captioner,
    vocab: Vocabulary,
    data: GridSource,
    rows,
    *,
    beam_size: int = 3,
    batch_size: int = 100,
    progress: bool = False,
) -> list[str]:
    """Captions (space-separated tokens) for cached-feature rows, decoded in batches on the model's device."""
    device = next(model.decoder.parameters()).device
    was_training = model.training
    model.eval()
    out: list[str] = []
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc="captioning", unit="batch", disable=not progress, leave=False):
        grid = data.grid(rows[start : start + batch_size]).to(device)
        if beam_size > 1:
            dec = beam_search(model.decoder, grid, beam_size, model.cfg.max_len)
        else:
            dec = greedy(model.decoder, grid, model.cfg.max_len)
        out.extend(vocab.decode(seq.tolist()) for seq in dec.tokens)
    model.train(was_training)
    return out


def evaluate_split(
    model: Captioner,
    vocab: Vocabulary,
    data: TrainingData,
    split: str,
    *,
    beam_size: int = 3,
    meteor: bool = False,
    progress: bool = False,
) -> tuple[dict, list[dict]]:
    """-> (metrics, [{"image", "caption", "references"}]) for a whole split."""
    sd = data.splits[split]
    captions = caption_rows(model, vocab, data, sd.rows, beam_size=beam_size, progress=progress)
    cands = {im.name: c for im, c in zip(sd.images, captions, strict=True)}
    refs = {im.name: im.captions for im in sd.images}
    metrics = evaluate(cands, refs, meteor=meteor)
    rows = [
        {"image": im.name, "caption": c, "references": im.captions} for im, c in zip(sd.images, captions, strict=True)
    ]
    return metrics, rows


def evaluate_checkpoint(
    checkpoint: str | Path | None,
    data: str | Path,
    split: str,
    *,
    beam_size: int = 3,
    meteor: bool = True,
    batch_size: int = 32,
    device: str = "auto",
) -> tuple[dict, list[dict]]:
    """Caption a split's photos end to end through the checkpoint (its own encoder weights), as users get
    them, and score the captions. -> (metrics, [{"image", "caption", "confidence", "references"}])."""
    from captionbot.images import load_image
    from captioner.inference import CaptionEngine
    from training.datasets import DatasetError, load_dataset

    engine = CaptionEngine.load(checkpoint, device=device)
    images = load_dataset(data).split(split)
    if not images:
        raise DatasetError(f"the {split} split of {data} has no images")
    rows: list[dict] = []
    for start in tqdm(range(0, len(images), batch_size), desc=f"{split} captions", unit="batch"):
        chunk = images[start : start + batch_size]
        results = engine.caption([load_image(im.path) for im in chunk], beam_size=beam_size)
        for im, res in zip(chunk, results, strict=True):
            rows.append(
                {
                    "image": im.name,
                    "caption": " ".join(res.tokens),
                    "text": res.text,
                    "confidence": round(res.confidence, 4),
                    "references": im.captions,
                }
            )
    cands = {r["image"]: r["caption"] for r in rows}
    refs = {im.name: im.captions for im in images}
    metrics = evaluate(cands, refs, meteor=meteor)
    metrics_out = dict(metrics)
    metrics_out.update({"split": split, "beam": beam_size, "images": len(images), "model_version": engine.version})
    return metrics_out, rows
