"""One checkpoint file: weights, model config, vocabulary, preprocessing and metrics.

The encoder's weights travel inside the file, so a checkpoint captions offline with nothing else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from captioner.model import Captioner, CaptionerConfig
from captioner.vocab import Vocabulary

FORMAT = "captionbot-checkpoint"
FORMAT_VERSION = 1
DEFAULT_CHECKPOINT = Path(__file__).parent / "assets" / "captionbot-flickr8k.pt"


class CheckpointError(ValueError):
    """The file is not a captionbot checkpoint this code can load."""


def save_checkpoint(
    path: str | Path,
    model: Captioner,
    vocab: Vocabulary,
    *,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write atomically (temp file, then rename) so a crash never leaves half a checkpoint.

    half=True stores float tensors as float16 (the shipped model, to stay small); they are
    upcast to float32 on load. `calibration` holds what honest captions need besides weights
    (confidence model, band thresholds, average photo: captioner.confidence); tensors allowed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.cfg.to_dict(),
        "vocab": list(vocab.words),
        "preprocess": {"resize": "squash", "size": model.cfg.image_size, "encoder": model.cfg.encoder},
        "state_dict": state,
        "metrics": _plain(metrics or {}),
        "extra": {k: v if k == "optimizer" else _plain(v) for k, v in (extra or {}).items()},
        "calibration": calibration or {},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def _plain(value: Any) -> Any:
    """JSON-plain copy (dict subclasses, numpy scalars -> dict, float), so the file loads with
    torch.load(weights_only=True), which refuses arbitrary classes."""
    return json.loads(json.dumps(value, default=float))


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[Captioner, Vocabulary, dict[str, Any]]:
    """-> (model in eval mode, vocabulary, the whole payload for metrics/extra)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint files
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a captionbot checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {payload.get('format_version')}, this code reads {FORMAT_VERSION}"
        )
    known = {f.name for f in fields(CaptionerConfig)}
    unknown = set(payload["config"]) - known
    if unknown:
        raise CheckpointError(f"{path} was written by a newer captionbot (config fields {sorted(unknown)})")
    cfg = CaptionerConfig(**payload["config"])
    vocab = Vocabulary(payload["vocab"])
    if len(vocab) != cfg.vocab_size:
        raise CheckpointError(f"{path}: vocabulary has {len(vocab)} words, config says {cfg.vocab_size}")
    model = Captioner(cfg, pretrained_encoder=False)
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match the model code: {str(exc).splitlines()[0]}") from None
    model.to(map_location).eval()
    return model, vocab, payload


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
