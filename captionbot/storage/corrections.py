"""Corrections in progress: who pressed "Better caption" where, for which caption, until when.

One row per person and chat (a second press replaces the first). Like every storage module: an
``AsyncSession`` first, keyword-only arguments, no commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from captionbot.storage.models import PendingCorrection, Platform
from captionbot.storage.statements import dialect_insert


async def get_pending(
    session: AsyncSession, *, platform: Platform | str, platform_chat_id: str | int, user_id: int
) -> PendingCorrection | None:
    """This person's correction in progress in this chat (expired or not)."""
    return await session.scalar(
        select(PendingCorrection).where(
            PendingCorrection.platform == Platform(platform),
            PendingCorrection.platform_chat_id == str(platform_chat_id),
            PendingCorrection.user_id == user_id,
        )
    )


async def start_pending(
    session: AsyncSession,
    *,
    platform: Platform | str,
    platform_chat_id: str | int,
    user_id: int,
    caption_id: int,
    now: datetime,
    expires_at: datetime,
) -> PendingCorrection:
    """Begin (or restart) waiting for this person's correction of ``caption_id`` in this chat."""
    values = {
        "platform": Platform(platform),
        "platform_chat_id": str(platform_chat_id),
        "user_id": user_id,
        "caption_id": caption_id,
        "prompt_message_id": None,
        "created_at": now,
        "expires_at": expires_at,
    }
    stmt = (
        dialect_insert(session, PendingCorrection)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["platform", "platform_chat_id", "user_id"],
            set_={k: values[k] for k in ("caption_id", "prompt_message_id", "created_at", "expires_at")},
        )
        .returning(PendingCorrection)
    )
    row: PendingCorrection = (await session.scalars(stmt, execution_options={"populate_existing": True})).one()
    return row


async def end_pending(
    session: AsyncSession, *, platform: Platform | str, platform_chat_id: str | int, user_id: int
) -> bool:
    """Stop waiting (taken, cancelled or expired); True if there was something to stop."""
    gone = await session.execute(
        delete(PendingCorrection)
        .where(
            PendingCorrection.platform == Platform(platform),
            PendingCorrection.platform_chat_id == str(platform_chat_id),
            PendingCorrection.user_id == user_id,
        )
        .returning(PendingCorrection.id)
    )
    return gone.first() is not None
