"""What the web page adds to an answer: closed-loop senders through the page's own API (upload with
the CSRF token, then long-poll until the caption) against the same senders calling the service
directly, on one running stack (embedded: SQLite + in-process queue, the shipped model), rounds
alternating so both see the same machine. Also times the upload page (GET /) while photos are being
captioned.

    PYTHONPATH=. .venv/bin/python benchmarks/web_page.py                 # 8 and 32 senders
    PYTHONPATH=. .venv/bin/python benchmarks/web_page.py --quick --tiny  # smoke run (seconds)

Not a test: nothing asserts, it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.pipeline import make_database, pick_model
from tests.web.browser import free_port

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def photos(n: int = 16) -> list[bytes]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray((rng.random((240, 320, 3)) * 255).astype("uint8")).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def pct(data: list[float], q: float) -> float:
    data = sorted(data)
    return data[min(len(data) - 1, int(q * len(data)))] * 1000 if data else float("nan")


async def web_sender(base: str, pictures: list[bytes], count: int, offset: int, out: list[float]) -> None:
    """One visitor (own cookies): upload, long-poll until finished, again."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(base + "/") as page:
            match = TOKEN.search(await page.text())
        assert match, "no CSRF token on the upload page"
        headers = {"X-CSRF-Token": match.group(1), "Accept": "application/json"}
        for i in range(count):
            form = aiohttp.FormData()
            form.add_field("photo", pictures[(offset + i) % len(pictures)], filename="p.jpg", content_type="image/jpeg")
            t0 = time.perf_counter()
            async with http.post(base + "/api/caption", data=form, headers=headers) as r:
                body = await r.json()
                if r.status != 202:
                    raise RuntimeError(f"refused: {r.status} {body}")
            while True:
                async with http.get(f"{base}/api/r/{body['request_id']}?wait=25", headers=headers) as r:
                    view = await r.json()
                if view.get("finished"):
                    break
            out.append(time.perf_counter() - t0)


async def service_sender(
    stack: Any, waiters: dict[str, Any], pictures: list[bytes], count: int, i: int, out: list[float]
) -> None:
    loop = asyncio.get_running_loop()
    for k in range(count):
        t0 = time.perf_counter()
        sub = await stack.service.submit(
            platform="telegram",
            platform_chat_id=str(i),
            chat_kind="private",
            platform_user_id=str(i),
            display_name=None,
            image_bytes=pictures[(i + k) % len(pictures)],
            source_message_id=None,
        )
        if not sub.ok:
            raise RuntimeError(f"refused: {sub}")
        fut = waiters.setdefault(sub.request_id, loop.create_future())
        await asyncio.wait_for(fut, 600)
        out.append(time.perf_counter() - t0)


async def probe_page(base: str, stop: asyncio.Event, out: list[float]) -> None:
    """GET / every 200 ms while photos are captioned: what a new visitor waits for the page."""
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            async with http.get(base + "/") as r:
                await r.read()
            out.append(time.perf_counter() - t0)
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass


async def main(args: argparse.Namespace) -> None:
    from captionbot.settings import Settings
    from captionbot_cli.runtime import Stack

    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="cb-web-bench-"))
    model, label = pick_model(tmp, args.tiny)
    url, cleanup = await make_database("sqlite", tmp)
    port = free_port()
    settings = Settings(
        data_dir=tmp,
        database_url=url,
        broker_url="memory://",
        image_store_dir=tmp / "images",
        model_path=model,
        beam_size=3,
        metrics_port=0,
        web_port=port,
        user_burst=100_000,
        user_rate_per_minute=1e6,
        user_max_pending=100_000,
        queue_max_pending=100_000,
        web_uploads_per_minute=1_000_000,
        telegram_bot_token=None,
        discord_bot_token=None,
    )
    waiters: dict[str, asyncio.Future[float]] = {}

    async def on_delivery(delivery: Any) -> None:
        fut = waiters.get(delivery.request_id)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    stack = await Stack.open(
        settings,
        "all",
        only_adapters=["web"],
        before_start=lambda st: st.service.register_delivery_handler("telegram", on_delivery),
    )
    base = f"http://127.0.0.1:{port}"
    pictures = photos()
    print(f"model: {label}; embedded (SQLite + in-process queue); beam 3")
    print(f"{'path':<16}{'senders':>8}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'GET / p95 ms':>14}")
    try:
        for senders in args.senders:
            results: dict[str, tuple[list[float], float, list[float]]] = {
                "service": ([], 0.0, []),
                "web page": ([], 0.0, []),
            }
            for _ in range(args.rounds):
                for path in ("service", "web page"):
                    lat, seconds, page = results[path]
                    stop = asyncio.Event()
                    prober = asyncio.create_task(probe_page(base, stop, page))
                    t0 = time.perf_counter()
                    if path == "service":
                        await asyncio.gather(
                            *(service_sender(stack, waiters, pictures, args.each, i, lat) for i in range(senders))
                        )
                    else:
                        await asyncio.gather(*(web_sender(base, pictures, args.each, i, lat) for i in range(senders)))
                    results[path] = (lat, seconds + time.perf_counter() - t0, page)
                    stop.set()
                    await prober
            for path, (lat, seconds, page) in results.items():
                print(
                    f"{path:<16}{senders:>8}{len(lat):>9}{len(lat) / seconds:>8.2f}{pct(lat, 0.5):>9.0f}"
                    f"{pct(lat, 0.95):>9.0f}{pct(page, 0.95):>14.0f}"
                )
            web, svc = results["web page"][0], results["service"][0]
            print(f"  web page / service, median latency: {statistics.median(web) / statistics.median(svc):.2f}x")
    finally:
        await stack.close()
        await cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--each", type=int, default=4, help="photos per sender per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per path")
    parser.add_argument("--quick", action="store_true", help="2 senders, 2 photos each, 1 round")
    parser.add_argument("--tiny", action="store_true", help="the tiny test model (seconds; speed not representative)")
    a = parser.parse_args()
    if a.quick:
        a.senders, a.each, a.rounds = [2], 2, 1
    asyncio.run(main(a))
