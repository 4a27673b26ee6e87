"""A tiny captioning checkpoint for fast tests (and for the bot engineers' tests to reuse).

``make_tiny_checkpoint(path)`` writes a random-weight model with a 16-wide decoder and 64x64
inputs; it captions a photo in a few milliseconds. Files are built once per test session (per
``version``) and copied to the path asked for.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

from tests.gated_engine import BatchGate

CAPTIONS = [
    "a dog runs on the grass",
    "a red car on the street",
    "two people sit on a bench",
    "a cat sleeps on a blue sofa",
    "a child plays with a ball",
]


@cache
def _build(version: str, seed: int) -> Path:
    import torch

    from captioner.checkpoint import save_checkpoint
    from captioner.model import Captioner, CaptionerConfig
    from captioner.vocab import Vocabulary

    vocab = Vocabulary.build(CAPTIONS, min_count=1)
    torch.manual_seed(seed)
    cfg = CaptionerConfig(
        vocab_size=len(vocab),
        feature_dim=16,
        embed_dim=16,
        hidden_dim=16,
        attention_dim=16,
        max_len=8,
        image_size=64,
    )
    model = Captioner(cfg, pretrained_encoder=False).eval()
    out = Path(tempfile.mkdtemp(prefix="captionbot-tiny-")) / f"{version}.pt"
    return save_checkpoint(out, model, vocab, extra={"version": version})


def make_tiny_checkpoint(path: str | Path | None = None, *, version: str = "tiny-v1", seed: int = 0) -> Path:
    """A tiny checkpoint whose ``CaptionEngine.version`` is ``version``; copied to ``path`` if given."""
    built = _build(version, seed)
    if path is None:
        return built
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, path)
    return path


#: Band thresholds that put every caption in one band (confidence is always in [0, 1]).
BAND_THRESHOLDS = {
    "sure": {"probable_from": 0.0, "sure_from": 0.0},
    "probable": {"probable_from": 0.0, "sure_from": 1.01},
    "unsure": {"probable_from": 1.01, "sure_from": 1.01},
}


@cache
def make_banded_checkpoint(band: str, *, tagged_class: int | None = 281) -> Path:
    """A tiny checkpoint whose every caption is phrased in ``band``, with an image tagger that is sure
    of one ImageNet class for every photo (281 = "tabby": the hint is "a cat"), guidance off."""
    import torch

    from captioner.checkpoint import load_checkpoint, save_checkpoint
    from training.tagger import attach_tagger

    model, vocab, payload = load_checkpoint(_build("tiny-v1", 0))
    if tagged_class is not None:
        bias = torch.zeros(1000)
        bias[tagged_class] = 20.0
        attach_tagger(model, torch.zeros(1000, model.cfg.encoder_channels), bias)
    calibration = {"bands": BAND_THRESHOLDS[band], "guidance": {"force_above": 1.01, "hint_above": 0.5}}
    out = Path(tempfile.mkdtemp(prefix="captionbot-tiny-")) / f"tiny-{band}.pt"
    return save_checkpoint(out, model, vocab, extra={"version": f"tiny-{band}"}, calibration=calibration)


def png_bytes(color: str = "red", size: tuple[int, int] = (32, 24)) -> bytes:
    """A small valid PNG photo."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------ pipeline test helpers

