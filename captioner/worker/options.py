"""What the worker is told: :class:`WorkerOptions` (batching, retries, limits, timings) and how it
turns a checkpoint file into an engine (:data:`EngineLoader`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from captionbot.broker import Queues
from captionbot.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from captionbot.settings import Settings
from captioner.inference import CaptionEngine

#: ``loader(checkpoint_path) -> engine``. The default loads a :class:`CaptionEngine`; tests pass
#: their own (e.g. one that wraps the real engine) through ``CaptionWorker(engine_loader=...)``.
EngineLoader = Callable[[Path], CaptionEngine]


@dataclass
class WorkerOptions:
    batch_size: int = 16
    batch_wait_ms: int = 50
    beam_size: int = 3
    max_attempts: int = 3
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: A running request untouched this long belongs to a dead worker (= the broker's reclaim time).
    stale_after_s: float = 60.0
    #: How often (at most) to look for a newly promoted model, between batches.
    reload_check_s: float = 5.0
    #: Read text in photos (captioner.ocr). Off here by default so that tests and tools opt in;
    #: the settings turn it on for `captionbot worker` / `run`.
    read_text: bool = False
    read_text_threads: int = 1
    #: The OCR's detector looks at every photo the text probe rules out (more text found, slower).
    read_text_check_all: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, queues: Queues, **overrides: Any) -> WorkerOptions:
        values: dict[str, Any] = {
            "batch_size": settings.batch_size,
            "batch_wait_ms": settings.batch_wait_ms,
            "beam_size": settings.beam_size,
            "max_attempts": settings.max_attempts,
            "max_image_bytes": settings.max_image_bytes,
            "max_pixels": settings.max_pixels,
            "stale_after_s": queues.reclaim_after_s,
            "read_text": settings.read_text,
            "read_text_threads": settings.read_text_threads,
            "read_text_check_all": settings.read_text_check_all,
        }
        values.update(overrides)
        return cls(**values)
