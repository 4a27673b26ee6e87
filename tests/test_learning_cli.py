"""The operator's learning commands through the real CLI: `model rollback | report | list`,
`feedback review`, `learn` refused while another round runs. Seeded through the storage functions and
LearningService on a migrated SQLite database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from captionbot.service import LearningService
from captionbot.service.learning_results import CandidateModel
from captionbot.settings import Settings
from captionbot.storage.imagestore import ImageStore
from captionbot_cli.main import app
from tests import learning_seed as seed

Factory = async_sessionmaker[AsyncSession]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite: the queries behind these commands are the service's, tested on PostgreSQL there."""
    return f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"


@pytest.fixture
def env(migrated_db_url: str, image_store: ImageStore, tmp_path: Path) -> dict[str, str]:
    return {
        "CAPTIONBOT_DATABASE_URL": migrated_db_url,
        "CAPTIONBOT_DATA_DIR": str(tmp_path),
        "CAPTIONBOT_IMAGE_STORE_DIR": str(image_store.root),
    }


@pytest.fixture
def service(env: dict[str, str], session_factory: Factory, image_store: ImageStore, tmp_path: Path) -> LearningService:
    return LearningService(Settings(_env_file=None, data_dir=tmp_path), session_factory, image_store)


def cli(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def rows(output: str) -> dict[str, str]:
    """Table lines by their first cell."""
    return {cells(line)[0]: line for line in output.splitlines() if line.count("│") > 2}


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("│")[1:-1]]


async def test_rollback_serves_the_previous_version(
    env: dict[str, str], session_factory: Factory, service: LearningService
) -> None:
    assert "nothing to roll back" in cli(env, "model", "rollback", code=2)
    await seed.version(session_factory, "v1", promote=True)
    assert "no model version was promoted before v1" in cli(env, "model", "rollback", code=2)
    await seed.version(session_factory, "v2", promote=True)

    assert "serving v1 again (was v2)" in cli(env, "model", "rollback")
    current = await service.promoted_model()
    assert current is not None and current.name == "v1"
    listing = rows(cli(env, "model", "list"))
    assert cells(listing["v1"])[1] == "serving" and cells(listing["v2"])[1] == "candidate"
    assert "no model version was promoted before v1" in cli(env, "model", "rollback", code=2), "steps back, not forth"


async def test_report_has_a_table_and_writes_the_picture(
    env: dict[str, str], session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    v1 = await seed.version(session_factory, "v1")
    v2 = await seed.version(session_factory, "v2", promote=True)
    for i, (version_id, rating, correction) in enumerate(
        [(v1, -1, "a dog runs on grass"), (v1, 1, None), (v2, 1, None), (v2, 5, None), (v2, None, None)]
    ):
        _, caption = await seed.photo(
            session_factory, image_store, requester="ann", name=f"p{i}", model_version_id=version_id
        )
        if rating is not None or correction is not None:
            await seed.feedback(session_factory, caption, "bob", rating=rating, correction=correction)

    picture = tmp_path / "out" / "report.png"
    output = cli(env, "model", "report", "--plot", str(picture))
    table = rows(output)
    assert "+0.00" in table["v1"] and "50.0%" in table["v1"]  # one +1 and one -1; 1 of 2 corrected
    assert "serving" in table["v2"] and "+1.00" in table["v2"] and "0.0%" in table["v2"]
    assert str(picture) in output
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    default = tmp_path / "learning" / "model-report.png"
    assert str(default) in cli(env, "model", "report")
    assert default.stat().st_size > 1000


async def test_review_lists_corrections_and_records_decisions(
    env: dict[str, str], session_factory: Factory, image_store: ImageStore, service: LearningService
) -> None:
    assert "no corrections waiting" in cli(env, "feedback", "review")
    _, c1 = await seed.photo(session_factory, image_store, requester="ann", name="a", caption="a cat")
    _, c2 = await seed.photo(session_factory, image_store, requester="ann", name="b", caption="a car")
    _, c3 = await seed.photo(session_factory, image_store, requester="ann", name="c", caption="a tree")
    f1 = await seed.feedback(session_factory, c1, "bob", correction="a cat sleeps on a sofa")
    f2 = await seed.feedback(session_factory, c2, "carol", correction="buy cheap pills now")
    await seed.feedback(session_factory, c3, "bob", rating=1)  # a rating only: nothing to review

    listing = cli(env, "feedback", "review")
    assert f"{f1}  'a cat' -> 'a cat sleeps on a sofa'" in listing
    assert f"{f2}  'a car' -> 'buy cheap pills now'" in listing
    assert "a tree" not in listing
    assert "tg-bob" not in listing and "tg-carol" not in listing, "no people in the list"
    assert "2 waiting" in listing
    assert "1 waiting" in cli(env, "feedback", "review", "--limit", "1")

    assert "approved 1, rejected 1" in cli(env, "feedback", "review", "--approve", str(f1), "--reject", str(f2))
    assert "no corrections waiting" in cli(env, "feedback", "review")
    reviews = {item.feedback_id: item.review for item in await service.usable_feedback()}
    assert reviews[f1] == "approved" and reviews[f2] == "rejected"
    assert "both approved and rejected" in cli(env, "feedback", "review", "--approve", "1", "--reject", "1", code=2)


async def test_model_list_shows_the_round_behind_a_version(
    env: dict[str, str], session_factory: Factory, service: LearningService, tmp_path: Path
) -> None:
    await seed.version(session_factory, "hand-made", promote=True)
    lease = await service.begin_round(holder="test:1")
    checkpoint = tmp_path / "learning" / "round-1.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")
    await service.finish_round(
        lease.round_id,
        counts={"new items": 12},
        metrics={"dev": {"CIDEr-D": 0.5}},
        decision="promoted: feedback log-prob -2.10 -> -1.95, fixed set CIDEr-D 0.612 -> 0.610",
        candidate=CandidateModel("round-1", str(checkpoint), "ab" * 32, {"dev": {"CIDEr-D": 0.5}}),
        promote=True,
    )

    listing = rows(cli(env, "model", "list"))
    name, status, since, dev, test, round_, decision, path = cells(listing["hand-made"])
    assert (status, since, round_, decision) == ("retired", "", "", "")
    name, status, since, dev, test, round_, decision, path = cells(listing["round-1"])
    assert status == "serving" and since.endswith("UTC") and dev == "0.500" and path == str(checkpoint)
    assert round_ == "1 promoted" and decision.startswith("promoted: feedback log-prob -2.10 -> -1.95")


