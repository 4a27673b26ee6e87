"""``python -m tests.gated_worker GATE_FILE``: ``captionbot worker`` whose batches wait for GATE_FILE.

The fault tests use it to kill a worker exactly mid-batch: once the worker has started, each batch
touches ``GATE_FILE.waiting`` and waits until GATE_FILE exists (see :class:`tests.gated_engine.FileGate`).
Configured from the environment, like ``captionbot worker``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(gate_file: str) -> int:
    from captionbot.settings import Settings
    from captionbot_cli.runtime import run_blocking
    from tests.gated_engine import FileGate

    gate = FileGate(Path(gate_file))
    return run_blocking(Settings(), "worker", engine_loader=gate.engine_loader, before_start=gate.arm)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.gated_worker GATE_FILE")
    sys.exit(main(sys.argv[1]))
