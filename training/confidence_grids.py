"""Encoder grids of the photos the confidence score is fitted on, and what the calibration takes from
them: per-photo summaries, the average photo and the OOD centroids (training/confidence.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from captioner.confidence import photo_summary
from captioner.confidence_calibration import ConfidenceCalibration


class Grids:
    """(N, P, C) float16 encoder grids by photo name: a precomputed .npy + names, or extracted and cached."""

    def __init__(self, grids: np.ndarray, names: list[str]) -> None:
        self.grids, self.names = grids, names
        self.index = {n: i for i, n in enumerate(names)}

    @classmethod
    def open(
        cls,
        model,
        paths: list[Path],
        grids: str | None,
        names: str | None,
        cache: Path,
        checkpoint: str | Path | None = None,
    ) -> Grids:
        """From grids/names when given, else the model's encoder on `paths` (cached under cache/grids,
        keyed by the checkpoint file's hash)."""
        if grids and names:
            return cls(np.load(grids, mmap_mode="r"), json.loads(Path(names).read_text()))
        from captioner.checkpoint import file_sha256
        from training.features import load_or_extract

        tag = "checkpoint-" + (file_sha256(checkpoint)[:16] if checkpoint else "unknown")
        fc = load_or_extract(
            paths,
            model.cfg.encoder,
            cache / "grids",
            size=model.cfg.image_size,
            encoder_module=model.encoder,
            weights_tag=tag,
        )
        return cls(fc.grids, fc.names)

    def get(self, rows) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.grids[list(rows)], dtype=np.float32))  # (n, P, C)


def photo_summaries(grids: Grids, chunk: int = 512) -> np.ndarray:
    """(N, 2, C) float32: every photo's grid mean and max over positions (captioner.confidence.photo_summary)."""
    out = np.zeros((len(grids.names), 2, grids.grids.shape[2]), np.float32)
    for s in tqdm(range(0, len(out), chunk), desc="photo summaries", unit="chunk"):
        out[s : s + chunk] = photo_summary(grids.get(range(s, min(s + chunk, len(out))))).numpy()
    return out


def average_grid(grids: Grids, rows: list[int], chunk: int = 512) -> torch.Tensor:
    """(P, C) the mean grid of the given photos: the "average photo"."""
    total = np.zeros(grids.grids.shape[1:], np.float64)
    for s in range(0, len(rows), chunk):
        total += np.asarray(grids.grids[sorted(rows[s : s + chunk])], dtype=np.float32).sum(0)
    return torch.from_numpy((total / len(rows)).astype(np.float32))


def kmeans(x: torch.Tensor, k: int, iters: int = 30, seed: int = 0) -> torch.Tensor:
    """(N, C) -> (k, C) centroids (Lloyd's algorithm from k random points)."""
    g = torch.Generator().manual_seed(seed)
    cent = x[torch.randperm(len(x), generator=g)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(x, cent).argmin(1)
        for j in range(k):
            members = assign == j
            if members.any():
                cent[j] = x[members].mean(0)
    return cent


def base_calibration(
    avg_grid: torch.Tensor, train_rows: list[int], pooled: np.ndarray, k: int = 32
) -> ConfidenceCalibration:
    """The average photo avg_grid (P, C) and OOD centroids of the training photos (no heads yet)."""
    x = torch.from_numpy(pooled[train_rows])
    cent = kmeans(x, k)
    d2 = torch.cdist(x, cent).pow(2).min(1).values
    return ConfidenceCalibration(avg_grid, cent, float(torch.log(d2 + 1e-6).median()))
