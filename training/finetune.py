"""Fine-tuning the CNN too: photos go through the encoder every step (with gradients) instead of
coming from the feature cache. Meant for a GPU; on a CPU it is ~10x slower than cached features.

The cache still serves what the decoder alone needs, once refreshed with the current encoder:
dev grids after every fine-tuned epoch (for model selection) and all training grids before SCST.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from captioner.model import Captioner
from captioner.preprocess import to_batch
from training.data import TrainingData
from training.features import open_photo

_pool = ThreadPoolExecutor(max_workers=4)  # JPEG decoding releases the GIL


def image_batch(model: Captioner, paths: list[Path], mirrored=None) -> torch.Tensor:
    """(b, 3, S, S) normalised photos, mirrored where asked, preprocessed exactly as at inference."""
    flags = [False] * len(paths) if mirrored is None else [bool(m) for m in mirrored]
    images = list(_pool.map(lambda p, m: open_photo(p, mirrored=m), paths, flags))
    return to_batch(images, model.cfg.encoder, model.cfg.image_size)


@torch.no_grad()
def refresh_grids(model: Captioner, data: TrainingData, split: str, *, device: str, batch: int = 64) -> None:
    """Re-encode a split's photos with the model's current encoder into the in-memory grids."""
    sd = data.splits[split]
    was_training = model.training
    model.eval()
    for start in tqdm(range(0, len(sd.rows), batch), desc=f"{split} features (fine-tuned encoder)", leave=False):
        rows = sd.rows[start : start + batch]
        x = image_batch(model, [im.path for im in sd.images[start : start + batch]]).to(device)
        data.grids[torch.as_tensor(rows)] = model.encode(x).to(data.grids.dtype).cpu()
    model.train(was_training)


def live_grid(model: Captioner, data: TrainingData, train_index: np.ndarray, mirrored, device: str) -> torch.Tensor:
    """(b, P, C) grids of training photos `train_index`, encoded now, with gradients into the encoder.
    BatchNorm keeps its ImageNet statistics (batches of 32 are too small to re-estimate them)."""
    images = data.splits["train"].images
    x = image_batch(model, [images[int(i)].path for i in train_index], mirrored).to(device)
    model.encoder.eval()
    return model.encode(x).float()
