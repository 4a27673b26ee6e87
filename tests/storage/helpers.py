"""Seeding for the storage tests: a user in a chat who sent a photo, and that photo captioned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.storage import jobs, users
from captionbot.storage.imagestore import ImageStore, sha256_hex
from captionbot.storage.models import CaptionRequest, ChatKind, Platform

Factory = async_sessionmaker[AsyncSession]

#: ``stale_before`` for a plain claim: no running request is that old, so only a queued one is taken.
FAR_PAST: Final = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Seeded:
    user_id: int
    chat_id: int
    image_id: int
    sha256: str
    request_id: int
    public_id: str


async def seed(
    factory: Factory,
    store: ImageStore | None = None,
    *,
    user: str = "u1",
    photo: bytes = b"photo-1",
    platform: Platform = Platform.TELEGRAM,
) -> Seeded:
    """A user in a chat who sent one photo: a queued request."""
    sha = store.put(photo) if store else sha256_hex(photo)
    async with factory.begin() as s:
        u = await users.get_or_create_user(s, platform=platform, platform_user_id=user, display_name=user)
        chat = await users.get_or_create_chat(s, platform=platform, platform_chat_id="chat-1", kind=ChatKind.GROUP)
        image = await jobs.add_image(s, sha256=sha, size_bytes=len(photo), width=4, height=3, mime="image/jpeg")
        req = await jobs.create_request(
            s,
            platform=platform,
            chat_id=chat.id,
            requester_id=u.id,
            image_id=image.id,
            source_message_id=42,
            reply_context={"thread_id": 7},
        )
        return Seeded(u.id, chat.id, image.id, sha, req.id, req.public_id)


async def claim(s: AsyncSession, seeded: Seeded) -> jobs.ClaimedJob | None:
    """What a worker does with the request's job: ``queued -> running`` (never a takeover)."""
    return await jobs.claim_job(s, public_id=seeded.public_id, stale_before=FAR_PAST)


async def captioned(
    factory: Factory, store: ImageStore | None = None, *, photo_text: str | None = None, **kw: object
) -> tuple[Seeded, int]:
    """A seeded request that went through claim and complete; returns its caption id."""
    seeded = await seed(factory, store, **kw)  # type: ignore[arg-type]
    async with factory.begin() as s:
        assert await claim(s, seeded)
        caption = await jobs.complete_request(
            s, request_id=seeded.request_id, text=f"a photo by {seeded.user_id}", photo_text=photo_text
        )
        assert caption is not None
        return seeded, caption.id


async def request_row(s: AsyncSession, request_id: int) -> CaptionRequest | None:
    """The request as stored now (reloaded even if the session already holds it)."""
    return await s.get(CaptionRequest, request_id, populate_existing=True)


async def count(factory: Factory, model: type) -> int:
    async with factory() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0
