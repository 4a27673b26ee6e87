"""A small world for the learning-loop tests, made through the real pipeline: people send photos
(the worker captions them with the tiny model), then rate and correct the captions."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from tests.tiny_model import DeliveryRecorder, make_settings, submit

VERBS = ["runs", "sits", "plays", "sleeps", "stands", "walks", "jumps", "rests", "waits", "looks"]
PLACES = ["grass", "sand", "road", "hill", "field", "snow"]
# Fast, decisive fine-tuning for a 16-wide model (a real model uses the defaults).
ROUND_SETTINGS: dict[str, Any] = {
    "learn_epochs": 60,
    "learn_feedback_repeats": 1,
    "learn_lr": 1e-2,
    "learn_holdout_fraction": 0.2,
    "learn_lease_s": 60.0,
    "user_burst": 10_000,
    "user_rate_per_minute": 1e6,
    "user_max_pending": 10_000,
    "queue_max_pending": 10_000,
}


def photo(red: bool, i: int) -> bytes:
    """A 64x64 photo: red shades or blue shades, each one different (so each has its own digest)."""
    shade = 150 + i
    color = (shade, i % 40, 20) if red else (20, i % 40, shade)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buf, format="PNG")
    return buf.getvalue()


def settings_for(tmp_path: Path, backend: Any, **overrides: Any) -> Any:
    return make_settings(tmp_path, backend, **(ROUND_SETTINGS | overrides))


@dataclass
class World:
    red: list[int] = field(default_factory=list)  # caption ids of red photos
    blue: list[int] = field(default_factory=list)


async def captioned(stack: Any, recorder: DeliveryRecorder, n: int = 48, first: int = 0) -> World:
    """``n`` red and ``n`` blue photos (numbers ``first``..), sent by six people, captioned by the
    serving model."""
    world = World()
    sent = {}
    already = len(recorder.deliveries)
    for i in range(first, first + n):
        for red in (True, False):
            out = await submit(stack, photo(red, i), user=f"sender{i % 6}", chat=f"chat{i % 6}")
            sent[out.request_id] = red
    await recorder.wait_for(already + 2 * n, within=60)
    for d in recorder.deliveries[already:]:
        assert d.ok and d.caption_id is not None
        (world.red if sent[d.request_id] else world.blue).append(d.caption_id)
    return world


async def teach(stack: Any, world: World) -> None:
    """Six people say the red photos show a zebra (a word the model does not know) and the blue ones
    two people on a bench; every caption is rated bad by its sender."""
    service = stack.service
    for i, cid in enumerate(world.red):
        who = f"sender{i % 6}"
        await service.rate(caption_id=cid, platform="telegram", platform_user_id=who, rating=-1)
        text = f"a zebra {VERBS[i % 10]} on the {PLACES[i % 6]}"
        await service.correct(caption_id=cid, platform="telegram", platform_user_id=who, text=text)
    for i, cid in enumerate(world.blue):
        who = f"sender{i % 6}"
        await service.rate(caption_id=cid, platform="telegram", platform_user_id=who, rating=-1)
        text = f"two people {VERBS[i % 10]} on a bench {PLACES[i % 6]}"
        await service.correct(caption_id=cid, platform="telegram", platform_user_id=who, text=text)


def learning_service(stack: Any, settings: Any, **kw: Any) -> Any:
    from captionbot.service import LearningService

    return LearningService(settings, stack.session_factory, stack.image_store, **kw)
