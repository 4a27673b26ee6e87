"""Holding the worker's batches from a test, through the worker's public seam ``engine_loader``.

``gate.engine_loader`` loads the real engine and wraps it in a :class:`GatedEngine`, whose
``caption()`` - the worker makes one call per batch, in its model thread - waits while the gate is
closed. A gate holds nothing until it is *armed*: arm it once the worker has started (so the
warm-up caption at start goes through) and before any job comes in - ``open_pipeline(gate=...)``
and ``bot_stack(gate=...)`` do so when the stack is open, ``Stack.open(before_start=gate.arm)`` in a
process of its own.

* :class:`BatchGate`, in the test's own process: ``open()`` lets the held batch and every later one
  through.
* :class:`FileGate`, for a worker in another process (``tests/gated_worker.py``): open once the
  gate file exists; a batch touches ``<gate>.waiting`` before it waits.

A batch is held for at most :data:`HOLD_AT_MOST_S`; then its caption call raises, so a test that
never opens its gate fails instead of leaving a worker stuck.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

HOLD_AT_MOST_S = 60.0


class GatedEngine:
    """A real engine whose ``caption()`` first waits at ``gate``; everything else passes through."""

    def __init__(self, engine: Any, gate: _Gate) -> None:
        self.engine = engine
        self.gate = gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def caption(self, images: Any, **kw: Any) -> Any:
        self.gate.wait()
        return self.engine.caption(images, **kw)


class _Gate:
    armed = False

    def arm(self, *_stack: object) -> None:
        """Hold batches from now on (takes and ignores ``Stack.open(before_start=...)``'s argument)."""
        self.armed = True

    def engine_loader(self, path: Path) -> GatedEngine:
        from captioner.inference import CaptionEngine

        return GatedEngine(CaptionEngine.load(path, device="cpu"), self)

    def wait(self) -> None:
        """Called in the worker's model thread before each batch."""
        if self.armed and not self.is_open():
            self._hold()

    def is_open(self) -> bool:
        raise NotImplementedError

    def _hold(self) -> None:
        raise NotImplementedError


class BatchGate(_Gate):
    """A gate in the test's own process."""

    def __init__(self) -> None:
        self._open = threading.Event()

    def open(self) -> None:
        self._open.set()

    def is_open(self) -> bool:
        return self._open.is_set()

    def _hold(self) -> None:
        if not self._open.wait(HOLD_AT_MOST_S):
            raise TimeoutError(f"the test did not open the batch gate within {HOLD_AT_MOST_S} s")


class FileGate(_Gate):
    """A gate shared with another process: open once ``path`` exists."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.waiting = path.with_name(path.name + ".waiting")

    def is_open(self) -> bool:
        return self.path.exists()

    def _hold(self) -> None:
        self.waiting.touch()
        deadline = time.monotonic() + HOLD_AT_MOST_S
        while not self.path.exists():  # another process opens the gate: a file is all we share
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path} did not appear within {HOLD_AT_MOST_S} s")
            time.sleep(0.05)


__all__ = ["HOLD_AT_MOST_S", "BatchGate", "FileGate", "GatedEngine"]
