"""The learning loop end to end on the tiny model: people's feedback in the database, a round,
a new word in the served captions, the gate, rollback, privacy, poisoning and concurrency.

Photos go through the real pipeline (service, queue, worker) on SQLite + the in-process queue and on
PostgreSQL + Redis; the round is the code `captionbot learn` runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from captionbot.service import RoundBusyError
from captioner.checkpoint import load_checkpoint
from tests.learning.world import captioned, learning_service, photo, settings_for, teach
from tests.tiny_model import DeliveryRecorder, open_pipeline, submit
from training.learning.round import run_round

pytestmark = pytest.mark.usefixtures("torch_threads")


@pytest.fixture
def torch_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


async def caption_of(stack: Any, recorder: DeliveryRecorder, image: bytes) -> str:
    n = len(recorder.deliveries)
    await submit(stack, image, user="newcomer", chat="newcomer")
    await recorder.wait_for(n + 1, within=30)
    return str(recorder.deliveries[-1].text).lower()


async def test_a_round_teaches_a_new_word_that_the_running_worker_then_says(backend: Any, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, backend)
    recorder = DeliveryRecorder()
    async with open_pipeline(settings, recorder=recorder) as stack:
        world = await captioned(stack, recorder)
        assert not any("zebra" in str(d.text).lower() for d in recorder.deliveries)
        await teach(stack, world)
        service = learning_service(stack, settings)

        outcome = await run_round(settings, service, progress=False)

        assert outcome.promoted, outcome.report
        assert "zebra" in outcome.report and "decision: promoted" in outcome.report
        assert (tmp_path / "learning" / "reports" / "round-1.txt").read_text().strip() == outcome.report
        _, vocab, payload = load_checkpoint(tmp_path / "learning" / "models" / "round-1.pt")
        assert vocab.id_of("zebra") is not None and "zebra" in payload["extra"]["learned_words"]
        assert (await service.promoted_model()).name == "learned-r1"  # type: ignore[union-attr]
        # The worker that has been running all along switches to the new model, no restart.
        assert await stack.worker.models.reload_if_promoted_changed(wait=True)
        assert "zebra" in await caption_of(stack, recorder, photo(True, 200))
        rows = {v.name: v for v in await service.model_versions()}
        assert rows["learned-r1"].round_number == 1 and rows["learned-r1"].status == "promoted"

        # Rollback: the previous model serves again, and the worker follows.
        was, now = await service.rollback()
        assert (was.name, now.name) == ("learned-r1", "tiny-v1")
        assert await stack.worker.models.reload_if_promoted_changed(wait=True)
        assert "zebra" not in await caption_of(stack, recorder, photo(True, 201))

        # A person who forgets themselves takes the cached grids of their photos with them.
        cache = list((tmp_path / "learning" / "features").glob("*/*.npy"))
        await stack.service.forget(platform="telegram", platform_user_id="sender0")
        again = await run_round(settings, service, progress=False)
        left = list((tmp_path / "learning" / "features").glob("*/*.npy"))
        usable = {i.image_sha256 for i in await service.usable_feedback()}
        assert {f.stem for f in left} <= usable  # what is left may still be used
        assert (
            again.record.counts["cached photos deleted"] == len(cache) - len(left) >= 16
        )  # sender0's 16 photos at least


async def test_the_gate_keeps_a_worse_candidate_out(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import training.learning.candidate as candidate_module

    settings = settings_for(tmp_path, backend)
    recorder = DeliveryRecorder()
    async with open_pipeline(settings, recorder=recorder) as stack:
        await teach(stack, await captioned(stack, recorder, n=24))
        service = learning_service(stack, settings)
        assert (await run_round(settings, service, progress=False)).promoted
        await teach(stack, await captioned(stack, recorder, n=24, first=24))  # more feedback, then a wrecked round
        real_fine_tune = candidate_module.fine_tune

        def wrecking_fine_tune(model: Any, vocab: Any, *args: Any, **kwargs: Any) -> Any:
            # A huge learning rate only sometimes wrecks a model (it may collapse onto the typical
            # correction and score well); a candidate that says "sofa" for every word always is worse.
            tuned = real_fine_tune(model, vocab, *args, **kwargs)
            with torch.no_grad():
                model.decoder.out.bias[vocab.id_of("sofa")] += 1e4
            return tuned

        monkeypatch.setattr(candidate_module, "fine_tune", wrecking_fine_tune)
        outcome = await run_round(settings, service, progress=False)
        assert not outcome.promoted
        assert outcome.record.status == "rejected" and outcome.record.decision.startswith("rejected")
        assert (await service.promoted_model()).name == "learned-r1"  # type: ignore[union-attr]
        rows = {v.name: v for v in await service.model_versions()}
        assert rows["learned-r2"].status == "candidate" and rows["learned-r2"].round_status == "rejected"


async def test_opted_out_forgotten_and_flooding_people_teach_nothing(backend: Any, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, backend)
    recorder = DeliveryRecorder()
    async with open_pipeline(settings, recorder=recorder) as stack:
        world = await captioned(stack, recorder)
        await teach(stack, world)
        svc = stack.service
        every = world.red + world.blue
        for who in ("quiet1", "quiet2", "quiet3"):  # opted out: "giraffe" from them must not count
            for i, cid in enumerate(every[:12]):
                await svc.correct(
                    caption_id=cid, platform="telegram", platform_user_id=who, text=f"a giraffe {i} {who}"
                )
            assert await svc.set_opt_out(platform="telegram", platform_user_id=who)
        for who in ("gone1", "gone2", "gone3"):  # forgot themselves: "okapi" from them must not count
            for i, cid in enumerate(every[12:24]):
                await svc.correct(caption_id=cid, platform="telegram", platform_user_id=who, text=f"an okapi {i} {who}")
            await svc.forget(platform="telegram", platform_user_id=who)
        for cid in every:  # one person, the same bogus text on every photo
            await svc.correct(
                caption_id=cid, platform="telegram", platform_user_id="spammer", text="buy cheap purple pills"
            )
        for k in range(5):  # five people together
            for cid in every[k::5]:
                await svc.correct(
                    caption_id=cid, platform="telegram", platform_user_id=f"ring{k}", text="visit crypto casino tonight"
                )
        service = learning_service(stack, settings)
        items = await service.usable_feedback()
        assert not any(i.correction and ("giraffe" in i.correction or "okapi" in i.correction) for i in items)

        outcome = await run_round(settings, service, progress=False)

        assert outcome.promoted, outcome.report
        assert outcome.record.counts["filtered"]["same text on many photos (flood)"] > 100
        _, vocab, _ = load_checkpoint(tmp_path / "learning" / "models" / "round-1.pt")
        for word in ("giraffe", "okapi", "purple", "pills", "crypto", "casino"):
            assert vocab.id_of(word) is None, word
        assert vocab.id_of("zebra") is not None
        assert await stack.worker.models.reload_if_promoted_changed(wait=True)
        for i in range(3):
            said = await caption_of(stack, recorder, photo(i % 2 == 0, 300 + i))
            assert not {"cheap", "buy", "visit", "tonight"} & set(said.rstrip(".").split()), said


async def test_two_rounds_at_once_one_is_refused(backend: Any, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, backend, learn_epochs=5)
    recorder = DeliveryRecorder()
    async with open_pipeline(settings, recorder=recorder) as stack:
        await teach(stack, await captioned(stack, recorder, n=12))
        first, second = learning_service(stack, settings), learning_service(stack, settings)
        results = await asyncio.gather(
            run_round(settings, first, progress=False, holder="machine-a"),
            run_round(settings, second, progress=False, holder="machine-b"),
            return_exceptions=True,
        )
        busy = [r for r in results if isinstance(r, RoundBusyError)]
        done = [r for r in results if not isinstance(r, BaseException)]
        assert len(busy) == 1 and len(done) == 1, results
        assert [r.number for r in await first.rounds()] == [1]


async def test_a_round_killed_half_way_leaves_nothing_half_done(backend: Any, tmp_path: Path) -> None:
    import os
    import signal
    import sys
    from datetime import timedelta

    from captionbot.storage.models import utcnow
    from tests.tiny_model import child_env

    settings = settings_for(tmp_path, backend, learn_epochs=20)
    recorder = DeliveryRecorder()
    async with open_pipeline(settings, recorder=recorder) as stack:
        await teach(stack, await captioned(stack, recorder, n=24))
        env = child_env(
            tmp_path,
            backend,
            CAPTIONBOT_LEARN_EPOCHS="100000",
            CAPTIONBOT_LEARN_LR="0.01",
            CAPTIONBOT_LEARN_HOLDOUT_FRACTION="0.2",
            CAPTIONBOT_LEARN_FEEDBACK_REPEATS="1",
            CAPTIONBOT_LEARN_LEASE_S="60",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "captionbot_cli",
            "learn",
            env=env,
            cwd=os.getcwd(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        seen = b""
        async with asyncio.timeout(120):
            while b"fine-tuning" not in seen:  # the round is training: kill it there
                chunk = await proc.stderr.read(4096)
                assert chunk, seen.decode(errors="replace")[-2000:]
                seen += chunk
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

        service = learning_service(stack, settings)
        assert [(r.number, r.status) for r in await service.rounds()] == [(1, "running")]
        # Later (the dead round's heartbeat is older than the lease), the next round takes over cleanly.
        later = learning_service(stack, settings, now=lambda: utcnow() + timedelta(minutes=10))
        outcome = await run_round(settings, later, progress=False)
        assert outcome.record.number == 2 and outcome.promoted, outcome.report
        assert [(r.number, r.status) for r in await service.rounds()] == [(2, "promoted"), (1, "abandoned")]
        names = {v.name for v in await service.model_versions()}
        assert "learned-r1" not in names and "learned-r2" in names
