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

    def grid(self, rows) -> torch.Tensor:
        return self.grids[torch.as_tensor(rows)].float()  # (b, P, C)


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
) -> TrainingData:
    train = dataset.split("train")
    if not train:
        raise ValueError("the dataset has no training images")
    if vocab is None:
        vocab = Vocabulary.build((c for im in train for c in im.captions), min_count=min_count)
    cache = load_or_extract(
        [im.path for im in dataset.images], encoder, cache_dir, device=device,
        encoder_module=encoder_module, weights_tag=weights_tag, size=size,
    )
    grids = torch.from_numpy(np.array(cache.grids))  # a writable copy of the whole cache in RAM: ~1 GB for Flickr8k
    splits = {}
    for name in ("train", "dev", "test"):
        images = dataset.split(name)
        rows = np.array([cache.index[im.path.name] for im in images], dtype=np.int64)
        splits[name] = SplitData(images, rows, [im.captions for im in images])
    captions = [[vocab.encode(c, max_len) for c in im.captions] for im in train]
    return TrainingData(vocab, grids, splits, captions)


def pad_batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sequences -> (captions (B, T), lengths (B,), order): sorted longest first, as the decoder needs."""
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    lengths = torch.tensor([len(seqs[i]) for i in order])
    out = torch.full((len(seqs), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, i in enumerate(order):
        out[row, : len(seqs[i])] = torch.tensor(seqs[i])
    return out, lengths, torch.tensor(order)
