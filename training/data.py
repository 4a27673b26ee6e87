"""Everything training needs in memory: vocabulary, encoded captions and the cached feature grids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from captioner.vocab import PAD_ID, Vocabulary
from training.datasets import CaptionDataset, CaptionedImage
from training.features import load_or_extract


@dataclass
class SplitData:
    images: list[CaptionedImage]
    rows: np.ndarray  # (n,) row of each image in `grids`
    references: list[list[str]]  # raw reference captions per image, for metrics


@dataclass
class TrainingData:
    vocab: Vocabulary
    grids: torch.Tensor  # (N, P, C) float16 features of every image in the dataset
    splits: dict[str, SplitData]
    captions: list[list[list[int]]]  # per train image: its captions as <start> .. <end> ids
    # Mirrored photos, for augmentation: their grids, and the captions with "left"/"right" swapped.
    grids_mirrored: torch.Tensor | None = None  # (N, P, C) or None when augmentation is off
    captions_mirrored: list[list[list[int]]] | None = None

    def grid(self, rows, mirrored=None) -> torch.Tensor:
        """(b, P, C) grids of `rows`; `mirrored` (b,) bool picks the mirrored photo's grid per row."""
        rows = torch.as_tensor(rows)
        out = self.grids[rows]
        if mirrored is not None and self.grids_mirrored is not None:
            mirrored = torch.as_tensor(mirrored, dtype=torch.bool)
            out[mirrored] = self.grids_mirrored[rows[mirrored]]
        return out.float()


def swap_left_right(ids: list[int], vocab: Vocabulary) -> list[int]:
    """A caption of the mirrored photo: "left" and "right" trade places."""
    left, right = vocab.id_of("left"), vocab.id_of("right")
    swap = {left: right, right: left} if left is not None and right is not None else {}
    return [swap.get(i, i) for i in ids]


def prepare(
    dataset: CaptionDataset,
    *,
    encoder: str,
    cache_dir: str | Path,
    min_count: int = 5,
    max_len: int = 22,
    vocab: Vocabulary | None = None,
    device: str = "cpu",
    encoder_module: torch.nn.Module | None = None,
    weights_tag: str = "imagenet",
    size: int = 224,
    hflip: bool = False,
) -> TrainingData:
    """`hflip` also caches the mirrored photos' features, for training-time augmentation."""
    train = dataset.split("train")
    if not train:
        raise ValueError("the dataset has no training images")
    if vocab is None:
        vocab = Vocabulary.build((c for im in train for c in im.captions), min_count=min_count)
    cache = load_or_extract(
        [im.path for im in dataset.images],
        encoder,
        cache_dir,
        device=device,
        encoder_module=encoder_module,
        weights_tag=weights_tag,
        size=size,
    )
    grids = torch.from_numpy(np.array(cache.grids))  # a writable copy of the whole cache in RAM: ~1 GB for Flickr8k
    splits = {}
    for name in ("train", "dev", "test"):
        images = dataset.split(name)
        rows = np.array([cache.index[im.path.name] for im in images], dtype=np.int64)
        splits[name] = SplitData(images, rows, [im.captions for im in images])
    captions = [[vocab.encode(c, max_len) for c in im.captions] for im in train]
    data = TrainingData(vocab, grids, splits, captions)
    if hflip:
        train_paths = [im.path for im in train]
        mirrored = load_or_extract(
            train_paths,
            encoder,
            cache_dir,
            device=device,
            encoder_module=encoder_module,
            weights_tag=weights_tag,
            size=size,
            hflip=True,
        )
        # Only training photos are mirrored: a full-size tensor keeps the row numbers shared.
        data.grids_mirrored = torch.zeros_like(grids)
        data.grids_mirrored[torch.as_tensor(splits["train"].rows)] = torch.from_numpy(np.array(mirrored.grids))
        data.captions_mirrored = [[swap_left_right(c, vocab) for c in caps] for caps in captions]
    return data


def pad_batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sequences -> (captions (B, T), lengths (B,), order): sorted longest first, as the decoder needs."""
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    lengths = torch.tensor([len(seqs[i]) for i in order])
    out = torch.full((len(seqs), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, i in enumerate(order):
        out[row, : len(seqs[i])] = torch.tensor(seqs[i])
    return out, lengths, torch.tensor(order)
