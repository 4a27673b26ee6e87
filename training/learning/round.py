"""One learning round, end to end: lease, collect, screen, grow, fine-tune, judge, promote or keep.

Everything the round reads or writes in the database goes through
:class:`captionbot.service.LearningService`; the heavy work runs in a thread while the event loop
renews the round's lease. A round that dies leaves its row "running" with a stale heartbeat: the next
round marks it abandoned and starts clean (nothing is registered before the final transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from captionbot.service.learning_results import LeaseLostError, RoundRecord
from training.learning.candidate import Trained, train_candidate
from training.learning.hygiene import Screened, screen
from training.learning.photo_features import prune_feedback_cache
from training.learning.policy import Policy
from training.learning.round_report import format_report
from training.learning.targets import choose_fixed_photos

if TYPE_CHECKING:
    from captionbot.service.learning import LearningService
    from captionbot.settings import Settings


@dataclass
class RoundOutcome:
    record: RoundRecord
    report: str
    promoted: bool


async def run_round(
    settings: Settings, service: LearningService, *, progress: bool = True, holder: str | None = None
) -> RoundOutcome:
    """Run one round; raises RoundBusyError when another round holds the lease."""
    policy = Policy.from_settings(settings)
    lease = await service.begin_round(holder=holder or f"{socket.gethostname()}:{os.getpid()}")
    started = time.perf_counter()
    stop = threading.Event()
    beat = asyncio.create_task(_heartbeat(service, lease.round_id, settings.learn_lease_s / 4, stop))
    try:
        items = await service.usable_feedback()
        # Grids of photos that left the usable feedback (forget, opt-out, retention) go now too.
        pruned = prune_feedback_cache(settings.learning_dir / "features", {i.image_sha256 for i in items})
        screened = screen(items, policy)
        fixed_photos = lease.fixed_photos
        if not fixed_photos and not settings.learn_fixed_set:
            fixed_photos = choose_fixed_photos(screened, policy)
            if fixed_photos:
                await service.record_fixed_photos(lease.round_id, fixed_photos)
        if not any(t.new for t in screened.texts):
            trained = Trained(decision="skipped: no new usable feedback since the last promoted model")
        else:
            trained = await asyncio.to_thread(
                train_candidate, settings, policy, lease, screened, fixed_photos, stop=stop, progress=progress
            )
        trained.counts = _counts(items, screened) | trained.counts | {"cached photos deleted": pruned}
        trained.metrics["minutes"] = round((time.perf_counter() - started) / 60, 2)
        record = await service.finish_round(
            lease.round_id,
            counts=trained.counts,
            metrics=trained.metrics,
            decision=trained.decision,
            candidate=trained.candidate,
            promote=trained.promote,
        )
    except BaseException as exc:
        stop.set()
        with contextlib.suppress(Exception):
            await service.fail_round(lease.round_id, reason=f"failed: {type(exc).__name__}: {exc}"[:500])
        raise
    finally:
        stop.set()
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError, LeaseLostError):
            await beat
    report = format_report(record, lease, screened, trained.words)
    # The learner process logs one line per round; the whole report is kept beside the checkpoints.
    reports = settings.learning_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"round-{record.number}.txt").write_text(report + "\n", encoding="utf-8")
    return RoundOutcome(record, report, record.status == "promoted")


async def _heartbeat(service: LearningService, round_id: int, every_s: float, stop: threading.Event) -> None:
    """Renew the lease while the round works; a lost lease stops the training thread."""
    while not stop.is_set():
        await asyncio.sleep(every_s)
        try:
            await service.heartbeat(round_id)
        except LeaseLostError:
            stop.set()
            raise


def _counts(items: list[Any], screened: Screened) -> dict[str, Any]:
    kinds = [t.kind for t in screened.texts]
    return {
        "feedback items": len(items),
        "new items": sum(1 for i in items if i.new),
        "people": len({i.person for i in items}),
        "kept corrections": kinds.count("correction"),
        "kept good ratings": kinds.count("good"),
        "kept bad ratings": kinds.count("bad"),
        "filtered": dict(screened.dropped),
    }
