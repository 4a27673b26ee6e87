"""End-to-end throughput of the caption pipeline: store, enqueue, batch, caption, store result, deliver.

Closed-loop senders (each sends a photo, waits for its reply, sends the next) at several
concurrency levels, with micro-batching on (batch 16) and off (batch 1), in the embedded mode
(SQLite + memory://) and the Redis mode (Redis Streams + PostgreSQL when reachable, else SQLite).
Prints requests/s and p50/p95 latency from submit to reply.

Uses the shipped model (captioner/assets/captionbot-flickr8k.pt) when present; otherwise a
RANDOM-WEIGHT model of the real size (same encoder and decoder widths: the speed is real, the
captions are nonsense), clearly labelled in the output.

    python -m benchmarks.pipeline            # full run (minutes; don't run it next to training)
    python -m benchmarks.pipeline --quick    # a short smoke run
    python -m benchmarks.pipeline --quick --tiny   # smoke run with a tiny model (seconds)

Not a test: nothing asserts, it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Row:
    mode: str
    batching: str
    senders: int
    requests: int
    seconds: float
    latencies: list[float]
    model_seconds: float = 0.0  # time inside batched model calls (the rest is glue: DB, queue, decoding)
    batches: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000 if data else float("nan")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pick_model(tmp: Path, tiny: bool) -> tuple[Path, str]:
    from captioner.checkpoint import DEFAULT_CHECKPOINT

    if tiny:
        from tests.tiny_model import make_tiny_checkpoint

        return make_tiny_checkpoint(tmp / "tiny.pt"), "tiny test model (random weights, NOT the real size)"
    if DEFAULT_CHECKPOINT.is_file():
        return DEFAULT_CHECKPOINT, f"shipped model {DEFAULT_CHECKPOINT.name}"
    import torch

    from captioner.checkpoint import save_checkpoint
    from captioner.model import Captioner, CaptionerConfig
    from captioner.vocab import Vocabulary

    # Flickr8k with min_count=5 keeps ~2,500 words; the widths are the defaults the trainer uses.
    vocab = Vocabulary.build([" ".join(f"w{i}" for i in range(2500))], min_count=1)
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=len(vocab)), pretrained_encoder=False).eval()
    path = save_checkpoint(tmp / "random-real-size.pt", model, vocab, extra={"version": "random-real-size"}, half=True)
    return path, "RANDOM WEIGHTS, real size (no shipped model found): speed is representative, captions are not"


async def make_database(kind: str, tmp: Path) -> tuple[str, Any]:
    """(async URL, cleanup coroutine function) for a fresh migrated database."""
    from captionbot.storage.db import upgrade_async

    if kind == "postgresql":
        import asyncpg

        name = f"captionbot_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(POSTGRES_ADMIN)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

        async def drop() -> None:
            c = await asyncpg.connect(POSTGRES_ADMIN)
            await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await c.close()

        await upgrade_async(url)
        return url, drop
    url = f"sqlite+aiosqlite:///{tmp}/bench-{uuid.uuid4().hex[:8]}.db"
    await upgrade_async(url)

    async def nothing() -> None:
        return None

    return url, nothing


async def run_one(
    *,
    mode: str,
    batch_size: int,
    senders: int,
    requests: int,
    model: Path,
    tmp: Path,
    photos: list[bytes],
    torch_threads: int = 0,
) -> Row:
    from captionbot.settings import Settings
    from captionbot_cli.runtime import Stack

    db_kind = "sqlite"
    broker = "memory://"
    prefix = None
    if mode == "redis":
        prefix = f"cbbench-{uuid.uuid4().hex[:8]}"
        broker = f"{REDIS_URL}?queue_prefix={prefix}"
        db_kind = "postgresql" if _reachable("127.0.0.1", 5432) else "sqlite"
    url, cleanup = await make_database(db_kind, tmp)
    settings = Settings(
        data_dir=tmp,
        database_url=url,
        broker_url=broker,
        image_store_dir=tmp / "images",
        model_path=model,
        batch_size=batch_size,
        batch_wait_ms=20 if batch_size > 1 else 0,
        beam_size=3,
        metrics_port=0,
        user_burst=100_000,
        user_rate_per_minute=1e6,
        user_max_pending=100_000,
        queue_max_pending=100_000,
        telegram_bot_token=None,
        discord_bot_token=None,
        torch_threads=torch_threads,
    )
    waiters: dict[str, asyncio.Future[float]] = {}

    async def on_delivery(delivery: Any) -> None:
        fut = waiters.get(delivery.request_id)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    def register(stack: Any) -> None:
        stack.service.register_delivery_handler("telegram", on_delivery)

    stack = await Stack.open(settings, "all", adapters=False, before_start=register)
    model_s0, batches0 = _histogram_sum_count("captionbot_caption_latency_seconds")
    latencies: list[float] = []
    remaining = requests

    async def sender(i: int) -> None:
        nonlocal remaining
        loop = asyncio.get_running_loop()
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            out = await stack.service.submit(
                platform="telegram",
                platform_chat_id=str(i),
                chat_kind="private",
                platform_user_id=str(i),
                display_name=None,
                image_bytes=photos[(i + remaining) % len(photos)],
                source_message_id=None,
            )
            if not out.ok:
                raise RuntimeError(f"refused: {out}")
            fut = waiters.setdefault(out.request_id, loop.create_future())
            done_at = await asyncio.wait_for(fut, 600)
            latencies.append(done_at - t0)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(i) for i in range(senders)))
        elapsed = time.perf_counter() - t0
        model_s1, batches1 = _histogram_sum_count("captionbot_caption_latency_seconds")
    finally:
        await stack.close()
        await cleanup()
        if prefix:
            from redis.asyncio import Redis

            async with Redis.from_url(REDIS_URL) as conn:
                keys = [k async for k in conn.scan_iter(match=f"*{prefix}*")]
                if keys:
                    await conn.delete(*keys)
    return Row(
        f"{mode} ({db_kind})",
        "on (16)" if batch_size > 1 else "off (1)",
        senders,
        requests,
        elapsed,
        latencies,
        model_s1 - model_s0,
        int(batches1 - batches0),
    )


def _histogram_sum_count(name: str) -> tuple[float, float]:
    """(sum, count) of one of the worker's Prometheus histograms, read in-process."""
    from prometheus_client import REGISTRY

    total = REGISTRY.get_sample_value(f"{name}_sum") or 0.0
    count = REGISTRY.get_sample_value(f"{name}_count") or 0.0
    return total, count


