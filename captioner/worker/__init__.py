"""The caption worker: claims jobs, captions them in micro-batches, stores results, notifies the bot.

The parts, one module each:

* :mod:`~captioner.worker.batch_loop` - per job: **claim** the request, decode the photo,
  **caption** it in a micro-batch (one ``engine.caption`` call per batch, in a thread), **complete**
  it (or fail/retry it) and send a delivery notice; stopping hands waiting jobs back to the queue;
* :mod:`~captioner.worker.models` - the model served: the promoted ModelVersion (sha256-checked) or
  the configured checkpoint, and the hot swap to a newly promoted one while the old one keeps serving;
* :mod:`~captioner.worker.recovery` - re-enqueueing requests left stale by dead processes, at start
  and periodically;
* :mod:`~captioner.worker.options` - :class:`WorkerOptions`;
* :mod:`~captioner.worker.caption_worker` - :class:`CaptionWorker`, which composes them and is what
  ``captionbot worker`` / ``captionbot run`` start (wired in ``captionbot_cli.runtime``).
"""

from captioner.worker.batch_loop import BatchLoop, Captioned
from captioner.worker.caption_worker import CaptionWorker
from captioner.worker.models import LoadedModel, ModelFileChangedError, ModelManager
from captioner.worker.options import EngineLoader, WorkerOptions
from captioner.worker.recovery import StaleRecovery

__all__ = [
    "BatchLoop",
    "CaptionWorker",
    "Captioned",
    "EngineLoader",
    "LoadedModel",
    "ModelFileChangedError",
    "ModelManager",
    "StaleRecovery",
    "WorkerOptions",
]
