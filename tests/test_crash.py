"""Crash test: real processes killed with SIGKILL at random moments while photos flow, against the
fake Telegram Bot API. Counts, per photo, the answers people see: none may be lost, none doubled.

* ``captionbot run`` (everything in one process) on SQLite + memory:// and on PostgreSQL + Redis;
* the split deployment on PostgreSQL + Redis: ``captionbot worker`` killed, then ``captionbot bot``
  killed, each on its own.

Each test sends photos in waves and kills the process ten times, each time a random moment after
it began polling Telegram again (the schedule is seeded; the seed is in the failure message).
``python -m tests.test_crash`` is not needed: pytest runs it (marked slow).
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from captionbot import texts
from tests.telegram.conftest import buttons
from tests.telegram.fake_api import FakeTelegram, png
from tests.tiny_model import BACKEND_PARAMS, Backend, child_env, open_backend, until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parent.parent
KILLS = 10
PER_WAVE = 3  # photos sent just before each kill window
COLORS = ["red", "green", "blue", "yellow", "white", "black", "orange", "purple", "gray", "cyan"]


@dataclass
class Tally:
    photos: int = 0
    lost: list[int] = field(default_factory=list)  # photo message ids with no answer
    doubled: list[int] = field(default_factory=list)  # photo message ids with more than one answer
    orphans: int = 0  # placeholders never edited into an answer (posted, then the process died)

    def line(self) -> str:
        return (
            f"{self.photos} photos: {len(self.lost)} lost, {len(self.doubled)} doubled, "
            f"{self.orphans} placeholder(s) left behind"
        )


class Rig:
    """The fake Bot API in this process; captionbot processes started and killed around it."""

    def __init__(self, tmp: Path, backend: Backend, fake: FakeTelegram) -> None:
        self.tmp, self.fake = tmp, fake
        self.database_url = backend.database_url
        self.env = child_env(
            tmp,
            backend,
            TELEGRAM_BOT_TOKEN=fake.token,
            CAPTIONBOT_TELEGRAM_API_BASE_URL=fake.base_url,
            CAPTIONBOT_USER_BURST="100",
            CAPTIONBOT_USER_MAX_PENDING="100",
            CAPTIONBOT_DELIVERY_LEASE_S="3",
            CAPTIONBOT_DELIVERY_SWEEP_S="1",
        )
        self.children: list[subprocess.Popen[bytes]] = []
        self.photos: list[dict[str, Any]] = []
        self.users = 0

    def start(self, role: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{role}.log", "ab")  # noqa: SIM115 - the child owns it
        child = subprocess.Popen(
            [sys.executable, "-m", "captionbot_cli", role], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.children.append(child)
        return child

    @staticmethod
    def kill9(child: subprocess.Popen[bytes]) -> None:
        child.send_signal(signal.SIGKILL)
        child.wait(10)

    async def polling_again(self, since: int) -> None:
        """Until a getUpdates call newer than the first ``since`` calls (the new process is in)."""
        await self.fake.wait_for(lambda: len(self.fake.calls_of("getUpdates")) > since or None, within=60)

    def send_wave(self, n: int) -> None:
        for _ in range(n):
            self.users += 1
            user = self.fake.user(1000 + self.users, f"User {self.users}")
            color = COLORS[self.users % len(COLORS)]
            self.photos.append(self.fake.send(self.fake.private_chat(user), user, photo=png(color)))

    def answers(self, photo: dict[str, Any]) -> list[dict[str, Any]]:
        replies = self.fake.replies_to(photo["chat"]["id"], photo["message_id"])
        return [m for m in replies if any(data.startswith("r1:") for _, data in buttons(m))]

    def all_answered(self) -> bool:
        return all(self.answers(p) for p in self.photos)

    def tally(self) -> Tally:
        t = Tally(photos=len(self.photos))
        for p in self.photos:
            n = len(self.answers(p))
            if n == 0:
                t.lost.append(p["message_id"])
            elif n > 1:
                t.doubled.append(p["message_id"])
            replies = self.fake.replies_to(p["chat"]["id"], p["message_id"])
            t.orphans += sum(1 for m in replies if m.get("text") == texts.DESCRIBING)
        return t

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
                child.wait(10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.tmp.glob("*.log")))


async def run_with_kills(rig: Rig, *, victim: str, others: tuple[str, ...], seed: int) -> Tally:
    """Start ``victim`` (and ``others``), send waves of photos and SIGKILL ``victim`` KILLS times at
    random moments; then let everything finish and count the answers."""
    rng = random.Random(seed)
    for role in others:
        rig.start(role)
    proc = rig.start(victim)
    for _ in range(KILLS):
        calls = len(rig.fake.calls_of("getUpdates"))
        if victim != "worker":
            await rig.polling_again(calls)
        rig.send_wave(PER_WAVE)
        # The fault schedule, not synchronisation: a random point in the work just started.
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        rig.kill9(proc)
        proc = rig.start(victim)
    await rig.fake.wait_for(lambda: rig.all_answered() or None, within=120)
    # Every request marked delivered: no process holds an answer it might still send.
    await until(lambda: _all_delivered(rig.database_url, len(rig.photos)), within=60)
    return rig.tally()


async def _all_delivered(url: str, n: int) -> bool:
    from sqlalchemy import func, select

    from captionbot.storage.db import create_engine
    from captionbot.storage.models import CaptionRequest, RequestStatus

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = dict(
                (await conn.execute(select(CaptionRequest.status, func.count()).group_by(CaptionRequest.status))).all()
            )
    finally:
        await engine.dispose()
    return sum(rows.values()) >= n and set(rows) == {RequestStatus.DELIVERED}


@pytest.fixture(params=BACKEND_PARAMS)
async def backend(request, tmp_path):
    async with open_backend(request, tmp_path, reclaim_after=2.0) as b:
        yield b


async def crash_and_count(rig: Rig, *, victim: str, others: tuple[str, ...], label: str) -> None:
    """Run the kills, print the tally line, and require nothing lost and nothing doubled."""
    seed = random.randrange(1_000_000)
    try:
        tally = await run_with_kills(rig, victim=victim, others=others, seed=seed)
    except TimeoutError:
        pytest.fail(f"not every photo was answered (seed {seed}): {rig.tally().line()}\n{rig.logs()}")
    finally:
        rig.close()
    print(f"{label}: {tally.line()}")
    assert not tally.lost and not tally.doubled, f"seed {seed}: {tally.line()}"


async def test_run_killed_ten_times_answers_every_photo_once(backend, fake, tmp_path):
    label = f"captionbot run, {KILLS} kills, {backend.database_url.split(':')[0]}"
    await crash_and_count(Rig(tmp_path, backend, fake), victim="run", others=(), label=label)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("victim, other", [("worker", "bot"), ("bot", "worker")])
async def test_split_deployment_killed_ten_times_answers_every_photo_once(victim, other, fake, tmp_path, request):
    async with open_backend(_pg_request(request), tmp_path, reclaim_after=2.0) as backend:
        label = f"captionbot {victim} killed {KILLS} times (split deployment)"
        await crash_and_count(Rig(tmp_path, backend, fake), victim=victim, others=(other,), label=label)


def _pg_request(request: pytest.FixtureRequest) -> Any:
    """``open_backend`` reads the backend name from ``request.param``."""

    class _Request:
        param = "postgresql-redis"

        def getfixturevalue(self, name: str) -> Any:
            return request.getfixturevalue(name)

    return _Request()