def photo_set(n: int = 16) -> list[bytes]:
    """Distinct photo-sized JPEGs (noise, so every photo is a new upload of realistic size)."""
    import io
    import random

    from PIL import Image

    rng = random.Random(0)
    out = []
    for _ in range(n):
        im = Image.effect_noise((640, 480), 64).convert("RGB")
        im = Image.merge("RGB", [c.point(lambda v, s=rng.randint(0, 80): min(255, v + s)) for c in im.split()])
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def print_table(rows: list[Row], model_label: str) -> None:
    print(f"\nmodel: {model_label}")
    header = (
        f"{'mode':<22} {'batching':<9} {'senders':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>9} {'p95 ms':>9}"
        f" {'batch':>6} {'model %':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        mean_batch = r.requests / r.batches if r.batches else float("nan")
        busy = 100 * r.model_seconds / r.seconds if r.seconds else float("nan")
        print(
            f"{r.mode:<22} {r.batching:<9} {r.senders:>7} {r.requests:>8} {r.rps:>8.2f} "
            f"{r.pct(0.5):>9.0f} {r.pct(0.95):>9.0f} {mean_batch:>6.1f} {busy:>8.0f}"
        )
    if rows:
        print(f"(median of all latencies: {statistics.median(x for r in rows for x in r.latencies) * 1000:.0f} ms)")


async def main_async(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="captionbot-bench-"))
    model, label = pick_model(tmp, args.tiny)
    photos = photo_set()
    senders = args.senders or ([1, 8] if args.quick else [1, 8, 32])
    modes = ["embedded"] + (["redis"] if _reachable("127.0.0.1", 6379) else [])
    if args.modes:
        modes = [m for m in modes if m in args.modes]
    if not _reachable("127.0.0.1", 6379):
        print("Redis not reachable at 127.0.0.1:6379: embedded mode only")
    rows = []
    for mode in modes:
        for batch in (16, 1):
            for n in senders:
                requests = args.requests or (max(4, 2 * n) if args.quick else max(32, 4 * n))
                row = await run_one(
                    mode=mode,
                    batch_size=batch,
                    senders=n,
                    requests=requests,
                    model=model,
                    tmp=tmp,
                    photos=photos,
                    torch_threads=args.torch_threads,
                )
                rows.append(row)
                print(f"  {row.mode} batching {row.batching} senders {n}: {row.rps:.2f} req/s", flush=True)
    print_table(rows, label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few requests, senders 1 and 8")
    parser.add_argument("--tiny", action="store_true", help="use the tiny test model (smoke run)")
    parser.add_argument("--requests", type=int, default=0, help="requests per configuration")
    parser.add_argument("--torch-threads", type=int, default=0, help="model threads (0 = torch's default)")
    parser.add_argument("--senders", type=int, nargs="+", help="concurrency levels (default 1 8 32)")
    parser.add_argument("--modes", nargs="+", choices=["embedded", "redis"], help="default: both")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
