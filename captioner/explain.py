"""A picture of where the model looked for each word it wrote."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from captioner.inference import CaptionResult  # noqa: E402


def attention_figure(image: Image.Image, result: CaptionResult, path: str | Path, size: int = 224) -> Path:
    """The photo, then one panel per word with its 7x7 attention upsampled over the photo."""
    if result.attention is None:
        raise ValueError("this caption has no attention maps (the model was trained without attention)")
    photo = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    words = result.tokens
    panels = len(words) + 1
    cols = min(6, panels)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(photo)
    axes.flat[0].set_title(f"confidence {result.confidence:.2f}", fontsize=9)
    for i, word in enumerate(words, start=1):
        att = result.attention[i - 1]  # (7, 7)
        small = Image.fromarray((att / max(float(att.max()), 1e-8) * 255).astype(np.uint8))
        heat = np.asarray(small.resize((size, size), Image.Resampling.BICUBIC)) / 255.0  # (size, size) in [0, 1]
        ax = axes.flat[i]
        ax.imshow(photo)
        ax.imshow(heat, cmap="jet", alpha=0.45)
        ax.set_title(word, fontsize=11)
    fig.suptitle(result.text, fontsize=12)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
