"""The few database reads/writes the Telegram adapter needs that CaptionService has no method for.

They go through the service's own session factory and the storage query layer, never raw SQL on
another module's tables. Each is a candidate for a CaptionService method (see docs/telegram.md):
``chat_autocaption`` / ``set_chat_autocaption``, ``caption_exists`` and ``model_overview``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from captionbot.service import CaptionService
from captionbot.storage import queries as q
from captionbot.storage.models import Caption, Chat, ChatKind, ModelVersion, Platform

PLATFORM = Platform.TELEGRAM


async def chat_autocaption(service: CaptionService, chat_id: int | str) -> bool:
    """Whether an admin turned on captioning of every photo in this chat."""
    async with service.session_factory() as session:
        enabled = await session.scalar(
            select(Chat.autocaption).where(Chat.platform == PLATFORM, Chat.platform_chat_id == str(chat_id))
        )
    return bool(enabled)


async def set_chat_autocaption(service: CaptionService, chat_id: int | str, *, enabled: bool) -> None:
    async with service.session_factory.begin() as session:
        chat = await q.get_or_create_chat(session, platform=PLATFORM, platform_chat_id=chat_id, kind=ChatKind.GROUP)
        await q.set_chat_autocaption(session, chat_id=chat.id, enabled=enabled)


async def caption_exists(service: CaptionService, caption_id: int) -> bool:
    """False once /forget (or retention) deleted it, or for a forged id."""
    async with service.session_factory() as session:
        return await session.get(Caption, caption_id) is not None


@dataclass(frozen=True)
class ModelOverview:
    model: str | None  # the promoted version, else the one that wrote the latest caption
    total_captions: int


async def model_overview(service: CaptionService) -> ModelOverview:
    async with service.session_factory() as session:
        promoted = await q.current_model_version(session)
        name = (
            promoted.name
            if promoted
            else await session.scalar(
                select(ModelVersion.name)
                .join(Caption, Caption.model_version_id == ModelVersion.id)
                .order_by(Caption.id.desc())
                .limit(1)
            )
        )
        total = await session.scalar(select(func.count()).select_from(Caption))
    return ModelOverview(name, int(total or 0))