async def test_learn_says_when_another_round_is_running(env: dict[str, str], service: LearningService) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("training.learning.round")
    await service.begin_round(holder="gpu-box:4242")
    output = cli(env, "learn", "--quiet", code=3)
    assert "another round is running since" in output and "on gpu-box:4242; try later" in output
    assert len(output.strip().splitlines()) == 1


async def test_learn_prints_the_round_report(env: dict[str, str], service: LearningService) -> None:
    pytest.importorskip("torch")
    output = cli(env, "learn", "--quiet")
    assert output.startswith("Learning round 1") and "decision: skipped" in output, output
    last = await service.last_round()
    assert last is not None and last.status != "running"


async def test_learn_says_in_one_line_that_a_setting_points_nowhere(
    env: dict[str, str], service: LearningService, session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    _, caption = await seed.photo(session_factory, image_store, requester="ann", name="a", caption="a dog on a sofa")
    await seed.feedback(session_factory, caption, "bob", rating=-1, correction="a cat on a sofa")
    missing = tmp_path / "no-such-dataset"
    output = cli(env | {"CAPTIONBOT_LEARN_REPLAY_DATA": str(missing)}, "learn", "--quiet", code=2)
    assert output.startswith("error: the learning round failed") and str(missing) in output, output
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output
    last = await service.last_round()
    assert last is not None and last.status == "failed" and "no-such-dataset" in last.decision


def test_learner_runs_until_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    """The long-running process: says what it does, checks, and ends cleanly on SIGTERM in one line."""
    pytest.importorskip("torch")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONBOT_")} | env
    child_env |= {"CAPTIONBOT_LEARN_CHECK_S": "3600", "CAPTIONBOT_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "captionbot_cli", "learner"],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the process is up
        assert "learner running: a round every 200 new feedback items or 24.0 h" in first, first
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert rest.strip().endswith("learner stopped") and len(rest.strip().splitlines()) == 1, rest


async def test_run_starts_the_learner_when_asked(
    env: dict[str, str], session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    """`captionbot run` with CAPTIONBOT_LEARN_IN_RUN: the loop runs beside the stack and stops with it."""
    pytest.importorskip("torch")
    from captionbot_cli.runtime import _start_learner

    settings = Settings(_env_file=None, data_dir=tmp_path, learn_in_run=True, learn_check_s=3600)
    stack = SimpleNamespace(settings=settings, session_factory=session_factory, image_store=image_store)
    stop = asyncio.Event()
    learner = _start_learner(stack, stop)  # type: ignore[arg-type]
    stop.set()
    assert await asyncio.wait_for(learner, 30) is False
