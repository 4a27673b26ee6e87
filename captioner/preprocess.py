"""Photo -> normalised tensor, the same way for training features and for inference."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from captioner.encoders import encoder_spec


def to_batch(images: list[Image.Image], encoder: str, size: int = 224) -> torch.Tensor:
    """RGB PIL images -> (B, 3, size, size) float tensor normalised for `encoder`.

    Photos are squashed to size x size without keeping the aspect ratio, because the Flickr8k
    training images were prepared exactly that way: cropping at inference would show the model
    framings it never saw in training.
    """
    spec = encoder_spec(encoder)
    arrays = []
    for img in images:
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        arrays.append(np.asarray(img, dtype=np.uint8))
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, S, S)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (batch - mean) / std
