"""Seeding for the learning-loop tests, through the real storage functions: people, their captioned
photos, feedback, opt-outs, purges and model versions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.storage import captions, jobs, model_versions, users
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import Image, utcnow

Factory = async_sessionmaker[AsyncSession]


async def person(factory: Factory, name: str) -> int:
    """users.id of ``name`` (a Telegram user), created on first use."""
    async with factory.begin() as s:
        return (await users.get_or_create_user(s, platform="telegram", platform_user_id=f"tg-{name}")).id


async def photo(
    factory: Factory,
    store: ImageStore,
    *,
    requester: str,
    name: str,
    caption: str = "a photo",
    model_version_id: int | None = None,
) -> tuple[str, int]:
    """A photo ``requester`` sent, captioned (by ``model_version_id``): (sha256, caption id)."""
    data = f"photo {name}".encode()
    sha = store.put(data)
    requester_id = await person(factory, requester)
    async with factory.begin() as s:
        chat = await users.get_or_create_chat(
            s, platform="telegram", platform_chat_id=f"chat-{requester}", kind="private"
        )
        image = await jobs.add_image(s, sha256=sha, size_bytes=len(data), width=4, height=3, mime="image/png")
        request = await jobs.create_request(
            s, platform="telegram", chat_id=chat.id, requester_id=requester_id, image_id=image.id
        )
        assert await jobs.claim_job(s, public_id=request.public_id, stale_before=utcnow() - timedelta(days=365))
        result = await jobs.complete_request(s, request_id=request.id, text=caption, model_version_id=model_version_id)
        assert result is not None
        return sha, result.id


async def feedback(factory: Factory, caption_id: int, rater: str, **values: object) -> int:
    """Set ``rater``'s rating/correction of a caption; returns the feedback id."""
    rater_id = await person(factory, rater)
    async with factory.begin() as s:
        row = await captions.set_feedback(s, caption_id=caption_id, user_id=rater_id, **values)  # type: ignore[arg-type]
        return row.id


async def opt_out(factory: Factory, name: str) -> None:
    user_id = await person(factory, name)
    async with factory.begin() as s:
        assert await users.set_training_opt_out(s, user_id=user_id, opt_out=True)


async def forget(factory: Factory, store: ImageStore, name: str) -> None:
    user_id = await person(factory, name)
    async with factory.begin() as s:
        assert (await users.forget_user(s, user_id=user_id, image_store=store)).found


async def mark_purged(factory: Factory, store: ImageStore, sha: str) -> None:
    """What the retention sweep leaves: the row marked purged, the file gone."""
    async with factory.begin() as s:
        await s.execute(update(Image).where(Image.sha256 == sha).values(purged_at=utcnow()))
    store.delete(sha)


async def version(factory: Factory, name: str, *, promote: bool = False) -> int:
    async with factory.begin() as s:
        v = await model_versions.register_model_version(s, name=name, path=f"/models/{name}.pt", sha256=name * 4)
        if promote:
            await model_versions.promote_model_version(s, model_version_id=v.id)
        return v.id
