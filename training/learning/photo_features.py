"""Encoder grids for every photo a round touches, computed once per encoder and kept on disk.

A round only trains the decoder, so a photo's (P, C) grid never changes while the encoder does not:
feedback photos are cached one file per photo (``<sha256>.npy``, so new feedback adds files and
old ones are reused), datasets (replay, fixed set) in :func:`training.features.load_or_extract`'s
memory-mapped cache. Both are keyed by a digest of the encoder's weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from captioner.model import Captioner
from captioner.preprocess import to_batch
from training.features import load_or_extract, open_photo


def encoder_tag(model: Captioner) -> str:
    """A digest of the encoder's weights and input size: equal tags, equal grids."""
    h = hashlib.sha256(f"{model.cfg.encoder}|{model.cfg.image_size}".encode())
    for name, tensor in sorted(model.encoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]


class GridBank:
    """(N, P, C) float16 grids with a row per key (a photo's sha256 or a dataset photo's path)."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self._parts: list[torch.Tensor] = []
        self._grids: torch.Tensor | None = None

    def add(self, keys: list[str], grids: np.ndarray | torch.Tensor) -> None:
        new = [i for i, k in enumerate(keys) if k not in self.rows]
        if not new:
            return
        start = len(self.rows)
        for offset, i in enumerate(new):
            self.rows[keys[i]] = start + offset
        self._parts.append(torch.as_tensor(np.asarray(grids)[new], dtype=torch.float16))
        self._grids = None

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def grid(self, keys: list[str]) -> torch.Tensor:
        """(b, P, C) float32 grids of ``keys``."""
        if self._grids is None:
            self._grids = torch.cat(self._parts) if self._parts else torch.empty(0)
            self._parts = [self._grids]
        return self._grids[torch.tensor([self.rows[k] for k in keys], dtype=torch.long)].float()


@torch.no_grad()
def add_feedback_photos(
    bank: GridBank,
    model: Captioner,
    paths: dict[str, str],
    cache_dir: Path,
    *,
    device: str = "cpu",
    batch: int = 32,
    progress: bool = True,
) -> None:
    """Grids of feedback photos ({sha256: file}) into ``bank``, encoding only those not cached yet."""
    folder = cache_dir / encoder_tag(model)
    folder.mkdir(parents=True, exist_ok=True)
    missing = [sha for sha in paths if not (folder / f"{sha}.npy").is_file()]
    model.to(device).eval()
    for start in tqdm(
        range(0, len(missing), batch), desc="feedback photo features", unit="batch", disable=not progress
    ):
        chunk = missing[start : start + batch]
        x = to_batch([open_photo(Path(paths[s])) for s in chunk], model.cfg.encoder, model.cfg.image_size)
        grids = model.encode(x.to(device)).float().cpu().numpy().astype(np.float16)  # (b, P, C)
        for sha, g in zip(chunk, grids, strict=True):
            tmp = folder / f"{sha}.partial.npy"
            np.save(tmp, g)
            tmp.replace(folder / f"{sha}.npy")  # a killed round never leaves half a file under the real name
    keys = list(paths)
    if keys:
        bank.add(keys, np.stack([np.load(folder / f"{sha}.npy") for sha in keys]))


def add_dataset_photos(
    bank: GridBank, model: Captioner, paths: list[Path], wanted: set[str], cache_dir: Path, *, device: str = "cpu"
) -> None:
    """Grids of the ``wanted`` (resolved paths) among a dataset's ``paths`` into ``bank``. The cache
    holds all of ``paths`` (the same list every round, so it is computed once)."""
    if not wanted:
        return
    cache = load_or_extract(
        paths,
        model.cfg.encoder,
        cache_dir,
        size=model.cfg.image_size,
        device=device,
        encoder_module=model.encoder,
        weights_tag=encoder_tag(model),
    )
    keys = [str(p.resolve()) for p in paths]
    rows = [i for i, k in enumerate(keys) if k in wanted]
    bank.add([keys[i] for i in rows], np.asarray(cache.grids[rows]))


def prune_feedback_cache(cache_dir: Path, keep: set[str]) -> int:
    """Delete cached grids of feedback photos that may no longer be used (forgotten, purged, opted
    out): a grid is derived from a person's photo and goes when the photo does. -> files removed."""
    removed = 0
    if not cache_dir.is_dir():
        return 0
    for folder in cache_dir.iterdir():
        if not folder.is_dir() or folder.is_symlink():
            continue
        for f in folder.glob("*.npy"):
            sha = f.name.split(".", 1)[0]
            if len(sha) == 64 and sha not in keep:
                f.unlink(missing_ok=True)
                removed += 1
    return removed
