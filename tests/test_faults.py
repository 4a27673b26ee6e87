"""Fault injection with real processes on PostgreSQL + Redis Streams: nothing lost, nothing sent twice.

* a worker killed with SIGKILL in the middle of a batch: another worker re-claims its jobs;
* the bot process killed with jobs in flight: the next one delivers what finished meanwhile;
* Redis connections cut and Redis paused while photos flow.

Every delivery the bot processes make is appended to a file, so the tests count handler calls per
request across processes. Run this file as ``python -m tests.test_faults bot CALLS_FILE`` to get
the recording bot process the tests start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.tiny_model import (
    REDIS_URL,
    child_env,
    make_settings,
    open_backend,
    png_bytes,
    until,
)

pytestmark = [pytest.mark.timeout(90), pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
RECLAIM_AFTER_S = 2.0  # a dead worker's jobs come back after this long (fast, for the test)
PHOTOS = ["red", "green", "blue", "yellow", "white", "black", "orange", "purple"]


@pytest.fixture(params=[pytest.param("postgresql-redis", id="postgresql-redis")])
async def backend(request, tmp_path):
    async with open_backend(request, tmp_path, reclaim_after=RECLAIM_AFTER_S) as b:
        yield b


class Processes:
    """Starts `python -m ...` children with the test's settings; kills leftovers at the end."""

    def __init__(self, tmp_path: Path, backend: Any) -> None:
        self.tmp = tmp_path
        self.env = child_env(tmp_path, backend, CAPTIONBOT_BATCH_WAIT_MS="100", CAPTIONBOT_MAX_ATTEMPTS="3")
        self.children: list[subprocess.Popen[bytes]] = []
        self.calls = tmp_path / "calls.txt"
        self.calls.touch()

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        child = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.children.append(child)
        return child

    def worker(self, name: str, gate: Path | None = None) -> subprocess.Popen[bytes]:
        """``captionbot worker``; with ``gate``, one whose batches wait for that file (tests/gated_worker.py)."""
        if gate is None:
            return self.start(name, "captionbot_cli", "worker")
        return self.start(name, "tests.gated_worker", str(gate))

    def bot(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(name, "tests.test_faults", "bot", str(self.calls))

    @staticmethod
    def kill9(child: subprocess.Popen[bytes]) -> None:
        child.send_signal(signal.SIGKILL)
        child.wait(10)

    def delivered_calls(self) -> Counter[str]:
        return Counter(line for line in self.calls.read_text().split() if line)

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(5)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log")))


@pytest.fixture
async def procs(tmp_path, backend):
    p = Processes(tmp_path, backend)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
async def client(tmp_path, backend):
    """The test's own view: a CaptionService that submits (it consumes no queue)."""
    from captionbot.broker import Queues
    from captionbot.service import CaptionService
    from captionbot.storage.db import create_engine, make_session_factory
    from captionbot.storage.imagestore import ImageStore

    settings = make_settings(tmp_path, backend, user_burst=100, user_max_pending=100)
    engine = create_engine(settings.database_url)
    queues = Queues(settings.broker_url)
    service = CaptionService(settings, make_session_factory(engine), ImageStore(settings.image_store_dir), queues)
    await queues.start()
    try:
        yield service
    finally:
        await queues.stop(5)
        await engine.dispose()


async def submit_all(service: Any, colors: list[str]) -> list[str]:
    ids = []
    for i, color in enumerate(colors):
        out = await service.submit(
            platform="telegram",
            platform_chat_id="1",
            chat_kind="private",
            platform_user_id=str(i),
            display_name=None,
            image_bytes=png_bytes(color),
            source_message_id=str(i),
        )
        assert out.ok, out
        ids.append(out.request_id)
    return ids


async def statuses(service: Any) -> Counter[str]:
    from sqlalchemy import func, select

    from captionbot.storage.models import CaptionRequest

    async with service.session_factory() as session:
        rows = await session.execute(select(CaptionRequest.status, func.count()).group_by(CaptionRequest.status))
        return Counter({str(status): n for status, n in rows})


async def assert_each_delivered_once(procs: Processes, service: Any, ids: list[str], within: float) -> None:
    async def all_delivered() -> bool:
        return set(procs.delivered_calls()) >= set(ids) and (await statuses(service))["delivered"] == len(ids)

    try:
        await until(all_delivered, within=within, interval=0.2)
    except TimeoutError:
        pytest.fail(f"not all delivered: {await statuses(service)}\n{procs.logs()}")
    await asyncio.sleep(RECLAIM_AFTER_S)  # anything re-sent late would show up now
    calls = procs.delivered_calls()
    assert {i: calls[i] for i in ids} == dict.fromkeys(ids, 1), procs.logs()


async def test_worker_killed_mid_batch_loses_nothing(procs, client, tmp_path):
    gate = tmp_path / "gate"
    procs.bot("bot")
    w1 = procs.worker("worker1", gate=gate)
    ids = await submit_all(client, PHOTOS)
    waiting = gate.with_name(gate.name + ".waiting")
    await until(lambda: _exists(waiting), within=30)
    assert (await statuses(client))["running"] >= 1  # the kill lands inside a batch
    procs.kill9(w1)
    procs.worker("worker2")  # no gate
    await assert_each_delivered_once(procs, client, ids, within=45)


async def test_bot_killed_with_jobs_in_flight_delivers_after_restart(procs, client, tmp_path):
    gate = tmp_path / "gate"
    b1 = procs.bot("bot1")
    procs.worker("worker", gate=gate)
    ids = await submit_all(client, PHOTOS[:5])
    await until(lambda: _exists(gate.with_name(gate.name + ".waiting")), within=30)
    procs.kill9(b1)  # before any result exists: every reply is still to come
    gate.touch()

    async def all_done() -> bool:
        return (await statuses(client))["done"] == len(ids)

    await until(all_done, within=30, interval=0.2)
    assert procs.delivered_calls() == Counter()
    procs.bot("bot2")
    await assert_each_delivered_once(procs, client, ids, within=30)


async def test_redis_connections_cut_and_redis_paused_loses_nothing(procs, client, backend):
    from redis.asyncio import Redis

    procs.bot("bot")
    procs.worker("worker")
    first = await submit_all(client, PHOTOS[:4])
    async with Redis.from_url(REDIS_URL) as admin:
        await until(lambda: _some_delivered(procs), within=30, interval=0.2)
        # Cut every connection of this test's processes (and only theirs) ...
        clients = await admin.client_list()
        ours = [c["id"] for c in clients if c.get("name") == backend.redis_prefix]
        assert ours
        for client_id in ours:
            await admin.execute_command("CLIENT", "KILL", "ID", client_id)
        # ... then pause Redis for a second while more photos arrive.
        await admin.execute_command("CLIENT", "PAUSE", 1000, "WRITE")
        second = await submit_all(client, PHOTOS[4:])
    await assert_each_delivered_once(procs, client, first + second, within=45)


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


async def _some_delivered(procs: Processes) -> bool:
    return len(procs.delivered_calls()) > 0


# --------------------------------------------------------------------- the recording bot process


def _bot_main(calls_file: str) -> None:
    """A bot process whose "chat adapter" appends each delivered request id to ``calls_file``."""
    from captionbot.settings import Settings
    from captionbot_cli.runtime import register_adapter_factory, serve

    class Recorder:
        def __init__(self, service: Any) -> None:
            service.register_delivery_handler("telegram", self.deliver)

        async def deliver(self, delivery: Any) -> str:
            fd = os.open(calls_file, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, f"{delivery.request_id}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            return "1"

        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            pass

    register_adapter_factory("recorder", lambda _settings, service: Recorder(service))
    from captionbot_cli.runtime import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(serve(settings, "bot", service_options={"sweep_interval_s": 1.0, "delivery_lease_s": 5.0}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "bot":
        _bot_main(sys.argv[2])
    else:
        sys.exit("usage: python -m tests.test_faults bot CALLS_FILE")
