"""How long the one unprotected step of intake takes: from "the placeholder is posted" to "its id is
committed with the request". A crash inside it leaves a placeholder nobody edits (on Telegram the
photo is still answered once, from the resent update); a crash anywhere else leaves nothing.

    python -m benchmarks.placeholder_window                 # SQLite + memory:// and PostgreSQL + Redis
    python -m benchmarks.placeholder_window --photos 400 --senders 16

The real service with the tiny test model; concurrent senders (a burst from many people), each
photo with a placeholder callable that notes when it returned. The figure is an upper bound: it runs
until ``take_photo`` returns, which is after the commit plus one queue-position read and the enqueue.
Not a test: nothing asserts, it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.pipeline import REDIS_URL, _reachable, make_database


async def measure(kind: str, photos: int, senders: int) -> list[float]:
    from tests.tiny_model import Backend, make_settings, open_pipeline, png_bytes

    with tempfile.TemporaryDirectory() as tmp:
        url, drop = await make_database(kind, Path(tmp))
        broker = f"{REDIS_URL}?queue_prefix=bench-window-{time.time_ns()}" if kind == "postgresql" else "memory://"
        settings = make_settings(Path(tmp), Backend(url, broker), user_burst=100_000, user_max_pending=100_000)
        windows: list[float] = []
        try:
            async with open_pipeline(settings) as stack:
                sem = asyncio.Semaphore(senders)

                async def one(i: int) -> None:
                    returned = 0.0

                    async def placeholder() -> int:
                        nonlocal returned
                        returned = time.perf_counter()
                        return 10_000 + i

                    async def download() -> bytes:
                        return png_bytes(("red", "green", "blue", "white")[i % 4])

                    async with sem:
                        await stack.service.take_photo(
                            platform="telegram",
                            platform_chat_id=str(i),
                            chat_kind="private",
                            platform_user_id=str(i),
                            display_name=None,
                            download=download,
                            source_message_id=str(i),
                            intake_key=f"bench:{i}",
                            placeholder=placeholder,
                        )
                        windows.append((time.perf_counter() - returned) * 1000)

                await asyncio.gather(*(one(i) for i in range(photos)))
                await stack.queues.purge()
        finally:
            await drop()
        return windows


def describe(name: str, windows: list[float]) -> str:
    ordered = sorted(windows)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{name:20} {len(windows):5d} photos   median {statistics.median(windows):6.1f} ms   p95 {p95:6.1f} ms"


def main() -> None:  # pragma: no cover
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--senders", type=int, default=8)
    args = parser.parse_args()
    kinds: list[tuple[str, Any]] = [("sqlite + memory://", "sqlite")]
    if _reachable("127.0.0.1", 5432) and _reachable("127.0.0.1", 6379):
        kinds.append(("postgresql + redis", "postgresql"))
    else:
        print("postgresql + redis: skipped (not reachable on 127.0.0.1)")
    for name, kind in kinds:
        print(describe(name, asyncio.run(measure(kind, args.photos, args.senders))))


if __name__ == "__main__":  # pragma: no cover
    main()
