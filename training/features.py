"""Frozen-encoder features, computed once and kept in a memory-mapped float16 file.

Training the decoder then reads (P, C) grids from disk instead of running the CNN every epoch,
which is what makes training practical on a CPU.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from captioner.encoders import build_encoder
from captioner.preprocess import to_batch


class FeatureCache:
    """grids[i] is the (P, C) float16 feature grid of image `names[i]`."""

    def __init__(self, grids: np.ndarray, names: list[str]) -> None:
        self.grids = grids
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}


def open_photo(path: Path, *, mirrored: bool = False) -> Image.Image:
    """A training photo as RGB, left-right mirrored when asked (augmentation)."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    return rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirrored else rgb


def _cache_key(encoder: str, paths: list[Path], size: int, weights_tag: str) -> str:
    h = hashlib.sha256(f"{encoder}|{size}|{weights_tag}".encode())
    for p in paths:
        h.update(str(p.resolve()).encode())
    return h.hexdigest()[:16]


def load_or_extract(
    paths: list[Path],
    encoder: str,
    cache_dir: str | Path,
    size: int = 224,
    batch_size: int = 32,
    device: str = "cpu",
    encoder_module: torch.nn.Module | None = None,
    weights_tag: str = "imagenet",
    hflip: bool = False,
) -> FeatureCache:
    """Features for `paths` (in that order), from the cache when it has them.

    `hflip` extracts the features of the mirrored photos instead (training-time augmentation).

    `encoder_module` is the exact encoder whose weights the checkpoint will carry (default: a fresh
    ImageNet-pretrained one); `weights_tag` names those weights in the cache key, so features of
    different weights never mix.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _cache_key(encoder, paths, size, weights_tag + ("|hflip" if hflip else ""))
    data_file, meta_file = cache_dir / f"{encoder}-{key}.f16", cache_dir / f"{encoder}-{key}.json"
    names = [p.name for p in paths]
    if meta_file.is_file() and data_file.is_file():
        meta = json.loads(meta_file.read_text())
        return FeatureCache(np.memmap(data_file, dtype=np.float16, mode="r", shape=tuple(meta["shape"])), meta["names"])

    module = encoder_module if encoder_module is not None else build_encoder(encoder, pretrained=True)
    module = module.to(device).eval()
    partial = data_file.with_suffix(".partial")
    grids: np.memmap | None = None  # (N, P, C), created once the first batch gives P and C
    with torch.inference_mode():
        desc = f"{encoder} features" + (" (mirrored)" if hflip else "")
        for start in tqdm(range(0, len(paths), batch_size), desc=desc, unit="batch"):
            chunk = paths[start : start + batch_size]
            images = [open_photo(p, mirrored=hflip) for p in chunk]
            x = to_batch(images, encoder, size).to(device)
            fmap = module(x)  # (b, C, h, w)
            grid = fmap.flatten(2).transpose(1, 2).float().cpu().numpy()  # (b, P, C)
            if grids is None:
                shape = (len(paths), grid.shape[1], grid.shape[2])
                grids = np.memmap(partial, dtype=np.float16, mode="w+", shape=shape)
            grids[start : start + len(chunk)] = grid.astype(np.float16)
    assert grids is not None, "no images to extract"
    grids.flush()
    shape = grids.shape
    del grids
    partial.rename(data_file)  # only a complete file ever gets the final name
    meta_file.write_text(json.dumps({"encoder": encoder, "size": size, "shape": list(shape), "names": names}))
    return FeatureCache(np.memmap(data_file, dtype=np.float16, mode="r", shape=shape), names)
