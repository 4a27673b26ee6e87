"""The worker reads text in photos: the text reaches the delivery and the caption row, a photo
without text gets none, a failed read costs only the text, forget removes it, training exports and
logs never carry it. Tiny model (no text probe fits it, so the OCR's own detector checks first)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

pytest.importorskip("rapidocr_onnxruntime", reason="the OCR engine is not installed: pip install -e '.[ocr]'")

from captionbot.storage.db import upgrade_async  # noqa: E402
from captionbot.storage.models import Caption  # noqa: E402
from tests.tiny_model import Backend, DeliveryRecorder, make_settings, open_pipeline, submit  # noqa: E402

pytestmark = pytest.mark.timeout(90)

SIGN = ("FRESH COFFEE", "OPEN DAILY")


def sign_photo(lines: tuple[str, ...] = SIGN) -> bytes:
    img = Image.new("RGB", (640, 480), (70, 110, 150))
    draw = ImageDraw.Draw(img)
    draw.rectangle((400, 300, 600, 460), fill=(160, 90, 40))
    font = ImageFont.load_default(size=44)
    for i, line in enumerate(lines):
        x, y = 40, 50 + 90 * i
        left, top, right, bottom = draw.textbbox((x, y), line, font=font)
        draw.rectangle((left - 12, top - 12, right + 12, bottom + 12), fill=(250, 250, 240))
        draw.text((x, y), line, font=font, fill=(15, 15, 15))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def plain_photo() -> bytes:
    img = Image.new("RGB", (640, 480), (70, 110, 150))
    ImageDraw.Draw(img).ellipse((200, 120, 440, 360), fill=(200, 60, 60))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
async def embedded(tmp_path) -> Backend:
    """SQLite + the in-process queue (the checks below don't depend on the deployment)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    await upgrade_async(url)
    return Backend(url, "memory://")


async def caption_rows(stack) -> list[Caption]:
    async with stack.session_factory() as session:
        return list(await session.scalars(select(Caption)))


async def test_text_in_the_photo_comes_with_the_caption_and_a_plain_photo_gets_none(backend, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    rec = DeliveryRecorder()
    settings = make_settings(tmp_path, backend, read_text=True)
    async with open_pipeline(settings, recorder=rec) as stack:
        assert stack.worker.batch_loop.reader is not None
        with_text = await submit(stack, sign_photo())
        without = await submit(stack, plain_photo(), user="8")
        await rec.wait_for(2)
        by_id = {d.request_id: d for d in rec.deliveries}
        assert by_id[with_text.request_id].photo_text == "FRESH COFFEE\nOPEN DAILY"
        assert by_id[with_text.request_id].text  # the caption is there too
        assert by_id[without.request_id].photo_text is None
        stored = sorted(c.photo_text or "" for c in await caption_rows(stack))
        assert stored == ["", "FRESH COFFEE\nOPEN DAILY"]
    # aiosqlite's own DEBUG lines carry SQL parameters: `captionbot run` keeps that logger at WARNING.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("aiosqlite"))
    assert "COFFEE" not in logged and "coffee" not in logged.lower()


async def test_reading_off_gives_captions_only(tmp_path, embedded):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, embedded, read_text=False), recorder=rec) as stack:
        assert stack.worker.batch_loop.reader is None
        sub = await submit(stack, sign_photo())
        await rec.wait_for(1)
        [d] = rec.deliveries
        assert d.request_id == sub.request_id and d.ok and d.photo_text is None


class BrokenReader:
    """An OCR engine that fails on every photo (a corrupt model file, an out-of-memory)."""

    def has_text(self, image):
        raise RuntimeError("ocr engine failed")

    def read(self, image):
        raise RuntimeError("ocr engine failed")


async def test_a_failed_read_costs_the_text_not_the_caption(tmp_path, embedded):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, embedded, read_text=True), recorder=rec) as stack:
        stack.worker.batch_loop.reader = BrokenReader()
        await submit(stack, sign_photo())
        await rec.wait_for(1)
        [d] = rec.deliveries
        assert d.ok and d.text and d.photo_text is None


async def test_forget_removes_the_text_and_exports_leave_it_out(tmp_path, embedded):
    from training.feedback import export_feedback

    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, embedded, read_text=True), recorder=rec) as stack:
        service = stack.service
        mine = await submit(stack, sign_photo(), user="7")
        theirs = await submit(stack, sign_photo(("NO PARKING",)), user="8")
        await rec.wait_for(2)
        by_id = {d.request_id: d for d in rec.deliveries}
        for sub, user in ((mine, "7"), (theirs, "8")):
            d = by_id[sub.request_id]
            await service.rate(caption_id=d.caption_id, platform="telegram", platform_user_id=user, rating=1)
        out = tmp_path / "feedback.jsonl"
        await export_feedback(stack.session_factory, stack.image_store, out, min_rating=1, dev_fraction=0.0)
        exported = out.read_text()
        assert len(exported.splitlines()) == 2 and all(json.loads(line) for line in exported.splitlines())
        assert "COFFEE" not in exported.upper() and "PARKING" not in exported.upper()

        await service.forget(platform="telegram", platform_user_id="7")
        assert [c.photo_text for c in await caption_rows(stack)] == ["NO PARKING"]


def test_captionbot_caption_json_carries_the_text(tmp_path):
    from typer.testing import CliRunner

    from captionbot_cli.main import app
    from tests.tiny_model import make_tiny_checkpoint

    sign, plain = tmp_path / "sign.jpg", tmp_path / "plain.png"
    sign.write_bytes(sign_photo())
    plain.write_bytes(plain_photo())
    model = str(make_tiny_checkpoint())
    runner = CliRunner()
    as_json = runner.invoke(app, ["caption", str(sign), str(plain), "--json", "--model", model, "--device", "cpu"])
    assert as_json.exit_code == 0, as_json.output
    rows = {Path(r["image"]).name: r for r in map(json.loads, as_json.stdout.strip().splitlines())}
    assert rows["sign.jpg"]["text"] == "FRESH COFFEE\nOPEN DAILY" and rows["plain.png"]["text"] is None
    said = runner.invoke(app, ["caption", str(sign), "--model", model, "--device", "cpu"])
    assert said.stdout.strip().splitlines()[-1] == 'Text in the photo: "FRESH COFFEE OPEN DAILY"'
    off = runner.invoke(app, ["caption", str(sign), "--json", "--no-read-text", "--model", model, "--device", "cpu"])
    assert json.loads(off.stdout.strip().splitlines()[-1])["text"] is None


@pytest.mark.parametrize("check_all", [False, True])
async def test_a_photo_the_text_probe_rules_out_is_read_only_when_every_photo_is_checked(tmp_path, embedded, check_all):
    import torch

    from captioner.text_probe import TextProbe

    rec = DeliveryRecorder()
    settings = make_settings(tmp_path, embedded, read_text=True, read_text_check_all=check_all)
    async with open_pipeline(settings, recorder=rec) as stack:
        engine = stack.worker.model.engine
        # A probe that says "no text" for every photo (score ~0.00005 against a threshold of 0.5).
        engine.text_probe = TextProbe(engine.cfg.encoder, 0.5, torch.zeros(engine.cfg.encoder_channels), -10.0)
        await submit(stack, sign_photo())
        await rec.wait_for(1)
        [d] = rec.deliveries
        assert d.ok and d.photo_text == ("FRESH COFFEE\nOPEN DAILY" if check_all else None)