REDIS_URL = os.environ.get("CAPTIONBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available() -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def redis_broker_url(*, reclaim_after: float | None = None) -> tuple[str, str]:
    """(broker URL with a unique queue prefix, that prefix): tests never share streams."""
    prefix = f"cbtest-{uuid.uuid4().hex[:10]}"
    url = f"{REDIS_URL}?queue_prefix={prefix}"
    if reclaim_after is not None:
        url += f"&reclaim_after={reclaim_after}"
    return url, prefix


async def purge_redis(prefix: str) -> None:
    """Delete every key of a test's queue prefix."""
    from redis.asyncio import Redis

    async with Redis.from_url(REDIS_URL) as conn:
        keys = [k async for k in conn.scan_iter(match=f"*{prefix}*")]
        if keys:
            await conn.delete(*keys)


async def until(condition: Callable[[], Awaitable[bool]], within: float = 10.0, interval: float = 0.05) -> None:
    """Wait for an async condition (e.g. a DB state another process produces), or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


class DeliveryRecorder:
    """A delivery handler that records every call; ``await wait_for(n)`` until n calls."""

    def __init__(self, fail_times: int = 0) -> None:
        self.deliveries: list[Any] = []
        self.calls: Counter[str] = Counter()
        self.fail_times = fail_times
        self._changed = asyncio.Event()

    async def __call__(self, delivery: Any) -> str:
        self.calls[delivery.request_id] += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("chat API down (test)")
        self.deliveries.append(delivery)
        self._changed.set()
        return f"reply-{len(self.deliveries)}"

    def by_request(self, request_id: str) -> list[Any]:
        return [d for d in self.deliveries if d.request_id == request_id]

    async def wait_for(self, n: int, within: float = 15.0) -> None:
        async with asyncio.timeout(within):
            while len(self.deliveries) < n:
                self._changed.clear()
                await self._changed.wait()


# ---------------------------------------------------------------------- backends and pipelines

import contextlib  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402

#: The two deployments the pipeline tests run on.
BACKEND_PARAMS = [
    pytest.param("sqlite-memory", id="sqlite-memory"),
    pytest.param("postgresql-redis", id="postgresql-redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
]


@dataclass
class Backend:
    database_url: str
    broker_url: str
    redis_prefix: str | None = None


@contextlib.asynccontextmanager
async def open_backend(
    request: pytest.FixtureRequest, tmp_path: Path, *, reclaim_after: float | None = None
) -> AsyncIterator[Backend]:
    """A migrated database + a broker URL for ``request.param``; Redis keys are removed after."""
    from captionbot.storage.db import upgrade_async

    if request.param == "sqlite-memory":
        url = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
        await upgrade_async(url)
        yield Backend(url, "memory://")
        return
    if not redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    from tests.conftest import _pg_execute

    url = request.getfixturevalue("postgres_database")
    await _pg_execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    await upgrade_async(url)
    broker, prefix = redis_broker_url(reclaim_after=reclaim_after)
    try:
        yield Backend(url, broker, prefix)
    finally:
        await purge_redis(prefix)


def make_settings(tmp_path: Path, backend: Backend, **overrides: Any) -> Any:
    """Settings for a fast pipeline: the tiny model, small batches, no metrics port."""
    from captionbot.settings import Settings

    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": backend.database_url,
        "broker_url": backend.broker_url,
        "image_store_dir": tmp_path / "images",
        "model_path": make_tiny_checkpoint(),
        "device": "cpu",
        "batch_size": 4,
        "batch_wait_ms": 20,
        "beam_size": 1,
        "max_attempts": 2,
        "metrics_port": 0,
        "web_port": 0,
        "read_text": False,  # tests that read text turn it on (tests/test_worker_reads_text.py)
        "telegram_bot_token": None,
        "discord_bot_token": None,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def open_pipeline(
    settings: Any,
    *,
    recorder: DeliveryRecorder | None = None,
    platform: str = "telegram",
    role: str = "all",
    gate: BatchGate | None = None,
    **open_kwargs: Any,
) -> AsyncIterator[Any]:
    """A started :class:`captionbot_cli.runtime.Stack` whose ``platform`` deliveries go to ``recorder``.

    ``gate``: the worker's batches wait at it from when the stack is open until the test opens it, or
    the stack closes (the batch held must finish for the worker to stop); see tests/gated_engine.py."""
    from captionbot_cli.runtime import Stack

    def register(stack: Any) -> None:
        if recorder is not None and stack.service is not None:
            stack.service.register_delivery_handler(platform, recorder)

    if gate is not None:
        open_kwargs["engine_loader"] = gate.engine_loader
    stack = await Stack.open(settings, role, adapters=False, before_start=register, **open_kwargs)
    if gate is not None:
        gate.arm()
    try:
        yield stack
    finally:
        if gate is not None:
            gate.open()
        await stack.close(grace=10)


async def submit(stack: Any, image: bytes | None = None, *, user: str = "7", chat: str = "42", **kw: Any) -> Any:
    return await stack.service.submit(
        platform=kw.pop("platform", "telegram"),
        platform_chat_id=chat,
        chat_kind=kw.pop("chat_kind", "private"),
        platform_user_id=user,
        display_name=f"user {user}",
        image_bytes=image or png_bytes(),
        source_message_id=kw.pop("source_message_id", "100"),
        reply_context=kw.pop("reply_context", {"k": 1}),
    )


def child_env(tmp_path: Path, backend: Backend, **extra: str) -> dict[str, str]:
    """The environment of a captionbot process a test starts: this machine's, minus tokens and
    captionbot settings, plus the test's database, broker, folders and the tiny model."""
    env = {k: v for k, v in os.environ.items() if "TOKEN" not in k and not k.startswith("CAPTIONBOT_")}
    env.update(
        CAPTIONBOT_DATABASE_URL=backend.database_url,
        CAPTIONBOT_BROKER_URL=backend.broker_url,
        CAPTIONBOT_DATA_DIR=str(tmp_path),
        CAPTIONBOT_IMAGE_STORE_DIR=str(tmp_path / "images"),
        CAPTIONBOT_MODEL_PATH=str(make_tiny_checkpoint()),
        CAPTIONBOT_DEVICE="cpu",
        CAPTIONBOT_METRICS_PORT="0",
        CAPTIONBOT_WEB_PORT="0",
        CAPTIONBOT_READ_TEXT="0",
        CAPTIONBOT_BATCH_SIZE="4",
        CAPTIONBOT_BEAM_SIZE="1",
        CAPTIONBOT_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


__all__ = [
    "BACKEND_PARAMS",
    "Backend",
    "make_settings",
    "open_backend",
    "open_pipeline",
    "submit",
    "CAPTIONS",
    "child_env",
    "REDIS_URL",
    "DeliveryRecorder",
    "make_tiny_checkpoint",
    "png_bytes",
    "purge_redis",
    "redis_available",
    "redis_broker_url",
    "until",
]
