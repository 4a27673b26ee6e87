"""Is there text in this photo? A nearly free check on the caption model's encoder grid.

The worker reads text with an OCR engine (~0.4 s a photo) only where this probe says text may be
there, so that photos without text cost almost nothing extra. The probe is one linear layer over
the grid that the caption model computes anyway (B = batch, P = 49 grid positions, C = channels):

- ``"mil"``: a logit per grid position, max-pooled over the P positions (text is small and sits
  in a few cells: one bright cell is enough, multiple-instance style);
- ``"meanmax"``: one logit from the channels' mean and max over the positions.

``training/text_probe.py`` builds it (data, training, threshold) and writes ``assets/text_probe.pt``.
The probe only fits the encoder it was trained on; :meth:`TextProbe.load` gives None for another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

DEFAULT_TEXT_PROBE = Path(__file__).resolve().parent / "assets" / "text_probe.pt"
POOLINGS = ("mil", "meanmax")
FORMAT = 1  # bump when the file's layout changes


@dataclass
class TextProbe:
    encoder: str  # e.g. "efficientnet_lite0": the probe only fits this encoder's grid
    threshold: float  # score >= threshold -> "may have text" (run the OCR)
    weight: torch.Tensor  # (C,) for "mil", (2C,) for "meanmax": [mean channels, max channels]
    bias: float
    pooling: str = "mil"
    #: Scores in [check_threshold, threshold) are "perhaps": the OCR's own detector decides (about
    #: 70 ms), which finds more of the small and incidental text at a small cost. None: no such band.
    check_threshold: float | None = None
    info: dict[str, Any] = field(default_factory=dict)  # how it was made: data, figures, command

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {self.pooling!r}")
        self.weight = self.weight.detach().float().flatten()

    @property
    def channels(self) -> int:
        return self.weight.numel() if self.pooling == "mil" else self.weight.numel() // 2

    def logit(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, P, C) -> (B,) text logit."""
        if grid.shape[-1] != self.channels:
            raise ValueError(f"grid has {grid.shape[-1]} channels, the probe expects {self.channels}")
        w = self.weight.to(grid.device)
        g = grid.float()
        if self.pooling == "mil":
            return (g @ w).amax(dim=1) + self.bias  # (B, P) -> (B,)
        pooled = torch.cat([g.mean(dim=1), g.amax(dim=1)], dim=1)  # (B, 2C)
        return pooled @ w + self.bias  # (B,)

    def score(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, P, C) -> (B,) probability of text, 0..1."""
        return torch.sigmoid(self.logit(grid))

    def verdict(self, score: float) -> bool | None:
        """True: text, read it; None: perhaps, let the detector look; False: no text."""
        if score >= self.threshold:
            return True
        if self.check_threshold is not None and score >= self.check_threshold:
            return None
        return False

    def to_dict(self) -> dict[str, Any]:
        # float16 weights: the file stays a few kB; scores move by < 1e-3, far below the threshold's margin.
        return {
            "format": FORMAT,
            "config": {
                "encoder": self.encoder,
                "threshold": float(self.threshold),
                "check_threshold": None if self.check_threshold is None else float(self.check_threshold),
                "pooling": self.pooling,
                "bias": float(self.bias),
            },
            "weight": self.weight.to(torch.float16).cpu(),
            "info": self.info,
        }

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.to_dict(), path)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TextProbe:
        cfg = payload["config"]
        return cls(
            encoder=str(cfg["encoder"]),
            threshold=float(cfg["threshold"]),
            check_threshold=None if cfg.get("check_threshold") is None else float(cfg["check_threshold"]),
            weight=payload["weight"],
            bias=float(cfg["bias"]),
            pooling=str(cfg.get("pooling", "mil")),
            info=dict(payload.get("info") or {}),
        )

    @classmethod
    def load(cls, path: Path = DEFAULT_TEXT_PROBE, *, encoder: str) -> TextProbe | None:
        """The probe in ``path``; None when the file is missing or was made for another encoder
        (then nobody knows whether a photo has text, and the OCR must look for itself)."""
        path = Path(path)
        if not path.is_file():
            return None
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT or payload["config"].get("encoder") != encoder:
            return None
        return cls.from_dict(payload)
