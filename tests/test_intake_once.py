"""Intake takes each incoming message once, and the answer edits a placeholder recorded with it.

A chat platform may deliver a message again after the bot died before acknowledging it; the
placeholder is the message the answer will edit (edits can be repeated safely, sends cannot).
Runs on SQLite + memory:// and on PostgreSQL + Redis Streams, with the tiny model.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from captionbot.service import PhotoUnavailableError, Rejected, RejectReason, Submitted
from captionbot.storage.models import CaptionRequest
from tests.gated_engine import BatchGate
from tests.tiny_model import DeliveryRecorder, make_settings, open_pipeline, png_bytes

pytestmark = pytest.mark.timeout(60)


class Photo:
    """A front end's side of one incoming photo: counts downloads and placeholders."""

    def __init__(self, data: bytes | None = None, *, placeholder_fails: bool = False) -> None:
        self.data = data or png_bytes("blue")
        self.downloads = 0
        self.placeholders = 0
        self.placeholder_fails = placeholder_fails

    async def download(self) -> bytes:
        self.downloads += 1
        return self.data

    async def placeholder(self) -> int:
        self.placeholders += 1
        if self.placeholder_fails:
            raise ConnectionError("chat API down (test)")
        return 500 + self.placeholders


async def take(stack: Any, photo: Photo, *, key: str | None = "telegram:42:100", user: str = "7") -> Any:
    return await stack.service.take_photo(
        platform="telegram",
        platform_chat_id="42",
        chat_kind="private",
        platform_user_id=user,
        display_name="Ann",
        download=photo.download,
        source_message_id="100",
        intake_key=key,
        placeholder=photo.placeholder,
    )


async def count_requests(stack: Any) -> int:
    async with stack.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(CaptionRequest)) or 0)


async def test_the_same_message_twice_is_taken_once(backend, tmp_path):
    gate = BatchGate()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=DeliveryRecorder(), gate=gate) as stack:
        photo = Photo()
        first = await take(stack, photo)
        again = await take(stack, photo)
        assert isinstance(first, Submitted) and not first.again
        assert isinstance(again, Submitted) and again.again
        assert again.request_id == first.request_id
        assert (photo.downloads, photo.placeholders) == (1, 1)  # nothing fetched or posted again
        assert await count_requests(stack) == 1
        other = await take(stack, Photo(), key="telegram:42:101")
        assert isinstance(other, Submitted) and other.request_id != first.request_id
        gate.open()


async def test_the_same_message_at_the_same_moment_is_taken_once(backend, tmp_path):
    gate = BatchGate()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=DeliveryRecorder(), gate=gate) as stack:
        photos = [Photo() for _ in range(4)]
        results = await asyncio.gather(*(take(stack, p) for p in photos))
        assert all(isinstance(r, Submitted) for r in results)
        assert len({r.request_id for r in results}) == 1
        assert await count_requests(stack) == 1
        gate.open()


async def test_the_answer_carries_the_recorded_placeholder(backend, tmp_path):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        sub = await take(stack, Photo())
        await rec.wait_for(1)
        [delivery] = rec.by_request(sub.request_id)
        assert delivery.status_message_id == "501"  # the handler edits this message, never sends a new one
        async with stack.session_factory() as session:
            row = await session.scalar(select(CaptionRequest).where(CaptionRequest.public_id == sub.request_id))
            assert row is not None and row.status_message_id == "501" and row.intake_key == "telegram:42:100"


async def test_a_placeholder_that_fails_leaves_a_new_message_answer(backend, tmp_path):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend), recorder=rec) as stack:
        photo = Photo(placeholder_fails=True)
        sub = await take(stack, photo)
        assert isinstance(sub, Submitted) and photo.placeholders == 1
        await rec.wait_for(1)
        assert rec.by_request(sub.request_id)[0].status_message_id is None


async def test_refusals_come_before_any_placeholder(backend, tmp_path):
    gate = BatchGate()
    settings = make_settings(tmp_path, backend, user_max_pending=1)
    async with open_pipeline(settings, recorder=DeliveryRecorder(), gate=gate) as stack:
        assert isinstance(await take(stack, Photo(), key="k1"), Submitted)
        # Too many pending: refused before a placeholder is posted, so the refusal is a plain reply.
        busy_photo = Photo(png_bytes("red"))
        busy = await take(stack, busy_photo, key="k2")
        assert isinstance(busy, Rejected) and busy.reason == RejectReason.TOO_MANY_PENDING
        assert busy_photo.placeholders == 0
        # A bad photo is refused before any placeholder.
        bad = Photo(b"not an image")
        refused = await take(stack, bad, key="k3", user="8")
        assert isinstance(refused, Rejected) and refused.reason == RejectReason.BAD_IMAGE
        assert bad.placeholders == 0

        async def gone() -> bytes:
            raise PhotoUnavailableError("I couldn't download that photo.")

        lost = await stack.service.take_photo(
            platform="telegram",
            platform_chat_id="42",
            chat_kind="private",
            platform_user_id="9",
            display_name=None,
            download=gone,
            source_message_id="7",
            intake_key="k4",
        )
        assert isinstance(lost, Rejected) and lost.reason == RejectReason.DOWNLOAD_FAILED
        assert await count_requests(stack) == 1
        gate.open()
